"""Hypothesis runs the same examples on every run, in CI and at a desk alike.

The `dockyard` profile (loaded here, whatever `CI` says) derandomizes: the examples are drawn
from a seed made from each test, so a red run is red again on any machine, and a green one
does not turn red because a new random draw found something. Tests set their own
`max_examples` where they are costly; the rest get MAX_EXAMPLES. To search for new failures,
draw fresh random examples (they are kept in .hypothesis/ and replayed first next time):

    .venv/bin/pytest tests/unit --hypothesis-profile=explore

and the long fuzz run is `pytest -m slow` (tests/unit/test_fuzz.py).
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

MAX_EXAMPLES = 50

settings.register_profile(
    "dockyard", derandomize=True, max_examples=MAX_EXAMPLES, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", settings.get_profile("default"), deadline=None,
                          print_blob=True)
settings.load_profile("dockyard")

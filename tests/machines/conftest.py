"""The three-machine harness as a session fixture: `machines` (see harness.py).

Skipped where the host cannot make it (not root, no sshd); under CI=true that fails the run
instead. Everything is torn down at the end of the session, also after a failure."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.machines.harness import Harness, missing_programs


@pytest.fixture(scope="session")
def machines() -> Iterator[Harness]:
    """Three machines a, b, c: each `engine_url` is `ssh://root@<address>`; `env()` is what
    dockyard needs to reach them; `stop_engine()` / `start_engine()` per machine."""
    gone = missing_programs()
    if gone:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the machines harness lacks {', '.join(gone)} "
                        "(scripts/install-engine.sh --machines installs openssh-server)")
        pytest.skip(f"the machines harness needs {', '.join(gone)}")
    harness = Harness(f"dy{uuid.uuid4().hex[:6]}")
    harness.start()
    try:
        yield harness
    finally:
        harness.stop()

"""A bootstrap tag, once made, is never moved (issue 9, item 8: the clean-machine flake).

Seen on an empty engine: `dockyard build --platform arm64` bootstrapped
dockyard/bootstrap:bookworm-101ba5892631 and built family-base on it (FIRST). A second
client of the same engine bootstrapped the same recipe at the same time, finished a few
seconds later and pointed the tag at its own image (SECOND): mmdebstrap's root file systems
differ byte by byte from run to run, so one recipe made twice is two images. The next build
hashed family-base on SECOND and rebuilt all three images ("unchanged: 0")."""

from __future__ import annotations

from pathlib import Path

from dockyard.engine.bootstrap import claim
from dockyard.engine.build import inputs_hash

FIRST = "sha256:880668ff47a5badee88b4ab84c0a5ef7960d260a18baae0169c7a7bb1767051f"
SECOND = "sha256:ae425034a5e8a1246447f34721e0af97ffca21674e02369b089127a7e9bc3f8e"
DOCKERFILE = "ARG BASE_IMAGE=debian:bookworm-slim\nFROM ${BASE_IMAGE}\nUSER 10001:10001\n"


def test_the_first_bootstrap_to_finish_keeps_the_tag() -> None:
    assert claim("", FIRST) == FIRST  # nothing there yet: this run's image takes the tag
    assert claim(FIRST, SECOND) == FIRST  # made beside another: the first one stays
    assert claim(FIRST, FIRST) == FIRST


def test_a_family_hashes_the_same_base_whether_its_run_made_it_or_found_it(tmp_path: Path
                                                                          ) -> None:
    no_inputs = tmp_path / "no-inputs"  # a family without requirements hashes no file
    tag = claim("", FIRST)  # run 1 bootstraps the base, then builds on what the tag names
    run1 = inputs_hash(DOCKERFILE, tag, no_inputs)
    tag = claim(tag, SECOND)  # the other client's bootstrap of the same recipe ends
    run2 = inputs_hash(DOCKERFILE, tag, no_inputs)  # run 2 finds the tag
    assert run2 == run1
    # The base's ID is what decided: on the moved tag every image was rebuilt.
    assert inputs_hash(DOCKERFILE, SECOND, no_inputs) != run1

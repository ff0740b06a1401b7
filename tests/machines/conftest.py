"""The three-machine harness as a session fixture: `machines` (see harness.py).

Skipped where the host cannot make it (not root, no sshd); under CI=true that fails the run
instead. Everything is torn down at the end of the session, also after a failure."""

from __future__ import annotations

import os
import subprocess
import sys
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


def _bootstrap_tags() -> list[str]:
    """The host's bootstrap bases for its own architecture (an arm64 one made by a
    `--platform arm64` build is no base for the machines' amd64 builds)."""
    out = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}",
                          "dockyard/bootstrap"], capture_output=True, text=True, check=True)
    tags = [t for t in out.stdout.split() if ":<none>" not in t]
    if not tags:
        return []
    native = subprocess.run(["docker", "info", "--format", "{{.Architecture}}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(native, native)
    found = subprocess.run(["docker", "image", "inspect", "--format", "{{.Architecture}}",
                            *tags], capture_output=True, text=True, check=True).stdout.split()
    return [t for t, a in zip(tags, found, strict=True) if a == arch]


@pytest.fixture(scope="session")
def machine_image(machines: Harness) -> Iterator[str]:
    """An image with python3 (a bootstrap base, made once on the host when there is none)
    under a tag of the session's own, loaded into every machine (save | load)."""
    if not _bootstrap_tags():
        made = subprocess.run([sys.executable, "-m", "dockyard", "bootstrap-base"],
                              capture_output=True, text=True, timeout=900)
        assert made.returncode == 0, made.stderr[-2000:]
    ref = f"{machines.prefix}/python:current"
    subprocess.run(["docker", "tag", _bootstrap_tags()[0], ref], check=True)
    try:
        machines.load_images([ref])
        yield ref
    finally:
        subprocess.run(["docker", "rmi", ref], capture_output=True)

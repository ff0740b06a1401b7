"""Real-engine tests: a live Docker engine, random project names, cleanup in fixtures.

Skipped on a laptop without Docker; under CI=true a missing engine fails the run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[2] / "src" / "dockyard" / "examples" / "quickstart" / "fleet.yaml"


def _engine_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def engine() -> None:
    if not _engine_answers():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no Docker engine answers: scripts/install-engine.sh "
                        "(run by `make test`) should have started one")
        pytest.skip("no Docker engine answers here (run scripts/install-engine.sh)")


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dockyard-state")


def dockyard(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
             timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "dockyard", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


@pytest.fixture(scope="session")
def example_built(engine: None, state_dir: Path) -> Path:
    """The example fleet's images, built once for the session (bootstrap base included)."""
    result = dockyard("-f", str(EXAMPLE), "build", env={"DOCKYARD_STATE": str(state_dir)})
    assert result.returncode == 0, result.stderr[-4000:]
    return state_dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def project(engine: None) -> Iterator[str]:
    """A unique compose project; everything it made is removed afterwards, volumes included."""
    name = f"dytest-{uuid.uuid4().hex[:8]}"
    yield name
    ids = subprocess.run(["docker", "ps", "-aq", "--filter",
                          f"label=com.docker.compose.project={name}"],
                         capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
    vols = subprocess.run(["docker", "volume", "ls", "-q", "--filter",
                           f"label=com.docker.compose.project={name}"],
                          capture_output=True, text=True).stdout.split()
    if vols:
        subprocess.run(["docker", "volume", "rm", "-f", *vols], capture_output=True)
    subprocess.run(["docker", "network", "rm", f"{name}_default"], capture_output=True)

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


def _bootstrap_tags() -> list[str]:
    out = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}",
                          "dockyard/bootstrap"], capture_output=True, text=True, check=True)
    return [t for t in out.stdout.split() if ":<none>" not in t]


@pytest.fixture(scope="session")
def python_image(engine: None) -> Iterator[str]:
    """A stock image with python3 and tini under a tag of the session's own (a local
    bootstrap base, made once when there is none); removed afterwards."""
    if not _bootstrap_tags():
        result = dockyard("bootstrap-base", timeout=900)
        assert result.returncode == 0, result.stderr[-2000:]
    ref = f"dytest-{uuid.uuid4().hex[:8]}/python:current"
    subprocess.run(["docker", "tag", _bootstrap_tags()[0], ref], check=True)
    yield ref
    subprocess.run(["docker", "rmi", "-f", ref], capture_output=True)


class Lines:
    """A running `dockyard` whose stderr is read line by line as it comes (for tests that
    act at a moment it announces: a level starting, a pause point)."""

    def __init__(self, *args: str, cwd: Path, env: dict[str, str] | None = None) -> None:
        import threading

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dockyard", *args], cwd=cwd, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "COLUMNS": "200", **(env or {})})
        self.seen: list[str] = []
        self._new = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._new:
                self.seen.append(line)
                self._new.notify_all()
        with self._new:
            self.seen.append("")  # end of output
            self._new.notify_all()

    def wait_for(self, text: str, timeout: float = 300) -> str:
        """The first stderr line holding `text`; fails when the process ends first."""
        import time

        end = time.monotonic() + timeout
        with self._new:
            while True:
                for line in self.seen:
                    if text in line:
                        return line
                if "" in self.seen:
                    raise AssertionError(f"dockyard ended before saying {text!r}:\n"
                                         + "".join(self.seen))
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {text!r} within {timeout} s:\n"
                                         + "".join(self.seen))
                self._new.wait(left)

    def finish(self, timeout: float = 600) -> tuple[int, str, str]:
        """Exit status, stdout and stderr once it ends."""
        out = self.proc.stdout.read() if self.proc.stdout else ""
        code = self.proc.wait(timeout)
        with self._new:
            while "" not in self.seen:
                self._new.wait(5)
        return code, out, "".join(self.seen)

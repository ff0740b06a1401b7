"""What users see when things go wrong, on a real engine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dockyard.engine.run import run
from dockyard.errors import FindingsError, ManifestError, MissingProgram, UnhealthyError
from tests.engine.conftest import dockyard

pytestmark = pytest.mark.engine

BROKEN = """\
fleet: broken
machines:
  local: {cpus: 2, memory: 4GiB}
services:
  ok:
    image: quickstart/family-base-python:current
    command: [python3, -c, "import time; time.sleep(600)"]
    health: {cmd: [python3, -c, "pass"], interval: 1s, retries: 3}
  slowpoke:
    image: quickstart/family-base-python:current
    command: [python3, -c, "print('booting the model', flush=True); import time; time.sleep(600)"]
    depends_on: [ok]
    health: {cmd: [python3, -c, "print('model not loaded'); raise SystemExit(1)"],
             interval: 1s, retries: 2}
  crasher:
    image: quickstart/family-base-python:current
    command: [python3, -c, "raise SystemExit('config file missing')"]
    depends_on: [ok]
    health: {cmd: [python3, -c, "pass"], interval: 1s, retries: 30}
"""


def _containers(project: str) -> list[str]:
    return subprocess.run(["docker", "ps", "-aq", "--filter",
                           f"label=com.docker.compose.project={project}"],
                          capture_output=True, text=True).stdout.split()


def test_unhealthy_service_is_named_with_health_output_and_logs(
        example_built: Path, project: str, tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(BROKEN)
    result = dockyard("-p", project, "up", cwd=tmp_path,
                      env={"DOCKYARD_STATE": str(tmp_path / "state")})
    assert result.returncode == UnhealthyError.exit_code == 4, result.stdout + result.stderr
    err = result.stderr
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1, err
    assert "service slowpoke did not become healthy" in err
    assert "model not loaded" in err  # its last health output
    assert "booting the model" in err  # its last log lines
    assert "service crasher did not become healthy" in err
    # exit code 1, or (when the restart policy was quicker than the probe) restarted
    assert ("container exited (exit code 1)" in err
            or "container exited and its restart policy started it again" in err), err
    assert "config file missing" in err
    assert "left running: ok" in err  # what started is reported and left running
    states = subprocess.run(["docker", "ps", "--filter",
                             f"label=com.docker.compose.project={project}", "--format",
                             '{{.Label "com.docker.compose.service"}}'],
                            capture_output=True, text=True).stdout.split()
    assert "ok" in states


def test_invalid_manifest_touches_no_container(engine: None, project: str,
                                               tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(BROKEN.replace("    depends_on: [ok]\n    health",
                                                        "    depend_on: [ok]\n    health", 1))
    result = dockyard("-p", project, "up", cwd=tmp_path)
    assert result.returncode == ManifestError.exit_code == 2
    assert "fleet.yaml:12:5" in result.stderr and "did you mean `depends_on`" in result.stderr
    assert "Traceback" not in result.stderr
    assert _containers(project) == []


def test_port_collision_stops_up_before_any_container(engine: None, project: str,
                                                       tmp_path: Path) -> None:
    clash = BROKEN.replace("  ok:\n", "  ok:\n    ports: {http: 18080}\n", 1).replace(
        "  slowpoke:\n", "  slowpoke:\n    ports: {http: 18080}\n", 1)
    (tmp_path / "fleet.yaml").write_text(clash)
    result = dockyard("-p", project, "up", cwd=tmp_path)
    assert result.returncode == FindingsError.exit_code == 1  # as `check` exits on it
    assert "DY101" in result.stderr and "nothing was started" in result.stderr
    assert _containers(project) == []


def test_no_engine_is_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(BROKEN)
    sock = f"unix://{tmp_path}/no-such-docker.sock"
    result = dockyard("ps", cwd=tmp_path, env={"DOCKER_HOST": sock})
    assert result.returncode == 3
    assert f"no Docker engine answers at {sock}" in result.stderr
    assert "install-engine.sh" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_docker_cli_plugin_that_is_not_installed_is_a_missing_program() -> None:
    """What a CLI without the compose plugin says, from the real Docker CLI: a plugin name
    that no machine has stands in for `compose`."""
    with pytest.raises(MissingProgram) as caught:
        run(["docker", "dockyard-no-such-plugin", "version"], timeout=60)
    assert caught.value.program == "docker dockyard-no-such-plugin"
    assert caught.value.exit_code == 5
    assert "is not installed: it is a Docker CLI plugin" in str(caught.value)

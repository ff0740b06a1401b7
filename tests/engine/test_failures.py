"""What users see when things go wrong, on a real engine."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from dockyard.engine.run import run
from dockyard.errors import FindingsError, ManifestError, MissingProgram, UnhealthyError
from tests.engine.conftest import dockyard, free_port

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
  after:
    image: quickstart/family-base-python:current
    command: [python3, -c, "import time; time.sleep(600)"]
    depends_on: [slowpoke]
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
    assert "service slowpoke did not become healthy within" in err
    assert "(state: running); last health output: model not loaded" in err
    assert "booting the model" in err  # its last log lines
    # exited (exit code 1), or (when the restart policy was quicker than the probe) looping
    assert ("service crasher exited before it became healthy: container exited (exit code 1)"
            in err or "service crasher is crash-looping: container exited" in err), err
    assert "config file missing" in err
    # What is left, exactly: ok runs, slowpoke runs unhealthy, crasher exited or loops,
    # after was created and never started.
    assert "left running: ok, slowpoke (not healthy)" in err, err
    assert ("exited: crasher (exit code 1)" in err
            or "crash-looping (its restart policy keeps starting it): crasher" in err), err
    assert "created, never started: after" in err, err
    states = dict(line.split() for line in subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label=com.docker.compose.project={project}",
         "--format", '{{.Label "com.docker.compose.service"}} {{.State}}'],
        capture_output=True, text=True).stdout.splitlines())
    assert states["ok"] == states["slowpoke"] == "running" and states["after"] == "created"


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


@pytest.mark.parametrize("args", [("ps",), ("down",), ("logs",), ("up",)])
def test_a_wrong_docker_host_is_one_sentence_naming_it(tmp_path: Path,
                                                       args: tuple[str, ...]) -> None:
    (tmp_path / "fleet.yaml").write_text(BROKEN)
    sock = f"unix://{tmp_path}/no-such-docker.sock"
    result = dockyard(*args, cwd=tmp_path, env={"DOCKER_HOST": sock})
    assert result.returncode == 3, result.stderr
    err = result.stderr
    assert [line for line in err.splitlines() if line.strip()] == [
        f"error: no Docker engine answers at {sock} (DOCKER_HOST) (fix: start the engine "
        "DOCKER_HOST names, or correct DOCKER_HOST (unset, it is "
        "unix:///var/run/docker.sock))"], err
    assert "install-engine.sh" not in err and "`docker compose" not in err


def test_a_docker_cli_plugin_that_is_not_installed_is_a_missing_program() -> None:
    """What a CLI without the compose plugin says, from the real Docker CLI: a plugin name
    that no machine has stands in for `compose`."""
    with pytest.raises(MissingProgram) as caught:
        run(["docker", "dockyard-no-such-plugin", "version"], timeout=60)
    assert caught.value.program == "docker dockyard-no-such-plugin"
    assert caught.value.exit_code == 5
    assert "is not installed: it is a Docker CLI plugin" in str(caught.value)


PORTS = """\
fleet: ports
machines:
  local: {{cpus: 2, memory: 4GiB}}
services:
  web:
    image: {image}
    command: [python3, -m, http.server, "8000"]
    ports: {{http: "127.0.0.1:{port}:8000"}}
    health: {{cmd: [python3, -c, "pass"], interval: 1s, retries: 3}}
"""


def test_a_host_port_bound_by_a_process_stops_up_before_anything(
        python_image: str, project: str, tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "fleet.yaml").write_text(PORTS.format(image=python_image, port=port))
    env = {"DOCKYARD_STATE": str(tmp_path / "state")}
    with socket.socket() as held:
        held.bind(("127.0.0.1", port))
        held.listen()
        result = dockyard("-p", project, "up", cwd=tmp_path, env=env)
        checked = dockyard("-p", project, "-m", "local", "check", cwd=tmp_path, env=env)
    assert result.returncode == FindingsError.exit_code == 1, result.stderr  # not 70
    err = result.stderr
    assert "internal error" not in err and "Traceback" not in err
    assert f"DY103: service web publishes host port {port} on machine local, but process " \
        in err and f"(pid {os.getpid()}) on 127.0.0.1 already holds it" in err, err
    assert "nothing was started" in err and _containers(project) == []
    # `check` on the machine itself says the same.
    assert checked.returncode == 1 and "DY103" in checked.stdout, checked.stdout


def test_a_host_port_held_by_another_container_is_named(
        python_image: str, project: str, tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "fleet.yaml").write_text(PORTS.format(image=python_image, port=port))
    other = f"{project}-other"
    subprocess.run(["docker", "run", "-d", "--name", other, "--label",
                    f"com.docker.compose.project={project}-x", "-p", f"127.0.0.1:{port}:80",
                    python_image, "sleep", "600"], check=True, capture_output=True)
    try:
        result = dockyard("-p", project, "up", cwd=tmp_path,
                          env={"DOCKYARD_STATE": str(tmp_path / "state")})
    finally:
        subprocess.run(["docker", "rm", "-f", other], capture_output=True)
    assert result.returncode == 1, result.stderr
    assert (f"host port {port} on machine local, but container {other}, compose project "
            f"{project}-x on 127.0.0.1 already holds it") in result.stderr, result.stderr
    assert f"stop it (`docker stop {other}`), or give web another host port" in result.stderr
    assert _containers(project) == []
    # Once it is gone, up starts, and an up of the running fleet is not its own rival.
    first = dockyard("-p", project, "up", cwd=tmp_path,
                     env={"DOCKYARD_STATE": str(tmp_path / "state")})
    assert first.returncode == 0, first.stderr
    again = dockyard("-p", project, "up", cwd=tmp_path,
                     env={"DOCKYARD_STATE": str(tmp_path / "state")})
    assert again.returncode == 0 and "nothing changed" in again.stdout, again.stderr

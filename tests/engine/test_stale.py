"""`up` never runs a stale image (issue 10 F): a changed `command:` once ran the old CMD baked
into the image. Now the command is in the rendered compose file too, and an image built from
an older manifest entry is rebuilt before anything starts, or refused with --no-build."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.errors import StaleImages
from tests.engine.conftest import dockyard

pytestmark = pytest.mark.engine

FLEET = """\
fleet: {name}
machines:
  local: {{cpus: 2, memory: 4GiB}}
families:
  base: {{from: 'debian:bookworm-slim', apt: [python3, python3-venv]}}
services:
  app:
    family: base
    command: [python3, -c, "print('{word}', flush=True); import time; time.sleep(600)"]
    health: {{cmd: [python3, -c, "pass"], interval: 1s, retries: 5}}
"""


@pytest.fixture
def fleet(engine: None, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A fleet name and folder; its images are removed afterwards (after the `project`
    fixture removed the containers that use them: tests take `fleet` first)."""
    name = f"dyt{uuid.uuid4().hex[:6]}"
    yield name, tmp_path
    ids = subprocess.run(["docker", "images", "-q", "--filter", f"reference={name}/*"],
                         capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rmi", "-f", *sorted(set(ids))], capture_output=True)


def _up(folder: Path, project: str, *args: str) -> subprocess.CompletedProcess[str]:
    return dockyard("-p", project, "up", *args, cwd=folder, timeout=900,
                    env={"DOCKYARD_STATE": str(folder / "state")})


def _running(project: str) -> dict[str, object]:
    ids = subprocess.run(["docker", "ps", "-q", "--filter",
                          f"label=com.docker.compose.project={project}"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert len(ids) == 1, ids
    info: dict[str, object] = json.loads(subprocess.run(
        ["docker", "inspect", ids[0]], capture_output=True, text=True, check=True).stdout)[0]
    return info


def _logs(container: dict[str, object]) -> str:
    return subprocess.run(["docker", "logs", str(container["Id"])], capture_output=True,
                          text=True, check=True).stdout


def test_an_edited_command_is_what_runs_after_up(fleet: tuple[str, Path], project: str) -> None:
    name, folder = fleet
    (folder / "fleet.yaml").write_text(FLEET.format(name=name, word="version one"))
    first = _up(folder, project)
    assert first.returncode == 0, first.stdout + first.stderr[-3000:]
    assert "version one" in _logs(_running(project))
    labels = subprocess.run(["docker", "image", "inspect", f"{name}/app:current", "--format",
                             "{{json .Config.Labels}}"], capture_output=True, text=True,
                            check=True).stdout
    one = json.loads(labels)["dev.dockyard.spec"]

    (folder / "fleet.yaml").write_text(FLEET.format(name=name, word="version two"))
    second = _up(folder, project)
    assert second.returncode == 0, second.stdout + second.stderr[-3000:]
    assert "images built from an older manifest entry for app: building them first" \
        in second.stderr, second.stderr
    running = _running(project)
    assert "version two" in _logs(running) and "version one" not in _logs(running)
    assert "version two" in " ".join(running["Config"]["Cmd"])  # type: ignore[index]
    # The image was rebuilt for the new entry (its CMD too: it also runs on its own).
    image = json.loads(subprocess.run(["docker", "image", "inspect", f"{name}/app:current"],
                                      capture_output=True, text=True, check=True).stdout)[0]
    assert image["Config"]["Labels"]["dev.dockyard.spec"] != one
    assert "version two" in " ".join(image["Config"]["Cmd"])
    assert running["Image"] == image["Id"]
    assert "nothing changed" in _up(folder, project).stdout  # and now it is current

    # With --no-build, a stale image is refused, and nothing changes.
    (folder / "fleet.yaml").write_text(FLEET.format(name=name, word="version three"))
    refused = _up(folder, project, "--no-build")
    assert refused.returncode == StaleImages.exit_code == 1, refused.stderr
    assert "images built from an older manifest entry for app: up does not run them with " \
           "--no-build" in refused.stderr
    assert "dockyard build" in refused.stderr and "Traceback" not in refused.stderr
    assert _running(project)["Id"] == running["Id"]

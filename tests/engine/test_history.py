"""Pins and history on a real engine (issue 11 item 5): four builds of one image with
`image_history: 2`; GC drops the old dated tag nobody uses and keeps the older one a
container runs; `images --history` lists what is kept; `rollback --to` goes back to a kept
tag and refuses one that is gone, naming the kept ones; `image_tag:` (FORCE_IMAGE_TAG) pins
a service, and `check`/`up` refuse a pin that is not kept."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.conftest import dockyard

pytestmark = pytest.mark.engine

FLEET = """\
fleet: {name}
machines:
  local: {{cpus: 2, memory: 4GiB}}
families:
  base: {{from: 'debian:bookworm-slim', apt: [python3, python3-venv]}}
image_history: 2
services:
  app:
    family: base
    build: app
    image_tag: ${{FORCE_IMAGE_TAG:-}}
    command: [python3, -c, "import time; time.sleep(600)"]
    health: {{cmd: [python3, -c, "pass"], interval: 1s, retries: 5}}
"""


@pytest.fixture
def fleet(engine: None, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """A fleet name, its compose project and folder; afterwards the project's containers
    are removed, then the fleet's images."""
    name = f"hhi{uuid.uuid4().hex[:6]}"
    (tmp_path / "app").mkdir()
    (tmp_path / "fleet.yaml").write_text(FLEET.format(name=name))
    yield name, f"hhi-{name}", tmp_path
    ids = subprocess.run(["docker", "ps", "-aq", "--filter",
                          f"label=com.docker.compose.project=hhi-{name}"],
                         capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
    subprocess.run(["docker", "network", "rm", f"hhi-{name}_default"], capture_output=True)
    ids = subprocess.run(["docker", "images", "-q", "--filter", f"reference={name}/*"],
                         capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rmi", "-f", *sorted(set(ids))], capture_output=True)


def _run(folder: Path, project: str, *args: str, pin: str = ""
         ) -> subprocess.CompletedProcess[str]:
    return dockyard("-p", project, *args, cwd=folder, timeout=900,
                    env={"DOCKYARD_STATE": str(folder / "state"), "FORCE_IMAGE_TAG": pin})


def _build(folder: Path, project: str, version: int) -> str:
    """Change the service's code and build: the dated tag this build gave the image."""
    (folder / "app" / "version.txt").write_text(f"{version}\n")
    result = _run(folder, project, "build")
    assert result.returncode == 0, result.stderr[-3000:]
    found = re.search(r"built: .*service-app.* \(tagged (\S+) and current\)", result.stdout)
    assert found, result.stdout
    return found.group(1)


def _id(ref: str) -> str:
    result = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref],
                            capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def _running_image(project: str) -> str:
    ids = subprocess.run(["docker", "ps", "-q", "--filter",
                          f"label=com.docker.compose.project={project}"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert len(ids) == 1, ids
    return subprocess.run(["docker", "inspect", "--format", "{{.Image}}", ids[0]],
                          capture_output=True, text=True, check=True).stdout.strip()


def _history(folder: Path, project: str) -> dict[str, list[dict[str, object]]]:
    result = _run(folder, project, "images", "--history", "--format", "json")
    assert result.returncode == 0, result.stderr[-3000:]
    return {i["name"]: i["tags"] for i in json.loads(result.stdout)["images"]}


def test_history_gc_rollback_to_and_pins(fleet: tuple[str, str, Path]) -> None:
    name, project, folder = fleet
    repo = f"{name}/app"
    first = _build(folder, project, 1)
    up = _run(folder, project, "up")
    assert up.returncode == 0, up.stderr[-3000:]
    assert _running_image(project) == _id(f"{repo}:{first}")
    second, third, fourth = (_build(folder, project, v) for v in (2, 3, 4))
    assert len({first, second, third, fourth}) == 4

    # Kept: the newest two, and the first, which the running container uses; the second
    # (neither in use, :current nor :prev) was removed by the fourth build's GC.
    kept = _history(folder, project)["app"]
    assert [t["tag"] for t in kept] == [fourth, third, first]
    assert kept[0]["marks"] == ["current"] and kept[1]["marks"] == ["prev"]
    assert [m for m in kept[2]["marks"] if str(m).startswith("in use by ")]  # type: ignore
    assert _id(f"{repo}:{second}") == ""
    table = _run(folder, project, "images", "--history")
    assert table.returncode == 0 and first in table.stdout and "in use by" in table.stdout

    # A tag that is gone: refused, naming the kept ones; nothing moved.
    refused = _run(folder, project, "rollback", "--to", second)
    assert refused.returncode == 1, refused.stderr
    assert f"{fourth}, {third}, {first}" in refused.stderr and "Traceback" not in refused.stderr
    assert _id(f"{repo}:current") == _id(f"{repo}:{fourth}")

    # Back to the third build: :current is its image, :prev the fourth's, and it runs.
    back = _run(folder, project, "rollback", "--to", third)
    assert back.returncode == 0, back.stderr[-3000:]
    assert _id(f"{repo}:current") == _id(f"{repo}:{third}")
    assert _id(f"{repo}:prev") == _id(f"{repo}:{fourth}")
    assert _running_image(project) == _id(f"{repo}:{third}")
    deployed = json.loads((folder / "state" / "deployed" / "images.json").read_text())["services"]
    assert deployed["app"]["id"] == _id(f"{repo}:{third}")

    # A pin on a tag that is gone: check and up refuse it, located; a kept one runs.
    check = _run(folder, project, "check", pin=second)
    assert check.returncode == 1 and "DY608" in check.stdout, check.stdout
    pinned_gone = _run(folder, project, "up", pin=second)
    assert pinned_gone.returncode == 1 and "DY608" in pinned_gone.stderr, pinned_gone.stderr
    pinned = _run(folder, project, "up", pin=first)
    assert pinned.returncode == 0, pinned.stderr[-3000:]
    assert _running_image(project) == _id(f"{repo}:{first}")
    assert _id(f"{repo}:current") == _id(f"{repo}:{third}")  # a pin moves no tag

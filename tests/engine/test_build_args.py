"""`build_args:` (an imported compose `build.args`) reach an own Dockerfile's ARGs in
`dockyard build`, and a changed one rebuilds the image (it is part of the inputs hash)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.conftest import dockyard

pytestmark = pytest.mark.engine

DOCKERFILE = """ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG GREETING=unset
RUN echo "$GREETING" > /tmp/greeting
"""


def manifest(name: str, greeting: str) -> str:
    # The family is the one test_adopt_build uses: it reuses the bootstrapped base.
    return f"""fleet: {name}
machines: {{local: {{}}}}
families:
  tiny: {{from: python:3.11-slim, apt: [redis-server]}}
services:
  web:
    family: tiny
    build: web
    dockerfile: Dockerfile
    build_args: {{GREETING: {greeting}}}
    command: [sleep, infinity]
"""


@pytest.fixture
def fleet_dir(engine: None, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    name = f"dyt{uuid.uuid4().hex[:6]}"
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "Dockerfile").write_text(DOCKERFILE)
    yield tmp_path, name
    refs = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
                          capture_output=True, text=True).stdout.split()
    mine = [r for r in refs if r.startswith(f"{name}/")]
    if mine:
        subprocess.run(["docker", "rmi", "-f", *mine], capture_output=True)


def greeting(image: str) -> str:
    return subprocess.run(["docker", "run", "--rm", "--entrypoint", "cat", image,
                           "/tmp/greeting"], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_build_args_reach_the_dockerfile_and_rebuild_when_changed(
        fleet_dir: tuple[Path, str]) -> None:
    root, name = fleet_dir
    env = {"DOCKYARD_STATE": str(root / "state")}
    for value in ("hello", "again"):
        (root / "fleet.yaml").write_text(manifest(name, value))
        built = dockyard("-f", str(root / "fleet.yaml"), "build", env=env)
        assert built.returncode == 0, built.stderr[-3000:]
        assert greeting(f"{name}/web:current") == value

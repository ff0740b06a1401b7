"""`dockyard adopt` output is a Dockerfile that really builds on the family and runs non-root."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.conftest import dockyard

pytestmark = pytest.mark.engine

ORIGINAL = """FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 tini \\
    && rm -rf /var/lib/apt/lists/*
RUN useradd -m appuser
WORKDIR /app
COPY . .
RUN mkdir -p /app/data && chown -R appuser /app/data
USER appuser
CMD python3 -m http.server 8000 --directory /app
"""


@pytest.fixture
def fleet_dir(engine: None, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    name = f"dyt{uuid.uuid4().hex[:6]}"
    svc = tmp_path / "web"
    svc.mkdir()
    (svc / "Dockerfile").write_text(ORIGINAL)
    (svc / "index.html").write_text("ok\n")
    # apt: [redis-server] reuses the example fleet's bootstrapped base (no mmdebstrap run).
    (tmp_path / "fleet.yaml").write_text(f"""fleet: {name}
machines: {{local: {{}}}}
families:
  tiny: {{from: python:3.11-slim, apt: [redis-server]}}
services:
  web:
    family: tiny
    build: web
    dockerfile: Dockerfile.adopted
    ports: {{http: {{port: 8000, publish: false}}}}
    health: {{http: /, interval: 1s, retries: 20}}
""")
    yield tmp_path, name
    refs = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
                          capture_output=True, text=True).stdout.split()
    mine = [r for r in refs if r.startswith(f"{name}/")]
    if mine:
        subprocess.run(["docker", "rmi", "-f", *mine], capture_output=True)


def test_adopted_dockerfile_builds_and_runs_as_app_user(fleet_dir: tuple[Path, str],
                                                        project: str) -> None:
    root, name = fleet_dir
    manifest = root / "fleet.yaml"
    env = {"DOCKYARD_STATE": str(root / "state")}
    adopted = dockyard("-f", str(manifest), "adopt", str(root / "web" / "Dockerfile"),
                       "--family", "tiny", "-o", str(root / "web" / "Dockerfile.adopted"),
                       env=env)
    assert adopted.returncode == 0, adopted.stderr
    lines = [ln for ln in (root / "web" / "Dockerfile.adopted").read_text().splitlines()
             if not ln.startswith("#")]
    text = "\n".join(lines)
    assert "apt-get" not in text and "useradd" not in text and "FROM ${BASE_IMAGE}" in lines

    up = dockyard("-f", str(manifest), "-p", project, "up", env=env)
    assert up.returncode == 0, up.stderr[-3000:]
    ps = json.loads(dockyard("-f", str(manifest), "-p", project, "ps", "--format", "json",
                             env=env).stdout)
    assert [(r["service"], r["health"]) for r in ps] == [("web", "healthy")]
    user = subprocess.run(["docker", "image", "inspect", "-f", "{{.Config.User}}",
                           f"{name}/web:current"], capture_output=True, text=True).stdout.strip()
    assert user == "10001:10001"
    # The folder the original chowned to its own user belongs to the app user now.
    owner = subprocess.run(["docker", "run", "--rm", "--entrypoint", "stat", f"{name}/web:current",
                            "-c", "%u:%g", "/app/data"], capture_output=True, text=True)
    assert owner.stdout.strip().startswith("10001:"), owner.stderr
    dockyard("-f", str(manifest), "-p", project, "down", env=env)

"""Secrets stay secret on a real engine (issue 10 D, E): `up` hands the values from .env to
compose, the container gets them, and no file in the state folder holds them; `down` needs no
.env; `check --images` finds an env file and a private key inside a built image."""

from __future__ import annotations

import json
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.conftest import dockyard

pytestmark = pytest.mark.engine

SECRET = "tok-" + uuid.uuid4().hex
FLEET = """\
fleet: secrets
machines:
  local: {cpus: 2, memory: 4GiB}
services:
  app:
    image: quickstart/family-base-python:current
    command: [python3, -c, "import time; time.sleep(600)"]
    env:
      API_TOKEN: ${API_TOKEN:?set API_TOKEN in .env}
      DATABASE_URL: postgres://app:${API_TOKEN}@db:5432/app
      MODE: ${MODE:-plain}
    # healthy only when compose delivered the value
    health: {cmd: [python3, -c, "import os, sys; sys.exit(len(os.environ['API_TOKEN']) < 8)"],
             interval: 1s, retries: 20}
"""


def _containers(project: str) -> list[str]:
    return subprocess.run(["docker", "ps", "-aq", "--filter",
                           f"label=com.docker.compose.project={project}"],
                          capture_output=True, text=True, check=True).stdout.split()


def test_up_delivers_the_values_no_file_holds_them_and_down_needs_none(
        example_built: Path, project: str, tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(FLEET)
    (tmp_path / ".env").write_text(f"API_TOKEN={SECRET}\n")
    up = dockyard("-p", project, "up", cwd=tmp_path)
    assert up.returncode == 0, up.stdout + up.stderr
    assert SECRET not in up.stdout + up.stderr

    state = tmp_path / ".dockyard"
    compose_file = state / "render" / "compose.local.yaml"
    text = compose_file.read_text()
    assert "API_TOKEN: ${API_TOKEN:?set API_TOKEN in .env}" in text
    assert "postgres://app:${API_TOKEN}@db:5432/app" in text
    assert stat.S_IMODE(compose_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(compose_file.parent.stat().st_mode) == 0o700
    held = [str(p) for p in state.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert held == []

    # The running container got the values through compose.
    [cid] = _containers(project)
    env = json.loads(subprocess.run(["docker", "inspect", "--format", "{{json .Config.Env}}",
                                     cid], capture_output=True, text=True, check=True).stdout)
    assert f"API_TOKEN={SECRET}" in env
    assert f"DATABASE_URL=postgres://app:{SECRET}@db:5432/app" in env
    assert "MODE=plain" in env

    # Same values, same config hash: a second `up` touches nothing.
    again = dockyard("-p", project, "up", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "nothing changed" in again.stdout, again.stdout + again.stderr

    # Stopping needs no secrets: with .env gone, down still removes the fleet.
    (tmp_path / ".env").unlink()
    refused = dockyard("-p", project, "up", cwd=tmp_path)
    assert refused.returncode == 2 and "required variable API_TOKEN" in refused.stderr
    down = dockyard("-p", project, "down", cwd=tmp_path)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "Traceback" not in down.stderr
    assert _containers(project) == []


DOCKERFILE = """ARG BASE_IMAGE
FROM ${BASE_IMAGE}
USER 0:0
WORKDIR /srv
COPY secrets.txt /app/.env
COPY secrets.txt /app/.env.example
RUN printf -- '-----BEGIN PRIVATE KEY-----\\nMIIE\\n' > /srv/server.pem \\
    && printf -- '-----BEGIN CERTIFICATE-----\\nMIIC\\n' > /srv/cert.pem
USER 10001:10001
"""


@pytest.fixture
def leaky(engine: None, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    name = f"dyt{uuid.uuid4().hex[:6]}"
    # The family is the one test_build_args and test_adopt_build use: it reuses their base.
    (tmp_path / "fleet.yaml").write_text(f"""fleet: {name}
machines: {{local: {{}}}}
families:
  tiny: {{from: python:3.11-slim, apt: [redis-server]}}
services:
  leaky:
    family: tiny
    build: web
    dockerfile: Dockerfile
    command: [sleep, infinity]
""")
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / "web" / "secrets.txt").write_text(f"API_TOKEN={SECRET}\n")
    yield tmp_path, name
    refs = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
                          capture_output=True, text=True).stdout.split()
    mine = [r for r in refs if r.startswith(f"{name}/")]
    if mine:
        subprocess.run(["docker", "rmi", "-f", *mine], capture_output=True)


def test_check_images_finds_an_env_file_and_a_key_in_a_built_image(
        leaky: tuple[Path, str]) -> None:
    root, name = leaky
    manifest = str(root / "fleet.yaml")
    env = {"DOCKYARD_STATE": str(root / "state")}
    built = dockyard("-f", manifest, "build", env=env)
    assert built.returncode == 0, built.stderr[-3000:]
    plain = dockyard("-f", manifest, "check", env=env)
    assert "DY707" not in plain.stdout  # without --images nothing looks inside
    looked = dockyard("-f", manifest, "check", "--images", "--format", "json", env=env)
    assert looked.returncode == 1, looked.stdout + looked.stderr
    found = [f for f in json.loads(looked.stdout)["findings"] if f["code"] == "DY707"]
    assert len(found) == 1, found
    message = found[0]["message"]
    assert found[0]["service"] == "leaky" and f"{name}/leaky:current" in message
    assert "/app/.env" in message and "/srv/server.pem" in message  # /app and the WORKDIR
    assert ".env.example" not in message and "cert.pem" not in message
    assert SECRET not in looked.stdout  # it names the file, never what is in it
    # The build's log and compose file in the state folder are the owner's alone.
    logs = list((root / "state" / "build").glob("*.log"))
    assert logs and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in logs)

"""A service's build context holds only what its image may hold (issue 10 E), on a real
engine: no `.env`, rendered compose, manifest or locks in any image, and a file added beside
the manifest rebuilds nothing."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.conftest import dockyard

pytestmark = pytest.mark.engine

SECRET = "tok-" + uuid.uuid4().hex
FLEET = """\
fleet: {name}
machines: {{box: {{arch: amd64}}}}
families:
  base: {{from: 'debian:bookworm-slim', apt: [python3, python3-venv]}}
services:
  kv:
    family: base
    command: [python3, -c, "import time; time.sleep(100000)"]
    env: {{API_TOKEN: "${{API_TOKEN:?set it in .env}}"}}
  api:
    family: base
    build: .
    command: [python3, app.py]
"""


@pytest.fixture(scope="module")
def fleet(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    name = f"dyt{uuid.uuid4().hex[:6]}"
    root = tmp_path_factory.mktemp("context")
    (root / "fleet.yaml").write_text(FLEET.format(name=name))
    (root / ".env").write_text(f"API_TOKEN={SECRET}\n")
    (root / "app.py").write_text("print('hello')\n")
    (root / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (root / ".dockerignore").write_text("id_rsa\n")
    yield name, root
    ids = subprocess.run(["docker", "images", "-q", "--filter", f"reference={name}/*"],
                         capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rmi", "-f", *sorted(set(ids))], capture_output=True)


def files_in(ref: str) -> list[str]:
    out = subprocess.run(["docker", "run", "--rm", "--entrypoint", "find", ref, "/app", "-type",
                          "f"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return sorted(out.stdout.split())


def test_images_hold_no_secret_and_an_unrelated_file_rebuilds_nothing(
        fleet: tuple[str, Path]) -> None:
    name, root = fleet
    built = dockyard("-f", str(root / "fleet.yaml"), "build", cwd=root, timeout=1800)
    assert built.returncode == 0, built.stderr[-3000:]
    assert (root / ".dockyard" / "render").is_dir()  # the state folder sits in the context
    assert files_in(f"{name}/kv:current") == []  # no `build:`: an empty context
    assert files_in(f"{name}/api:current") == ["/app/app.py"]  # no .env, .dockyard, key
    for ref in (f"{name}/kv:current", f"{name}/api:current"):
        history = subprocess.run(["docker", "history", "--no-trunc", ref], capture_output=True,
                                 text=True, check=True).stdout
        assert SECRET not in history
        saved = subprocess.run(["docker", "save", ref], capture_output=True, check=True).stdout
        assert SECRET.encode() not in saved, f"{ref} holds the secret in a layer"
    (root / "NOTES.txt").write_text("remember the milk\n")
    (root / ".env").write_text(f"API_TOKEN={SECRET}-rotated\n")
    again = dockyard("-f", str(root / "fleet.yaml"), "build", cwd=root, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    # NOTES.txt lands in api's context (`build: .`), but kv and the family stay as they are.
    assert "unchanged: 2" in again.stdout and "service-api" in again.stdout, again.stdout

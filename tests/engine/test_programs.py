"""DY504 judged on a real image: `check --images` looks inside the images present."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dockyard.engine.connection import Engine
from dockyard.engine.programs import programs_present
from tests.engine.conftest import dockyard


def _bootstrap_tags() -> list[str]:
    out = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}",
                          "dockyard/bootstrap"], capture_output=True, text=True, check=True)
    return [t for t in out.stdout.split() if ":<none>" not in t]


@pytest.fixture(scope="module")
def base_image(engine: None) -> str:
    """Any local bootstrap base: python3 and tini, no curl, no wget."""
    if not _bootstrap_tags():
        result = dockyard("bootstrap-base", timeout=900)
        assert result.returncode == 0, result.stderr[-2000:]
    return _bootstrap_tags()[0]


def test_programs_present_looks_on_the_images_path(base_image: str) -> None:
    engine = Engine.local()
    found = programs_present(engine, base_image, ["python3", "tini", "curl", "wget", "/bin/sh"])
    assert found == {"python3", "tini", "/bin/sh"}
    assert programs_present(engine, "dockyard/no-such-image:0", ["sh"]) is None


def _fleet(tmp_path: Path, image: str, probe: str) -> Path:
    (tmp_path / "fleet.yaml").write_text(f"""\
fleet: progtest
machines: {{local: {{}}}}
services:
  api:
    image: {image}
    user: "10001"
    command: [python3, -m, http.server, "8080"]
    ports: {{http: {{port: 8080, publish: false}}}}
    health: {{cmd: {probe}}}
""")
    return tmp_path


def test_check_images_finds_a_probe_program_the_image_lacks(base_image: str,
                                                           tmp_path: Path) -> None:
    folder = _fleet(tmp_path, base_image, "[curl, -f, 'http://127.0.0.1:8080/']")
    plain = dockyard("check", cwd=folder)
    assert "DY504" not in plain.stdout  # nothing known about this image without looking
    looked = dockyard("check", "--images", cwd=folder)
    assert looked.returncode == 1, looked.stdout + looked.stderr
    assert "error DY504: service api: the health check runs curl" in looked.stdout


def test_check_images_is_clean_when_the_program_is_there(base_image: str,
                                                        tmp_path: Path) -> None:
    folder = _fleet(tmp_path, base_image, "[python3, -c, 'print(1)']")
    looked = dockyard("check", "--images", cwd=folder)
    assert "DY504" not in looked.stdout and "DY503" not in looked.stdout, looked.stdout

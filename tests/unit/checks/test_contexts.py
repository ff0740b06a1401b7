"""DY605/DY606 (build contexts that are not there), DY705 (a key file an image would hold),
DY706 (a secret in a family's ENV): manifests written to a folder, as users keep them."""

from __future__ import annotations

from pathlib import Path

from dockyard.checks import Finding, Severity, check
from dockyard.manifest.load import load
from dockyard.plan import plan
from tests.unit.checks.helpers import assert_finding

FLEET = """\
fleet: demo
machines:
  local: {{}}
families:
  py: {{from: "python:3.11-slim"{env}}}
services:
  api:
    family: py
    build: {build}
    command: [python3, app.py]
    health: {{cmd: [/bin/true]}}
"""


def found(tmp_path: Path, code: str, *, build: str = "services/api", env: str = "",
          files: dict[str, str] | None = None, environ: dict[str, str] | None = None
          ) -> list[Finding]:
    (tmp_path / "fleet.yaml").write_text(FLEET.format(build=build, env=env))
    for rel, text in (files or {}).items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    fleet = load(tmp_path / "fleet.yaml", environ=environ or {})
    return [f for f in check(fleet, plan(fleet)) if f.code == code]


def test_dy605_a_typo_beside_the_real_folder(tmp_path: Path) -> None:
    (f,) = found(tmp_path, "DY605", build="services/apii", files={"services/api/app.py": ""})
    assert_finding(f, "DY605", Severity.ERROR, "fleet.yaml:9:5", "api")
    assert "services/apii" in f.message and "did you mean services/api?" in f.fix


def test_dy605_a_dockerfile_that_is_not_there(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(FLEET.format(build="services/api", env="")
                                         + "    dockerfile: Dockerfil\n")
    (tmp_path / "services" / "api").mkdir(parents=True)
    fleet = load(tmp_path / "fleet.yaml", environ={})
    (f,) = [f for f in check(fleet, plan(fleet)) if f.code == "DY605"]
    assert "services/api/Dockerfil does not exist" in f.message


def test_dy606_code_that_lives_elsewhere_is_a_warning(tmp_path: Path) -> None:
    assert found(tmp_path, "DY605", build="services/api") == []
    (f,) = found(tmp_path, "DY606", build="services/api")
    assert f.severity is Severity.WARNING and "services/api" in f.message


def test_dy605_quiet_when_the_context_is_there(tmp_path: Path) -> None:
    files = {"services/api/app.py": ""}
    assert found(tmp_path, "DY605", files=files) == []
    assert found(tmp_path, "DY606", files=files) == []


def test_dy705_a_private_key_in_the_context(tmp_path: Path) -> None:
    files = {"services/api/app.py": "", "services/api/deploy/id_ed25519": "x",
             "services/api/tls.pem": "-----BEGIN PRIVATE KEY-----\n"}
    (f,) = found(tmp_path, "DY705", files=files)
    assert_finding(f, "DY705", Severity.ERROR, "fleet.yaml:9:5", "api")
    assert "deploy/id_ed25519" in f.message and "tls.pem" in f.message
    assert ".dockerignore" in f.fix


def test_dy705_quiet_for_env_files_public_certificates_and_ignored_keys(tmp_path: Path) -> None:
    files = {"services/api/app.py": "", "services/api/.env": "API_TOKEN=x\n",
             "services/api/.env.prod": "A=1\n", "services/api/ca.pem": "-----BEGIN CERTIFICATE",
             "services/api/secrets/id_rsa": "x", "services/api/.dockerignore": "secrets\n"}
    assert found(tmp_path, "DY705", files=files) == []


def test_dy706_a_secret_in_a_familys_env(tmp_path: Path) -> None:
    (f,) = found(tmp_path, "DY706", env=", env: {HF_TOKEN: '${HF_TOKEN:?}'}",
                 files={"services/api/app.py": ""}, environ={"HF_TOKEN": "hf_x"})
    assert_finding(f, "DY706", Severity.ERROR, "fleet.yaml:5:40", "")
    assert "HF_TOKEN" in f.message and "docker history" in f.message
    (g,) = found(tmp_path, "DY706", env=", env: {HUB: 'https://${HUB_API_KEY}@hub'}",
                 files={"services/api/app.py": ""}, environ={"HUB_API_KEY": "k"})
    assert "HUB_API_KEY" in g.message


def test_dy706_quiet_for_plain_settings(tmp_path: Path) -> None:
    env = ", env: {HF_HOME: /models, TOKENIZERS_PARALLELISM: 'false', CACHE: '${CACHE:-/c}'}"
    assert found(tmp_path, "DY706", env=env, files={"services/api/app.py": ""}) == []


# --- advice that was wrong (issue 10 F) -----------------------------------------------------

def test_dy403_a_single_file_mount_is_not_told_to_become_a_named_volume(tmp_path: Path) -> None:
    (tmp_path / "config" / "postgres").mkdir(parents=True)
    (tmp_path / "config" / "postgres" / "init.sql").write_text("create table t (x int);\n")
    (tmp_path / "fleet.yaml").write_text("""\
fleet: demo
machines: {local: {}}
services:
  db:
    image: postgres:16.4
    volumes: ["./config/postgres/init.sql:/docker-entrypoint-initdb.d/init.sql", "./pg:/data"]
    health: {cmd: [pg_isready]}
""")
    fleet = load(tmp_path / "fleet.yaml", environ={})
    file_mount, folder = [f for f in check(fleet, plan(fleet)) if f.code == "DY403"]
    assert "/srv/demo/config/postgres/init.sql:/docker-entrypoint-initdb.d/init.sql" in \
        file_mount.fix and "empty folder" in file_mount.fix
    assert "named volume (`data:/data`)" in folder.fix


def test_dy601_names_the_image_it_is_about() -> None:
    from dockyard.manifest.load import loads

    fleet = loads("fleet: demo\nmachines: {local: {}}\nservices:\n"
                  "  q: {image: 'ghcr.io/org/qdrant:latest', health: {cmd: [/bin/true]}}\n",
                  environ={})
    (f,) = [f for f in check(fleet, plan(fleet)) if f.code == "DY601"]
    assert "`ghcr.io/org/qdrant:<version>`" in f.fix and "redis" not in f.fix


def test_dy603_quiet_once_the_family_is_locked(tmp_path: Path) -> None:
    text = """\
fleet: demo
machines: {local: {}, spark: {arch: arm64}}
families:
  web: {from: "python:3.11-slim", requirements: [fastapi]}
services:
  api: {family: web, command: [python3, app.py], health: {cmd: [/bin/true]}}
"""
    (tmp_path / "fleet.yaml").write_text(text)

    def dy603() -> list[Finding]:
        fleet = load(tmp_path / "fleet.yaml", environ={})
        return [f for f in check(fleet, plan(fleet)) if f.code == "DY603"]

    assert len(dy603()) == 1
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks" / "web.amd64.txt").write_text("fastapi==0.115.12 --hash=sha256:x\n")
    assert len(dy603()) == 1  # arm64 (spark) is not locked yet
    (tmp_path / "locks" / "web.arm64.txt").write_text("fastapi==0.115.12 --hash=sha256:x\n")
    assert dy603() == []

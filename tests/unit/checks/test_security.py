"""DY7xx: root users, secrets in the manifest, the Docker socket, open datastores."""

from __future__ import annotations

import pytest

from dockyard.checks import Severity
from tests.unit.checks.helpers import BASE, HEALTH, assert_finding, findings, only

# --- DY701: root ---------------------------------------------------------------------------

@pytest.mark.parametrize("user", ["root", "0", "0:0", "root:root"])
def test_dy701_user_root(user: str) -> None:
    text = BASE + f"""\
services:
  api:
    image: ghcr.io/x/api:1.0
    user: "{user}"
""" + HEALTH
    f = only(text, "DY701")
    assert_finding(f, "DY701", Severity.WARNING, "fleet.yaml:7:5", "api")


def test_dy701_stock_image_known_to_run_as_root() -> None:
    text = BASE + """\
services:
  llm:
    image: vllm/vllm-openai:v0.8.5
""" + HEALTH
    f = only(text, "DY701")
    assert_finding(f, "DY701", Severity.WARNING, "fleet.yaml:6:5", "llm")
    assert "vllm/vllm-openai" in f.message and "user:" in f.fix


@pytest.mark.parametrize(("image", "user"), [
    ("vllm/vllm-openai:v0.8.5", "10001"), ("postgres:16.4", ""), ("ghcr.io/x/api:1.0", "")])
def test_dy701_unprivileged(image: str, user: str) -> None:
    text = BASE + f"""\
services:
  llm:
    image: {image}
    user: "{user}"
""" + HEALTH
    assert findings(text, "DY701") == []


def test_dy701_built_services_run_as_10001() -> None:
    text = BASE + """\
families:
  py: {from: "python:3.11-slim"}
services:
  app:
    family: py
    build: app
""" + HEALTH
    assert findings(text, "DY701") == []


# --- DY702: secrets written inline ---------------------------------------------------------

@pytest.mark.parametrize(("key", "value"), [
    ("POSTGRES_PASSWORD", "hunter2"), ("HF_TOKEN", "hf_abcdef"),
    ("OPENAI_API_KEY", "sk-123"), ("JWT_SECRET", "s3cr3t"), ("SSH_PRIVATE_KEY", "-----BEGIN"),
    ("db_pass", "pa$$word"),  # `$$` is a literal dollar, not a variable
])
def test_dy702_literal_secret(key: str, value: str) -> None:
    text = BASE + f"""\
services:
  api:
    image: ghcr.io/x/api:1.0
    env:
      {key}: "{value}"
""" + HEALTH
    f = only(text, "DY702")
    assert_finding(f, "DY702", Severity.WARNING, "fleet.yaml:8:7", "api")
    assert key in f.message
    assert f"${{{key}:?" in f.fix


def test_dy702_default_written_in_the_manifest() -> None:
    text = BASE + """\
services:
  api:
    image: ghcr.io/x/api:1.0
    env: {DB_PASSWORD: "${DB_PASSWORD:-changeme}"}
""" + HEALTH
    f = only(text, "DY702")
    assert "default `changeme`" in f.message


@pytest.mark.parametrize(("key", "value"), [
    ("DB_PASSWORD", "${DB_PASSWORD:?set it in .env}"), ("HF_TOKEN", "${HF_TOKEN}"),
    ("API_KEY", "$API_KEY"), ("POSTGRES_PASSWORD_FILE", "/run/secrets/pg"),
    ("TOKENIZERS_PARALLELISM", "false"), ("MAX_TOKENS", "4096"), ("DB_PASSWORD", ""),
    ("DISABLE_TOKEN", "true"), ("REQUIRE_API_KEY", "0"),
])
def test_dy702_not_a_literal_secret(key: str, value: str) -> None:
    text = BASE + f"""\
services:
  api:
    image: ghcr.io/x/api:1.0
    env:
      {key}: "{value}"
""" + HEALTH
    environ = {"DB_PASSWORD": "x", "HF_TOKEN": "y", "API_KEY": "z"}
    assert findings(text, "DY702", environ=environ) == []


def test_dy702_in_family_and_agent_env() -> None:
    text = BASE + """\
families:
  py: {from: "python:3.11-slim", env: {SECRET_KEY: abc}}
services:
  crew:
    family: py
    build: crew
    agents:
      a: {command: [run], env: {SLACK_TOKEN: xoxb-1}}
""" + HEALTH
    found = findings(text, "DY702")
    assert [(str(f.where), f.service) for f in found] == [
        ("fleet.yaml:5:40", ""), ("fleet.yaml:11:33", "crew")]
    assert "family py" in found[0].message


# --- DY703: the Docker socket --------------------------------------------------------------

def test_dy703_docker_socket_mounted() -> None:
    text = BASE + """\
services:
  panel:
    image: ghcr.io/x/panel:1.0
    volumes: ["/var/run/docker.sock:/var/run/docker.sock:ro"]
""" + HEALTH
    f = only(text, "DY703")
    assert_finding(f, "DY703", Severity.WARNING, "fleet.yaml:7:15", "panel")


def test_dy703_other_mounts() -> None:
    text = BASE + """\
services:
  panel:
    image: ghcr.io/x/panel:1.0
    volumes: ["/srv/panel:/data", "docker-data:/var/lib/docker"]
""" + HEALTH
    assert findings(text, "DY703") == []


# --- DY704: datastores on all interfaces ---------------------------------------------------

def test_dy704_database_published_on_all_interfaces() -> None:
    text = BASE + """\
services:
  db:
    image: postgres:16.4
    ports: {pg: "0.0.0.0:5432:5432"}
""" + HEALTH
    f = only(text, "DY704")
    assert_finding(f, "DY704", Severity.WARNING, "fleet.yaml:7:13", "db")
    assert "127.0.0.1" in f.fix


@pytest.mark.parametrize(("image", "port"), [
    ("postgres:16.4", '"5432:5432"'), ("postgres:16.4", "{port: 5432, publish: false}"),
    ("ghcr.io/x/web:1.0", '"0.0.0.0:80:80"')])
def test_dy704_loopback_or_not_a_datastore(image: str, port: str) -> None:
    text = BASE + f"""\
services:
  db:
    image: {image}
    ports: {{pg: {port}}}
""" + HEALTH
    assert findings(text, "DY704") == []

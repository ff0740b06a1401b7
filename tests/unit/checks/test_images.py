"""DY6xx: images, tags, requirements."""

from __future__ import annotations

import pytest

from dockyard.checks import Severity
from tests.unit.checks.helpers import BASE, HEALTH, assert_finding, findings, only

# --- DY601: latest or untagged image --------------------------------------------------------

@pytest.mark.parametrize("image", [
    "redis", "redis:latest", "ghcr.io/x/redis:latest", "localhost:5000/redis"])
def test_dy601_moving_image(image: str) -> None:
    text = BASE + f"""\
services:
  cache:
    image: {image}
""" + HEALTH
    f = only(text, "DY601")
    assert_finding(f, "DY601", Severity.WARNING, "fleet.yaml:6:5", "cache")
    assert image in f.message
    assert "pin" in f.fix


@pytest.mark.parametrize("image", [
    "redis:7.4.1", "localhost:5000/redis:7.4.1", "ghcr.io/x/redis:latest-1",
    "redis@sha256:" + "a" * 64])
def test_dy601_pinned_image(image: str) -> None:
    text = BASE + f"""\
services:
  cache:
    image: {image}
""" + HEALTH
    assert findings(text, "DY601") == []


def test_dy601_ignores_built_services() -> None:
    text = BASE + """\
families:
  py: {from: "python:3.11-slim"}
services:
  app:
    family: py
    build: app
""" + HEALTH
    assert findings(text) == []


# --- DY602: family base that moves ---------------------------------------------------------

@pytest.mark.parametrize("base", ["python", "python:latest", "ghcr.io/x/base"])
def test_dy602_family_from_a_moving_image(base: str) -> None:
    text = BASE + f"""\
families:
  py: {{from: "{base}"}}
  child: {{from: py}}
services:
  app:
    family: child
    build: app
""" + HEALTH
    f = only(text, "DY602")
    assert f.code == "DY602" and f.severity is Severity.WARNING
    assert str(f.where) == "fleet.yaml:5:8"
    assert "family py" in f.message and base in f.message


def test_dy602_pinned_base_and_parent_family() -> None:
    text = BASE + """\
families:
  py: {from: "python:3.11.10-slim-bookworm"}
  child: {from: py}
services:
  app:
    family: child
    build: app
""" + HEALTH
    assert findings(text, "DY602") == []


# --- DY603: unpinned requirements ----------------------------------------------------------

def test_dy603_unpinned_family_and_service_requirements() -> None:
    text = BASE + """\
families:
  web:
    from: "python:3.11-slim"
    requirements: [fastapi, "uvicorn[standard]==0.30.6", "torch>=2.4"]
services:
  app:
    family: web
    build: app
    requirements: ["httpx~=0.27"]
""" + HEALTH
    found = findings(text, "DY603")
    # One finding per family or service, at its first loose entry, naming each.
    assert [(str(f.where), f.service) for f in found] == [
        ("fleet.yaml:7:20", ""), ("fleet.yaml:12:20", "app")]
    assert found[0].message.startswith("family web requires `fastapi`, `torch>=2.4` without")
    assert "uvicorn" not in found[0].message
    assert "fastapi==" in found[0].fix
    assert "service app" in found[1].message and "httpx==" in found[1].fix


@pytest.mark.parametrize("requirement", [
    "fastapi==0.115.0", "uvicorn[standard]==0.30.6", "numpy===2.1.1",
    "tomli==2.0.1; python_version < '3.11'", "--index-url https://example.org/simple",
    "mylib @ https://example.org/mylib-1.0-py3-none-any.whl",
    "git+https://github.com/x/y@3f1c2d9"])
def test_dy603_pinned_or_exact(requirement: str) -> None:
    text = BASE + f"""\
families:
  web:
    from: "python:3.11-slim"
    requirements: ["{requirement}"]
services:
  app:
    family: web
    build: app
""" + HEALTH
    assert findings(text, "DY603") == []

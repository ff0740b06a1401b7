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

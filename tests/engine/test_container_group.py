"""A container group on a real engine: agents under the rendered supervisor, each healthy on
its own port; the container is healthy only when all are; `stop` ends it cleanly."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from dockyard.manifest.load import loads
from dockyard.plan import plan
from dockyard.render.files import render_all

from .conftest import free_port

pytestmark = pytest.mark.engine


def python_image() -> str:
    """A local image with python3 and no network needed: the bootstrapped base."""
    tags = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}",
                           "dockyard/bootstrap"], capture_output=True, text=True).stdout.split()
    if not tags:
        pytest.skip("no dockyard/bootstrap:* image here (any `dockyard build` makes one)")
    return sorted(tags)[0]


def probe(port: int) -> str:
    code = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/', timeout=2)"
    return f'[python3, -c, "{code}"]'


def test_agents_run_under_the_supervisor_and_stop_cleanly(project: str, tmp_path: Path
                                                          ) -> None:
    image = python_image()
    one, two = free_port(), free_port()
    text = f"""\
fleet: group
machines:
  box: {{}}
services:
  crew:
    image: {image}
    agents:
      alpha:
        command: [python3, -m, http.server, "9301"]
        ports: {{http: "{one}:9301"}}
        health: {{cmd: {probe(9301)}, interval: 1s, retries: 20}}
      beta:
        command: [python3, -m, http.server, "9302"]
        ports: {{http: "{two}:9302"}}
        health: {{cmd: {probe(9302)}, interval: 1s, retries: 20}}
"""
    fleet = loads(text, environ={})
    for rel, content in render_all(fleet, plan(fleet), text).items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(content, encoding="utf-8")
    compose = ["docker", "compose", "-p", project, "-f", str(tmp_path / "compose.box.yaml")]
    up = subprocess.run([*compose, "up", "-d", "--wait", "--wait-timeout", "120"],
                        capture_output=True, text=True, timeout=180)
    assert up.returncode == 0, up.stderr[-3000:]
    for port in (one, two):  # each agent answers on its own published port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
            assert answer.status == 200
    cid = subprocess.run([*compose, "ps", "-q", "crew"], capture_output=True,
                         text=True).stdout.strip()
    top = subprocess.run(["docker", "top", cid], capture_output=True, text=True).stdout
    assert top.count("http.server") == 2 and "supervisor.py" in top
    started = time.monotonic()
    stop = subprocess.run([*compose, "stop", "-t", "20"], capture_output=True, text=True,
                          timeout=60)
    assert stop.returncode == 0, stop.stderr
    assert time.monotonic() - started < 15  # SIGTERM reached the agents: no 20 s kill
    state = json.loads(subprocess.run(["docker", "inspect", cid], capture_output=True,
                                      text=True).stdout)[0]["State"]
    assert state["ExitCode"] == 0

"""Names across machines on a real engine: the rendered files alone make `http://web:PORT`
work from a compose project that does not hold `web` (plan/routes.py, issue 12 item 3).

Two machines of the fleet are two compose projects on the one local engine; machine b's
`host:` is the engine's bridge gateway (an address of this host that containers reach), so the
caller's request goes out through b's published port, as it would to another machine. The
many-machine harness (SSH, one engine per machine) repeats it across real engines."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.engine.conftest import dockyard

pytestmark = pytest.mark.engine

PORT = 18651  # this helper's range (18600-18699)

FLEET = """\
fleet: {fleet}
machines:
  a: {{host: 10.255.255.1}}
  b: {{host: "{gateway}"}}
services:
  web:
    image: {image}
    machine: b
    command: [python3, -m, http.server, "{port}"]
    ports: {{http: {port}}}
    health:
      cmd: [python3, -c, "import socket; socket.create_connection(('127.0.0.1', {port}))"]
      interval: 0.5s
  caller:
    image: {image}
    machine: a
    restart: "no"
    env: {{WEB_URL: "http://web:{port}/"}}
    command:
    - python3
    - -c
    - |
      import os, time, urllib.request
      for _ in range(100):
          try:
              print("status", urllib.request.urlopen(os.environ["WEB_URL"], timeout=2).status)
              break
          except OSError as exc:
              last = exc
              time.sleep(0.1)
      else:
          raise SystemExit(f"no answer: {{last}}")
"""


def _gateway() -> str:
    return subprocess.run(
        ["docker", "network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}"],
        capture_output=True, text=True, check=True).stdout.strip()


def _compose(project: str, file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "compose", "-p", project, "-f", str(file), *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def projects(engine: None) -> Iterator[str]:
    name = f"hna-{uuid.uuid4().hex[:6]}"
    yield name
    for machine in ("a", "b"):
        subprocess.run(["docker", "compose", "-p", f"{name}-{machine}", "down", "-t", "1"],
                       capture_output=True, timeout=120)


def test_a_caller_reaches_a_service_of_another_project_by_name(
        projects: str, python_image: str, tmp_path: Path) -> None:
    gateway = _gateway()
    manifest = tmp_path / "fleet.yaml"
    manifest.write_text(FLEET.format(fleet=projects, gateway=gateway, image=python_image,
                                     port=PORT), encoding="utf-8")
    result = dockyard("-f", str(manifest), "render", "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    safe = YAML(typ="safe")
    web = safe.load((out / "compose.b.yaml").read_text())["services"]["web"]
    caller = safe.load((out / "compose.a.yaml").read_text())["services"]["caller"]
    assert web["ports"] == [f"127.0.0.1:{PORT}:{PORT}", f"{gateway}:{PORT}:{PORT}"]
    assert caller["extra_hosts"] == [f"web={gateway}"]

    up = _compose(f"{projects}-b", out / "compose.b.yaml", "up", "-d", "--wait")
    assert up.returncode == 0, up.stderr
    run = _compose(f"{projects}-a", out / "compose.a.yaml", "up", "--abort-on-container-exit",
                   "--exit-code-from", "caller")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "status 200" in run.stdout

"""Start-first on a real engine: while a service with `upgrade: start-first` is replaced
(a good new version, a new version that never turns healthy, and the old version put back
as a rollback does), a bounded 20 req/s loop against its host port on 127.0.0.1 loses no
request. The host port is the ingress's (Debian's haproxy, in a family image dockyard
builds); traffic moves through its runtime API."""

from __future__ import annotations

import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dockyard.engine.build import write_render
from dockyard.engine.ingress import Ingress, replace_start_first, service_containers
from dockyard.engine.target import Target
from dockyard.manifest.load import load
from dockyard.plan import plan
from tests.engine.conftest import dockyard

pytestmark = pytest.mark.engine

PORT = 18301

SERVER = """\
import os, signal, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ["VERSION"]
HEALTHY = os.environ.get("HEALTHY", "1") == "1"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/health":
            code, body = (200, b"ok") if HEALTHY else (503, b"not ready")
        else:
            time.sleep(0.05)  # a request in flight while traffic moves
            code, body = 200, VERSION.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
"""

FLEET = """\
fleet: {fleet}
machines:
  local: {{cpus: 2, memory: 4GiB}}
families:
  web:
    from: debian:bookworm-slim
    apt: [python3]
services:
  api:
    family: web
    build: app
    command: [python3, /app/server.py]
    env: {{VERSION: "{version}", HEALTHY: "{healthy}"}}
    ports: {{http: "127.0.0.1:{port}:8000"}}
    health: {{http: /health, interval: 1s, retries: 4}}
    upgrade: start-first
"""


@dataclass
class Load:
    """A bounded loop of GETs at `rate` per second against the host port, on a thread."""

    url: str
    rate: float = 20.0
    answers: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=5) as reply:
                    self.answers.append(reply.read().decode())
            except Exception as exc:  # every kind of failure counts
                self.failures.append(f"{time.monotonic():.2f} {exc!r}")
            next_at += 1 / self.rate
            self.stop.wait(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> Load:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)

    @property
    def count(self) -> int:
        return len(self.answers) + len(self.failures)


@pytest.fixture
def fleet_dir(tmp_path: Path, engine: None) -> Iterator[tuple[Path, str]]:
    name = f"hin-{uuid.uuid4().hex[:6]}"
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "server.py").write_text(SERVER)
    yield tmp_path, name
    ids = subprocess.run(["docker", "ps", "-aq", "--filter",
                          f"label=com.docker.compose.project={name}"],
                         capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
    subprocess.run(["docker", "network", "rm", f"{name}_default"], capture_output=True)
    images = subprocess.run(["docker", "images", "-q", f"{name}/*"], capture_output=True,
                            text=True).stdout.split()
    if images:
        subprocess.run(["docker", "rmi", "-f", *set(images)], capture_output=True)


def _write(folder: Path, fleet: str, version: str, healthy: int = 1) -> Target:
    (folder / "fleet.yaml").write_text(FLEET.format(fleet=fleet, version=version,
                                                    healthy=healthy, port=PORT))
    loaded = load(folder / "fleet.yaml", environ={})
    target = Target(loaded, plan(loaded), folder / "state", "local", fleet)
    write_render(loaded, target.plan, target.state)
    return target


def _versions(answers: list[str]) -> list[str]:
    """The versions in the order they answered, each once."""
    return [v for i, v in enumerate(answers) if i == 0 or answers[i - 1] != v]


def test_start_first_replace_loses_no_request(fleet_dir: tuple[Path, str]) -> None:
    folder, name = fleet_dir
    _write(folder, name, "v1")
    up = dockyard("up", cwd=folder, env={"DOCKYARD_STATE": str(folder / "state")},
                  timeout=900)
    assert up.returncode == 0, up.stdout + up.stderr[-3000:]
    # The host port is the ingress's; the service publishes none itself.
    api = service_containers(Target(*_args(folder, name)), "api")
    assert len(api) == 1 and not (api[0].attrs["HostConfig"].get("PortBindings") or {})
    proxy = service_containers(Target(*_args(folder, name)), "dockyard-ingress")
    assert list(proxy[0].attrs["HostConfig"]["PortBindings"]) == [f"{PORT}/tcp"]
    assert proxy[0].attrs["HostConfig"]["PortBindings"][f"{PORT}/tcp"][0]["HostIp"] == \
        "127.0.0.1"

    with Load(f"http://127.0.0.1:{PORT}/") as loop:
        time.sleep(2)
        good = replace_start_first(_write(folder, name, "v2"), "api")
        assert good.healthy and good.old and good.new, good
        time.sleep(2)
        # A new version that never turns healthy: removed, the old one kept every request.
        t_bad = time.monotonic()
        bad = replace_start_first(_write(folder, name, "v3", healthy=0), "api")
        assert not bad.healthy and "HTTP 503" in bad.result.output, bad
        assert time.monotonic() - t_bad < 4 + 5  # the deadline (4 s) and the clean-up
        time.sleep(2)
        # Going back, as a rollback does: the old version starts beside the new one.
        back = replace_start_first(_write(folder, name, "v1"), "api")
        assert back.healthy, back
        while loop.count < 400:
            time.sleep(0.2)
    assert loop.count >= 400
    assert loop.failures == [], loop.failures[:5]
    assert _versions(loop.answers) == ["v1", "v2", "v1"], _versions(loop.answers)
    target = Target(*_args(folder, name))
    assert [c.status for c in service_containers(target, "api")] == ["running"]
    # Slot a serves again, b waits in maintenance: the next replace starts from there.
    state = Ingress(target).command("show servers state api.http")
    rows = [line.split() for line in state.splitlines()[2:] if line.strip()]
    admin = {r[3]: int(r[6]) for r in rows}  # srv_admin_state: bit 0 forced maintenance
    assert admin["a"] == 0 and admin["b"] & 1, state
    # The container left is what the rendered file says: `up` has nothing to do, and
    # `ps` says who publishes the port.
    env = {"DOCKYARD_STATE": str(folder / "state")}
    again = dockyard("up", cwd=folder, env=env, timeout=300)
    assert again.returncode == 0 and "nothing changed" in again.stdout, again.stderr[-2000:]
    ps = dockyard("ps", cwd=folder, env=env, timeout=120)
    assert f"127.0.0.1:{PORT}->8000 (ingress)" in ps.stdout, ps.stdout


def _args(folder: Path, name: str) -> tuple[object, ...]:
    loaded = load(folder / "fleet.yaml", environ={})
    return loaded, plan(loaded), folder / "state", "local", name

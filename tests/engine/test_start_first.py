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

from dockyard.engine.deploy import status
from dockyard.engine.ingress import Ingress, service_containers
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
    health: {{http: /health, interval: 1s, retries: 10}}
    upgrade: start-first
  worker:
    family: web
    build: app
    command: [python3, /app/server.py]
    env: {{VERSION: "{version}", HEALTHY: "{worker_healthy}"}}
    ports: {{http: {{port: 8000, publish: false}}}}
    depends_on: [api]
    health: {{http: /health, interval: 1s, retries: 10}}
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


def _write(folder: Path, fleet: str, version: str, healthy: int = 1,
           worker_healthy: int = 1) -> None:
    (folder / "fleet.yaml").write_text(FLEET.format(
        fleet=fleet, version=version, healthy=healthy, worker_healthy=worker_healthy,
        port=PORT))


def _target(folder: Path, name: str) -> Target:
    loaded = load(folder / "fleet.yaml", environ={})
    return Target(loaded, plan(loaded), folder / "state", "local", name)


def _versions(answers: list[str]) -> list[str]:
    """The versions in the order they answered, each once."""
    return [v for i, v in enumerate(answers) if i == 0 or answers[i - 1] != v]


def test_start_first_upgrade_and_rollback_lose_no_request(
        fleet_dir: tuple[Path, str]) -> None:
    folder, name = fleet_dir
    env = {"DOCKYARD_STATE": str(folder / "state")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return dockyard(*args, cwd=folder, env=env, timeout=900)

    _write(folder, name, "v1")
    up = run("up")
    assert up.returncode == 0, up.stdout + up.stderr[-3000:]
    # The host port is the ingress's, on the manifest's address; the service publishes none.
    target = _target(folder, name)
    api = service_containers(target, "api")
    assert len(api) == 1 and not (api[0].attrs["HostConfig"].get("PortBindings") or {})
    proxy = service_containers(target, "dockyard-ingress")[0].attrs["HostConfig"]
    assert list(proxy["PortBindings"]) == [f"{PORT}/tcp"]
    assert proxy["PortBindings"][f"{PORT}/tcp"][0]["HostIp"] == "127.0.0.1"

    with Load(f"http://127.0.0.1:{PORT}/") as loop:
        time.sleep(1)
        _write(folder, name, "v2")
        good = run("upgrade")
        assert good.returncode == 0, good.stdout + good.stderr[-3000:]
        assert "api: new container healthy; traffic moves to it" in good.stderr, good.stderr
        # A new api that never turns healthy: removed; the old one kept every request.
        _write(folder, name, "v3", healthy=0)
        bad = run("upgrade")
        assert bad.returncode == 6, bad.stdout + bad.stderr[-3000:]
        assert "HTTP 503" in bad.stderr and "the old one kept serving" in bad.stderr
        # A good api and a worker that fails after it: the whole set goes back, and the old
        # api starts beside the new one before it takes the traffic back.
        _write(folder, name, "v3", worker_healthy=0)
        back = run("upgrade")
        assert back.returncode == 6, back.stdout + back.stderr[-3000:]
        assert "service worker did not become healthy" in back.stderr, back.stderr[-3000:]
        # Killed while its new api container starts (two api containers, one serving):
        # `dockyard rollback` keeps the one the ingress serves and removes the other.
        cut = dockyard("upgrade", cwd=folder, timeout=900,
                       env={**env, "DOCKYARD_KILL_AT": "upgrade.gate"})
        assert cut.returncode == -9 and len(service_containers(target, "api")) == 2, cut.stderr
        undo = run("rollback")
        assert undo.returncode == 0, undo.stdout + undo.stderr[-3000:]
        while loop.count < 400:
            time.sleep(0.2)
    assert loop.count >= 400
    assert loop.failures == [], loop.failures[:5]
    assert _versions(loop.answers) == ["v1", "v2", "v3", "v2"], _versions(loop.answers)
    # One api container, on v2's configuration: `up` of the v2 manifest has nothing to do.
    assert [c.status for c in service_containers(target, "api")] == ["running"]
    _write(folder, name, "v2")
    again = run("up")
    assert again.returncode == 0 and "nothing changed" in again.stdout, again.stderr[-2000:]
    # Slot a serves again, b waits in maintenance: the next replace starts from there.
    admin = {slot: state for slot, (_, state) in Ingress(target).slots("api.http").items()}
    assert admin["a"] == 0 and admin["b"] & 1, admin
    rows = {row.service: row for row in status(_target(folder, name))}
    assert rows["api"].ports == f"127.0.0.1:{PORT}->8000 (ingress)", rows["api"]
    assert rows["dockyard-ingress"].health == "healthy", rows["dockyard-ingress"]

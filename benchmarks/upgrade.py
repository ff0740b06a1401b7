"""Upgrade benchmark: requests lost while a fleet is upgraded, dockyard vs plain compose.

The fleet: Redis (Debian's redis-server in a family image, data in a named volume), an HTTP
API with `upgrade: start-first` on a host port, and a worker (stop-first) that depends on
it. A bounded loop sends GETs at 20 req/s to the API's host port on 127.0.0.1, one at a time
(timeout 5 s; any exception or non-2xx answer is a failed request), for at least `--requests`
requests per scenario.

    (a) good upgrade: the API's and the worker's configuration change (a new VERSION);
        `dockyard upgrade --no-build`: time from the command to all new and healthy (the
        command ends once the last service of the set is healthy), and failed requests;
    (b) failed upgrade: the new API answers 503 to everything, health included, so it never
        turns healthy; `dockyard upgrade` rolls the set back (exit 6): the time from the
        health deadline (the line saying the API's step failed, read as it is printed) to
        all old and healthy (the command's end), and failed requests;
    (c) the peer: plain `docker compose up -d` of the same images and configurations, with
        the API publishing its port itself (dockyard's own rendering without start-first),
        under another compose project and port: (c1) the good change, time from the
        command to the first answer of the new version, and failed requests; (c2) the broken
        API, which compose has no way to roll back: failed requests.

    .venv/bin/python benchmarks/upgrade.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.manifest.load import loads
from dockyard.plan import plan
from dockyard.render.compose import render_compose

FLEET_NAME = "hin-bench"
PEER_PROJECT = "hin-bench-peer"
PORT, PEER_PORT = 18310, 18311
RATE = 20.0

SERVER = """\
import os, signal, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ["VERSION"]
HEALTHY = os.environ.get("HEALTHY", "1") == "1"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if not HEALTHY:  # a broken build: every answer is an error
            code, body = 503, b"broken"
        elif self.path == "/health":
            code, body = 200, b"ok"
        else:
            time.sleep(0.02)
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
  redis:
    from: debian:bookworm-slim
    apt: [redis-server]
  web:
    from: debian:bookworm-slim
    apt: [python3]
services:
  store:
    family: redis
    build: app
    command: [redis-server, --dir, /data, --protected-mode, "no"]
    volumes: ["store-data:/data"]
    health: {{cmd: [redis-cli, ping], interval: 1s, retries: 5}}
  api:
    family: web
    build: app
    command: [python3, /app/server.py]
    env: {{VERSION: "{version}", HEALTHY: "{healthy}", REDIS_URL: "redis://store:6379/0"}}
    ports: {{http: "127.0.0.1:{port}:8000"}}
    depends_on: [store]
    health: {{http: /health, interval: 1s, retries: 5}}
    upgrade: {upgrade}
  worker:
    family: web
    build: app
    command: [python3, /app/server.py]
    env: {{VERSION: "{version}", HEALTHY: "1"}}
    ports: {{http: {{port: 8000, publish: false}}}}
    depends_on: [api]
    health: {{http: /health, interval: 1s, retries: 5}}
"""


def manifest(version: str, *, healthy: bool = True, peer: bool = False) -> str:
    return FLEET.format(fleet=FLEET_NAME, version=version, healthy=int(healthy),
                        port=PEER_PORT if peer else PORT,
                        upgrade="stop-first" if peer else "start-first")


@dataclass
class Load:
    """GETs at RATE per second, one at a time, on a thread; every failure is kept."""

    url: str
    answers: list[tuple[float, str]] = field(default_factory=list)
    failures: list[tuple[float, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self.stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=5) as reply:
                    self.answers.append((time.monotonic(), reply.read().decode()))
            except Exception as exc:  # refused, reset, timeout, 5xx: all count
                self.failures.append((time.monotonic(), repr(exc)[:120]))
            next_at += 1 / RATE
            self.stop.wait(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> Load:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def until(self, count: int) -> None:
        while len(self.answers) + len(self.failures) < count:
            time.sleep(0.2)

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)

    @property
    def count(self) -> int:
        return len(self.answers) + len(self.failures)

    def first(self, version: str) -> float | None:
        return next((t for t, v in self.answers if v == version), None)


@dataclass
class Command:
    code: int
    seconds: float
    lines: list[tuple[float, str]]  # (monotonic time it was read, line) of stdout + stderr

    def when(self, text: str) -> float | None:
        return next((t for t, line in self.lines if text in line), None)

    def tail(self) -> str:
        return "\n".join(line for _, line in self.lines[-30:])


def command(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> Command:
    """Run `argv`, timestamping each output line as it arrives."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    lines: list[tuple[float, str]] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append((time.monotonic(), line.rstrip()))
    code = proc.wait()
    return Command(code, time.monotonic() - t0, [(t - t0, x) for t, x in lines])


def dockyard(folder: Path, *args: str) -> Command:
    return command([sys.executable, "-m", "dockyard", *args], folder,
                   {"DOCKYARD_STATE": str(folder / "state"), "COLUMNS": "200"})


def peer_file(folder: Path, version: str, healthy: bool = True) -> Path:
    """dockyard's own compose rendering of the fleet without start-first (the API publishes
    its port itself), as a compose user would run it."""
    fleet = loads(manifest(version, healthy=healthy, peer=True), environ={})
    path = folder / f"peer-{version}-{int(healthy)}.yaml"
    path.write_text(render_compose(fleet, plan(fleet), "local"))
    return path


def compose(folder: Path, file: Path, *args: str) -> Command:
    return command(["docker", "compose", "-p", PEER_PROJECT, "-f", str(file), *args], folder)


def say(results: dict[str, str], key: str, value: str) -> None:
    """Keep a result, and print it at once (a later scenario that fails keeps it)."""
    results[key] = value
    print(f"{key}: {value}", flush=True)


def check(c: Command, what: str, code: int = 0) -> None:
    if c.code != code:
        raise SystemExit(f"{what} exited {c.code} (expected {code}):\n{c.tail()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--keep-images", action="store_true")
    n = parser.parse_args().requests
    folder = Path(tempfile.mkdtemp(prefix="hin-bench-"))
    (folder / "app").mkdir()
    (folder / "app" / "server.py").write_text(SERVER)
    results: dict[str, str] = {}
    try:
        (folder / "fleet.yaml").write_text(manifest("v1"))
        check(dockyard(folder, "up"), "dockyard up (build included)")

        with Load(f"http://127.0.0.1:{PORT}/") as load:
            time.sleep(1)
            (folder / "fleet.yaml").write_text(manifest("v2"))
            good = dockyard(folder, "upgrade", "--no-build")
            check(good, "dockyard upgrade (good)")
            load.until(n)
        say(results, "(a) dockyard good upgrade: command -> all new healthy",
            f"{good.seconds:.2f} s")
        say(results, "(a) dockyard good upgrade: failed requests",
            f"{len(load.failures)} of {load.count}")

        with Load(f"http://127.0.0.1:{PORT}/") as load:
            time.sleep(1)
            (folder / "fleet.yaml").write_text(manifest("v3", healthy=False))
            bad = dockyard(folder, "upgrade", "--no-build", "--format", "json")
            check(bad, "dockyard upgrade (failed)", code=6)
            failed_at = bad.when('"status": "failed"')
            load.until(n)
        back = bad.seconds - failed_at if failed_at is not None else float("nan")
        say(results, "(b) dockyard failed upgrade: health deadline -> all old healthy",
            f"{back:.2f} s (command {bad.seconds:.2f} s)")
        say(results, "(b) dockyard failed upgrade: failed requests",
            f"{len(load.failures)} of {load.count}")
        check(dockyard(folder, "down", "--volumes"), "dockyard down")

        v1, v2, v3 = (peer_file(folder, "v1"), peer_file(folder, "v2"),
                      peer_file(folder, "v3", healthy=False))
        check(compose(folder, v1, "up", "-d", "--wait"), "compose up --wait (peer v1)")
        with Load(f"http://127.0.0.1:{PEER_PORT}/") as load:
            time.sleep(1)
            t0 = time.monotonic()
            peer = compose(folder, v2, "up", "-d")
            check(peer, "compose up -d (peer v2)")
            load.until(n)
            first = load.first("v2")
        say(results, "(c1) compose up -d good change: command -> first v2 answer",
            f"{first - t0:.2f} s" if first else "never")
        say(results, "(c1) compose up -d good change: failed requests",
            f"{len(load.failures)} of {load.count}")
        with Load(f"http://127.0.0.1:{PEER_PORT}/") as load:
            time.sleep(1)
            # Exits 1 once the worker's dependency is unhealthy; the broken API stays.
            broken = compose(folder, v3, "up", "-d")
            load.until(n)
        say(results, "(c2) compose up -d broken API (no rollback): failed requests",
            f"{len(load.failures)} of {load.count} (compose exited {broken.code})")
    finally:
        compose(folder, folder / "peer-v1-1.yaml", "down", "--volumes", "--remove-orphans") \
            if (folder / "peer-v1-1.yaml").exists() else None
        dockyard(folder, "down", "--volumes")
        if not parser.parse_args().keep_images:
            images = subprocess.run(["docker", "images", "-q", f"{FLEET_NAME}/*"],
                                    capture_output=True, text=True).stdout.split()
            if images:
                subprocess.run(["docker", "rmi", "-f", *sorted(set(images))],
                               capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
    load_avg = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, {platform.platform()}, load average "
          f"{load_avg:.1f}; {RATE:.0f} req/s, >= {n} requests per scenario")
    width = max(map(len, results))
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()

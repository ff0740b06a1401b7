"""`dockyard rollback` across machines, reached over SSH only (harness.py): web on machine a
is built on this host and shipped (`build: local`), api on machine c builds on c itself
(`build: remote`). After two `up`s with changed sources, `rollback --to` the first build's
tag and plain `rollback` put both machines back on the images recorded, healthy; with c's
engine stopped, rollback refuses naming c and moves no tag."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from tests.machines.harness import Harness, Machine

pytestmark = pytest.mark.engine

NAME = f"hrb{uuid.uuid4().hex[:6]}"
SERVE = ("import signal,sys,http.server as h\n"
         "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
         "h.test(HandlerClass=h.SimpleHTTPRequestHandler, port={port})\n")
GET = "import urllib.request as u; u.urlopen('http://127.0.0.1:{port}/', timeout=3)"
DATED = re.compile(r"^\d{8}-\d{6}-")


def _host(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check,
                          timeout=300)


def _dockyard(h: Harness, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dockyard", "-f", str(folder / "fleet.yaml"),
                           *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **h.env(), "COLUMNS": "200",
                               "DOCKYARD_STATE": str(folder / "state")})


def _running(m: Machine, service: str) -> str:
    """The image ID of the service's running container on the machine."""
    ids = m.docker("ps", "-q", "--filter", f"label=com.docker.compose.project={NAME}",
                   "--filter", f"label=com.docker.compose.service={service}").stdout.split()
    assert len(ids) == 1, (m.name, service, ids)
    return m.docker("inspect", "--format", "{{.Image}}", ids[0]).stdout.strip()


def _dated(docker: object, repo: str) -> list[str]:
    out = docker("images", "--format", "{{.Tag}}", repo).stdout.split()  # type: ignore[operator]
    return sorted(t for t in out if DATED.match(t))


def _write(folder: Path, h: Harness, base: str, gen: str) -> None:
    """The fleet, its services built from the sources of generation `gen` (a change of
    `build:` is a change of the manifest entry: `up` rebuilds them)."""
    a, _, c = h.machines
    every = "interval: 1s, retries: 30"
    for service, port in (("web", 8000), ("api", 8001)):
        (folder / f"{service}-{gen}").mkdir()
        (folder / f"{service}-{gen}" / "app.py").write_text(f"# {gen}\n" + SERVE.format(port=port))
    (folder / "fleet.yaml").write_text(textwrap.dedent(f"""\
        fleet: {NAME}
        machines:
          a: {{engine: "{a.engine_url}", host: {a.address}}}
          c: {{engine: "{c.engine_url}", host: {c.address}, build: remote}}
        families:
          plain: {{from: {base}}}
        services:
          web:
            family: plain
            build: web-{gen}
            machine: a
            command: [python3, /app/app.py]
            ports: {{http: {{port: 8000, publish: false}}}}
            health: {{cmd: [python3, -c, "{GET.format(port=8000)}"], {every}}}
          api:
            family: plain
            build: api-{gen}
            machine: c
            command: [python3, /app/app.py]
            ports: {{http: {{port: 8001, publish: false}}}}
            health: {{cmd: [python3, -c, "{GET.format(port=8001)}"], {every}}}
        """))


def test_hrb_rollback_puts_every_machine_back_where_its_tags_live(
        machines: Harness, machine_image: str, tmp_path: Path) -> None:
    a, _, c = machines.machines
    web, api = f"{NAME}/web", f"{NAME}/api"
    try:
        _write(tmp_path, machines, machine_image, "one")
        first = _dockyard(machines, tmp_path, "up")
        assert first.returncode == 0, first.stdout + first.stderr
        old = {"web": _running(a, "web"), "api": _running(c, "api")}
        # web's tags live here (built here, shipped to a), api's on c (built there).
        assert _host("image", "inspect", "--format", "{{.Id}}", f"{web}:current"
                     ).stdout.strip() == old["web"]
        assert c.has_image(f"{api}:current") == old["api"]
        first_tags = {"web": _dated(_host, web), "api": _dated(c.docker, api)}
        assert len(first_tags["web"]) == len(first_tags["api"]) == 1, first_tags

        time.sleep(1.1)  # the next build's dated tags are a second later at least
        _write(tmp_path, machines, machine_image, "two")
        second = _dockyard(machines, tmp_path, "up")
        assert second.returncode == 0, second.stdout + second.stderr
        new = {"web": _running(a, "web"), "api": _running(c, "api")}
        assert new["web"] != old["web"] and new["api"] != old["api"]
        assert _host("image", "inspect", "--format", "{{.Id}}", f"{web}:prev"
                     ).stdout.strip() == old["web"]
        assert c.has_image(f"{api}:prev") == old["api"]

        # --to: the first build's tags are a second or so apart on the two engines (each
        # built at its own moment); the later one covers both builds of that `up`.
        tag = max(first_tags["web"] + first_tags["api"])
        back = _dockyard(machines, tmp_path, "rollback", "--to", tag)
        assert back.returncode == 0, back.stdout + back.stderr
        assert {"web": _running(a, "web"), "api": _running(c, "api")} == old
        assert f"web on a: current is now {old['web'][7:19]}" in back.stdout, back.stdout
        assert f"api on c: current is now {old['api'][7:19]}" in back.stdout
        assert back.stdout.strip().splitlines()[-1] == \
            f"fleet {NAME} is up on a, c with the images of {tag}"

        # Plain rollback: `:prev` (now the second build's) back, where each one's tags live.
        again = _dockyard(machines, tmp_path, "rollback")
        assert again.returncode == 0, again.stdout + again.stderr
        assert {"web": _running(a, "web"), "api": _running(c, "api")} == new
        assert f"fleet {NAME} is up on a, c with the previous images" in again.stdout
        ps = _dockyard(machines, tmp_path, "ps", "--format", "json")
        assert ps.returncode == 0 and ps.stdout.count('"healthy"') == 2, ps.stdout + ps.stderr

        # c unreachable: refused before any tag moves, here or anywhere.
        c.stop_engine()
        try:
            t0 = time.monotonic()
            refused = _dockyard(machines, tmp_path, "rollback")
            took = time.monotonic() - t0
            print(f"rollback with c's engine stopped: refused in {took:.1f} s")
            assert refused.returncode == 3, refused.stdout + refused.stderr
            assert "machine c cannot be reached" in refused.stderr, refused.stderr
            assert "no tag was moved" in refused.stderr and "-m a" in refused.stderr
            assert took < 15, took
            assert _host("image", "inspect", "--format", "{{.Id}}", f"{web}:current"
                         ).stdout.strip() == new["web"]
        finally:
            c.start_engine()
        assert c.has_image(f"{api}:current") == new["api"]
    finally:
        _dockyard(machines, tmp_path, "down")
        for docker in (_host, a.docker, c.docker):
            ids = docker("images", "-q", "--filter", f"reference={NAME}/*").stdout.split()
            if ids:
                docker("rmi", "-f", *sorted(set(ids)), check=False)

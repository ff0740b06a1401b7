"""Images shipped to machines without a registry, and a Swarm stack on the three machines,
all reached over SSH only (the harness's `ssh://` engines).

The swarm is made by `dockyard up --target swarm` itself (a manages, b and c join); the
module leaves it at the end, so the other tests' machines are plain engines again."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.engine.connection import Endpoint, Engine
from dockyard.engine.ship import ship
from dockyard.events import Event, Shipped
from tests.machines.conftest import _bootstrap_tags
from tests.machines.harness import Harness

pytestmark = pytest.mark.engine

TAG = f"hsw{uuid.uuid4().hex[:6]}"
# A tiny HTTP server that stops at once on SIGTERM (PID 1 ignores it otherwise: 10 s a task).
SERVE = ("import signal,sys,http.server as h; signal.signal(signal.SIGTERM, lambda *a: "
         "sys.exit(0)); h.test(HandlerClass=h.SimpleHTTPRequestHandler, port={port})")
GET = "import urllib.request as u; u.urlopen('http://{host}:{port}/', timeout=3)"
EVERY = "interval: 1s, retries: 30"


def _host(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check,
                          timeout=300)


@pytest.fixture(scope="module")
def python_ref() -> Iterator[str]:
    """The bootstrapped base (python3) under a tag of this module's own, on the host."""
    tags = _bootstrap_tags()  # of the host's own architecture
    if not tags:
        made = subprocess.run([sys.executable, "-m", "dockyard", "bootstrap-base"],
                              capture_output=True, text=True, timeout=900)
        assert made.returncode == 0, made.stderr[-2000:]
        tags = _bootstrap_tags()
    ref = f"{TAG}/python:current"
    _host("tag", tags[0], ref)
    yield ref
    _host("rmi", "-f", ref, check=False)


@pytest.fixture(scope="module")
def swarm_machines(machines: Harness) -> Iterator[Harness]:
    yield machines
    for m in machines.machines:
        m.docker("swarm", "leave", "--force", check=False)


def _engine(machine: str, url: str) -> Engine:
    return Engine(Endpoint(url, f"machines.{machine}.engine", None, machine))


def test_hsw_ship_sends_only_what_a_machine_lacks(machines: Harness, python_ref: str,
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in machines.env().items():
        monkeypatch.setenv(key, value)
    (tmp_path / "parent").mkdir()
    (tmp_path / "parent" / "Dockerfile").write_text(
        f"FROM {python_ref}\nRUN head -c 3145728 /dev/urandom > /blob\n")
    (tmp_path / "child").mkdir()
    parent, child = f"{TAG}/parent:current", f"{TAG}/child:current"
    alone = f"{TAG}/alone:current"
    (tmp_path / "alone").mkdir()
    (tmp_path / "alone" / "blob").write_bytes(os.urandom(1 << 20))
    (tmp_path / "alone" / "Dockerfile").write_text("FROM scratch\nCOPY blob /blob\n")
    (tmp_path / "child" / "Dockerfile").write_text(f"FROM {parent}\nRUN echo {TAG} > /mark\n")
    try:
        _host("build", "-q", "-t", parent, str(tmp_path / "parent"))
        _host("build", "-q", "-t", child, str(tmp_path / "child"))
        _host("build", "-q", "-t", alone, str(tmp_path / "alone"))
        ids = {ref: _host("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()
               for ref in (parent, child)}
        b, c = machines["b"], machines["c"]
        source = Engine.local()
        events: list[Event] = []
        # The base first, to both (sent once saved, in parallel; only tagged where its ID is).
        base = ship(source, {m.name: (_engine(m.name, m.engine_url), [python_ref])
                             for m in (b, c)}, tmp_path / "state", emit=events.append)
        assert b.has_image(python_ref) and c.has_image(python_ref), base.as_dict()
        assert not b.has_image(parent) and not b.has_image(child)
        report = ship(source, {"b": (_engine("b", b.engine_url), [parent, child])},
                      tmp_path / "state", emit=events.append)
        shipment = report.shipments["b"]
        assert shipment.send == (parent, child) and not shipment.tag and not shipment.kept
        assert {ref: b.has_image(ref) for ref in ids} == ids
        # Only the 3 MiB layer and the child's few bytes went: not the base's 200+ MiB.
        assert 3 << 20 <= report.sent["b"] < 4 << 20, report.sent
        assert [e.sent for e in events if isinstance(e, Shipped)][-1] == report.sent["b"]
        assert b.docker("run", "--rm", child, "cat", "/mark").stdout.strip() == TAG

        again = ship(source, {"b": (_engine("b", b.engine_url), [parent, child])},
                     tmp_path / "state", emit=events.append)
        assert again.shipments["b"].empty and again.shipments["b"].kept == (parent, child)
        assert again.sent == {}

        # An image with no layer the machine has goes straight from save into load.
        fresh = ship(source, {"b": (_engine("b", b.engine_url), [alone])},
                     tmp_path / "state", emit=events.append)
        assert fresh.shipments["b"].send == (alone,) and not fresh.shipments["b"].present
        assert b.has_image(alone) == _host("image", "inspect", "--format", "{{.Id}}",
                                           alone).stdout.strip()
        assert 1 << 20 <= fresh.sent["b"] < 2 << 20, fresh.sent
        assert not list((tmp_path / "state" / "ship").iterdir())  # no archive left behind
    finally:
        machines["b"].docker("rmi", "-f", child, parent, alone, check=False)
        _host("rmi", "-f", child, parent, alone, check=False)


def _manifest(h: Harness, fleet: str, image: str, *, broken: bool) -> str:
    a, b, c = h.machines
    bad = textwrap.dedent(f"""\
      bad:
        image: {image}
        machine: b
        command: [sh, -c, "echo {fleet} cannot start >&2; exit 3"]
        depends_on: [db]
    """) if broken else ""
    return textwrap.dedent(f"""\
    fleet: {fleet}
    machines:
      a: {{engine: "{a.engine_url}", host: {a.address}}}
      b: {{engine: "{b.engine_url}", host: {b.address}}}
      c: {{engine: "{c.engine_url}", host: {c.address}}}
    services:
      db:
        image: {image}
        machine: b
        command: [python3, -c, "{SERVE.format(port=8000)}"]
        ports: {{http: {{port: 8000, publish: false}}}}
        health: {{cmd: [python3, -c, "{GET.format(host='127.0.0.1', port=8000)}"], {EVERY}}}
      api:
        image: {image}
        machine: c
        command: [python3, -c, "{GET.format(host='db', port=8000)}; {SERVE.format(port=8001)}"]
        ports: {{http: {{port: 8001, publish: false}}}}
        depends_on: [db]
        health: {{cmd: [python3, -c, "{GET.format(host='db', port=8000)}"], {EVERY}}}
      front:
        image: {image}
        machine: a
        command: [python3, -c, "{SERVE.format(port=8002)}"]
        ports: {{http: {{port: 8002, publish: false}}}}
        depends_on: [api]
        health: {{cmd: [python3, -c, "{GET.format(host='api', port=8001)}"], {EVERY}}}
    """) + textwrap.indent(bad, "  ")


def _dockyard(h: Harness, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dockyard", "-f", str(folder / "fleet.yaml"),
                           *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **h.env(), "COLUMNS": "200"})


def _tasks(h: Harness, stack: str) -> dict[str, tuple[str, str]]:
    """Swarm service -> (node ID, state) of its running task, asked of the manager (a)."""
    out = h["a"].docker("stack", "ps", stack, "--filter", "desired-state=running",
                        "--format", "{{.Name}} {{.Node}} {{.CurrentState}}", "--no-trunc")
    ids = h["a"].docker("stack", "ps", stack, "--filter", "desired-state=running", "-q",
                        "--no-trunc").stdout.split()
    nodes = [h["a"].docker("inspect", "--format", "{{.NodeID}}", t).stdout.strip() for t in ids]
    rows = [line.split() for line in out.stdout.splitlines()]
    return {row[0].rsplit(".", 1)[0]: (node, row[2]) for row, node in zip(rows, nodes,
                                                                          strict=True)}


def test_hsw_swarm_stack_on_planned_nodes_and_a_failing_service(
        swarm_machines: Harness, python_ref: str, tmp_path: Path) -> None:
    h = swarm_machines
    node = {m.name: m.docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
            for m in h.machines}
    broken, good = tmp_path / "broken", tmp_path / "good"
    for folder, fleet in ((broken, f"{TAG}x"), (good, TAG)):
        folder.mkdir()
        (folder / "fleet.yaml").write_text(_manifest(h, fleet, python_ref,
                                                     broken=folder is broken))
    try:
        # A service that exits: up fails naming it, its task error and its last log line;
        # the level after it is not deployed.
        failed = _dockyard(h, broken, "up", "--target", "swarm")
        assert failed.returncode == 4, failed.stdout + failed.stderr
        assert f"{TAG}x_bad" in failed.stderr and "non-zero exit (3)" in failed.stderr
        assert f"{TAG}x cannot start" in failed.stderr
        assert f"not deployed yet: {TAG}x_front" in failed.stderr
        assert "ufw allow proto udp" in failed.stderr and "4789" in failed.stderr
        # Made by up itself: a manages, b and c are workers.
        assert h["a"].docker("info", "--format", "{{.Swarm.ControlAvailable}}").stdout.strip() \
            == "true"
        node = {m.name: m.docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
                for m in h.machines}
        assert all(node.values()) and len(set(node.values())) == 3
        removed = _dockyard(h, broken, "down", "--target", "swarm")
        assert removed.returncode == 0, removed.stderr

        up = _dockyard(h, good, "up", "--target", "swarm")
        assert up.returncode == 0, up.stdout + up.stderr
        tasks = _tasks(h, TAG)
        assert {s: t[0] for s, t in tasks.items()} == {
            f"{TAG}_db": node["b"], f"{TAG}_api": node["c"], f"{TAG}_front": node["a"]}
        assert all(t[1] == "Running" for t in tasks.values()), tasks
        # Level by level: db was healthy before api started (api reads db at its start).
        said = up.stderr
        assert said.index(f"healthy: {TAG}_db") < said.index(f"starting {TAG}_api") < \
            said.index(f"healthy: {TAG}_api") < said.index(f"starting {TAG}_front")
        again = _dockyard(h, good, "up", "--target", "swarm")
        assert again.returncode == 0, again.stderr
        assert _tasks(h, TAG) == tasks  # nothing restarted
    finally:
        for folder in (good, broken):
            _dockyard(h, folder, "down", "--target", "swarm")
    assert h["a"].docker("stack", "ls", "--format", "{{.Name}}").stdout.split() == []


def test_hsw_build_remote_builds_on_the_machine_itself(machines: Harness, python_ref: str,
                                                      tmp_path: Path) -> None:
    """`machines.<m>.build: remote`: up builds the machine's images on its own engine (the
    staged context goes there over SSH); nothing is built here, nothing shipped."""
    c = machines["c"]
    c.load_images(python_ref)
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "app.py").write_text(
        SERVE.format(port=8000).replace("; ", "\n") + "\n")
    fleet = f"{TAG}r"
    (tmp_path / "fleet.yaml").write_text(textwrap.dedent(f"""\
        fleet: {fleet}
        machines:
          c: {{engine: "{c.engine_url}", host: {c.address}, build: remote}}
        families:
          plain: {{from: {python_ref}}}
        services:
          web:
            family: plain
            build: svc
            command: [python3, /app/app.py]
            health: {{cmd: [python3, -c, "{GET.format(host='127.0.0.1', port=8000)}"], {EVERY}}}
        """))
    try:
        up = _dockyard(machines, tmp_path, "up")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "service web: built" in up.stderr and "shipping" not in up.stderr
        assert c.has_image(f"{fleet}/web:current")
        assert _host("image", "inspect", f"{fleet}/web:current", check=False).returncode != 0
    finally:
        _dockyard(machines, tmp_path, "down")
        images = c.docker("images", "-q", "--filter", f"reference={fleet}/*").stdout.split()
        if images:
            c.docker("rmi", "-f", *images, check=False)

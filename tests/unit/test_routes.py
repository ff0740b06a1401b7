"""Names that work across machines (plan/routes.py): who reaches whom, and what render writes.

The golden case tests/golden/cross-machine shows the whole of it in rendered files; these tests
pin the decisions one at a time. The check's side (DY404, DY407, DY408) is in
tests/unit/checks/test_network.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dockyard.cli import app
from dockyard.errors import ManifestError
from dockyard.manifest.load import loads
from dockyard.plan import plan
from dockyard.plan.routes import (
    Publish,
    is_address,
    machine_address,
    named_hosts,
    prefer_ipv4,
    reaches,
    routes,
)
from dockyard.render.compose import compose_project

TWO = """\
fleet: hna-routes
machines:
  a: {host: 10.0.0.1}
  b: {host: %s}
services:
  api:
    image: ghcr.io/x/api:1.0
    machine: a
    env: {EMBED_URL: "http://embedder:8001/v1"}
  embedder:
    image: ghcr.io/x/embedder:1.0
    machine: b
    ports: {api: 8001}
"""


def _project(text: str, machine: str, addresses: dict[str, str] | None = None
             ) -> dict[str, Any]:
    fleet = loads(text)
    return compose_project(fleet, plan(fleet), machine, addresses=addresses)


def test_prefer_ipv4_takes_the_first_ipv4_answer_even_after_ipv6_ones() -> None:
    # what getaddrinfo gives for a `.local` name that answers IPv6 first
    assert prefer_ipv4(["fe80::1c2a:3bff:fe4d:5e6f", "192.168.1.51", "10.0.0.5"]) == \
        "192.168.1.51"
    assert prefer_ipv4(["fd00::51"]) == "fd00::51"  # IPv6 only: still an address
    assert prefer_ipv4([]) == "" and prefer_ipv4(["not-an-address"]) == ""


def test_is_address() -> None:
    assert is_address("10.0.0.2") and is_address("fd00::2") and is_address("[::1]")
    assert not is_address("spark1.local") and not is_address("")


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("EMBED_URL", "http://embedder:8001/v1", [("embedder", 8001, True)]),
    ("DATABASE_URL", "postgres://app:pw@db:5432/app", [("db", 5432, True)]),
    ("UI", "https://panel/", [("panel", 443, True)]),
    ("BROKER", "redis://store/0", [("store", None, True)]),
    ("PEERS", "a:9000,b:9000", [("a", 9000, True), ("b", 9000, True)]),
    ("QDRANT_HOST", "qdrant", [("qdrant", None, False)]),
    ("QDRANT_COLLECTION", "qdrant", []),  # a bare word under any other key is no host
    ("VECTORS", "http://qdrant.example.com:6333", []),  # a dotted name is outside the fleet
    ("NEXTAUTH_URL", "http://web:3000", []),  # for browsers, not this container
    ("command", "--listen=api:7000", []),  # what it listens on
    ("MODELS", "/data/qdrant:8/x", []),  # a path, not a host
])
def test_named_hosts(key: str, value: str, expected: list[tuple[str, int | None, bool]]) -> None:
    assert list(named_hosts(key, value)) == expected


def test_the_caller_gets_extra_hosts_and_the_callee_publishes_on_its_address() -> None:
    text = TWO % "10.0.0.2"
    assert _project(text, "a")["services"]["api"]["extra_hosts"] == ["embedder=10.0.0.2"]
    assert _project(text, "b")["services"]["embedder"]["ports"] == [
        "127.0.0.1:8001:8001", "10.0.0.2:8001:8001"]


def test_a_name_host_takes_the_resolved_address_and_is_refused_without_one() -> None:
    text = TWO % "spark2.local"
    resolved = {"b": "192.168.1.52"}
    assert _project(text, "a", resolved)["services"]["api"]["extra_hosts"] == [
        "embedder=192.168.1.52"]
    assert _project(text, "b", resolved)["services"]["embedder"]["ports"][-1] == \
        "192.168.1.52:8001:8001"
    with pytest.raises(ManifestError) as info:
        _project(text, "a")
    assert info.value.where is not None and str(info.value.where) == "fleet.yaml:4:7"
    assert "spark2.local did not resolve" in str(info.value)
    # a build's render (no lookup) leaves the route out; up's writes it
    fleet = loads(text)
    lenient = compose_project(fleet, plan(fleet), "a", unresolved=True)["services"]["api"]
    assert "extra_hosts" not in lenient
    assert compose_project(fleet, plan(fleet), "b", unresolved=True)["services"]["embedder"][
        "ports"] == ["127.0.0.1:8001:8001"]
    assert machine_address(fleet, "b", {}) == "spark2.local"  # check accepts it as written
    assert routes(fleet, plan(fleet)).missing == ()


def test_an_ipv6_host_is_bracketed_in_ports() -> None:
    text = TWO % '"fd00::2"'
    assert _project(text, "a")["services"]["api"]["extra_hosts"] == ["embedder=fd00::2"]
    assert _project(text, "b")["services"]["embedder"]["ports"][-1] == "[fd00::2]:8001:8001"
    assert Publish("fd00::2", 53, 53, "udp").compose() == "[fd00::2]:53:53/udp"


def test_the_callers_own_extra_hosts_entry_wins() -> None:
    text = (TWO % "10.0.0.2").replace(
        '    env: {EMBED_URL', '    extra_hosts: {embedder: 10.0.0.99}\n    env: {EMBED_URL')
    assert _project(text, "a")["services"]["api"]["extra_hosts"] == ["embedder=10.0.0.99"]


def test_two_callees_on_one_machine_cannot_share_a_routed_port() -> None:
    text = (TWO % "10.0.0.2").replace(
        '"http://embedder:8001/v1"}', '"http://embedder:8001/v1", RERANK: "http://rerank:8001"}'
    ) + """\
  rerank:
    image: ghcr.io/x/rerank:1.0
    machine: b
    ports: {api: "18001:8001"}
"""
    fleet = loads(text)
    found = routes(fleet, plan(fleet))
    assert found.extra_hosts("api", "a") == {"embedder": "10.0.0.2"}
    assert [(m.code, m.reach.callee) for m in found.missing] == [("DY407", "rerank")]
    assert "host port 8001 embedder already publishes" in found.missing[0].why


def test_reaches_follow_copies_and_skip_one_shots_and_the_same_machine() -> None:
    text = """\
fleet: hna-routes
machines:
  a: {host: 10.0.0.1}
  b: {host: 10.0.0.2}
services:
  migrate:
    image: ghcr.io/x/migrate:1.0
    machine: b
    restart: "no"
  db:
    image: postgres:16.4
    machine: b
    ports: {pg: 5432}
  worker:
    image: ghcr.io/x/worker:1.0
    machines: [a, b]
    depends_on: {db: {condition: healthy}, migrate: {condition: completed}}
"""
    fleet = loads(text)
    assert [(r.caller, r.machine, r.callee, r.ports) for r in reaches(fleet, plan(fleet))] == [
        ("worker", "a", "db", ())]
    found = routes(fleet, plan(fleet))
    assert found.published("db", "b") == (Publish("10.0.0.2", 5432, 5432),)
    assert found.extra_hosts("worker", "b") == {}


def test_a_port_already_open_on_every_address_adds_nothing() -> None:
    text = (TWO % "10.0.0.2").replace("ports: {api: 8001}", 'ports: {api: "0.0.0.0:8001:8001"}')
    assert _project(text, "b")["services"]["embedder"]["ports"] == ["0.0.0.0:8001:8001"]
    assert _project(text, "a")["services"]["api"]["extra_hosts"] == ["embedder=10.0.0.2"]


def test_render_says_each_route(tmp_path: Path) -> None:
    manifest = tmp_path / "fleet.yaml"
    manifest.write_text(TWO % "10.0.0.2", encoding="utf-8")
    result = CliRunner().invoke(app, ["-f", str(manifest), "render", "-o", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "route: api on a -> embedder at 10.0.0.2 (machine b; publishes " \
        "10.0.0.2:8001:8001)" in result.output
    assert "embedder=10.0.0.2" in (tmp_path / "o" / "compose.a.yaml").read_text()

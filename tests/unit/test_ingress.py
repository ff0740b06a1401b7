"""The per-machine ingress in the plan and the rendered files (plan/ingress.py,
render/ingress.py): only start-first services with published TCP ports get it."""

from __future__ import annotations

import yaml

from dockyard.manifest.load import loads
from dockyard.plan import plan
from dockyard.plan.ingress import INGRESS, ingress_routes, without_ingress
from dockyard.render.compose import compose_project
from dockyard.render.files import render_all
from dockyard.render.ingress import render_haproxy
from dockyard.render.swarm import render_swarm

FLEET = """\
fleet: demo
machines:
  local: {}
services:
  db:
    image: redis:7.4.1
    ports: {redis: 6379}
  api:
    image: ghcr.io/x/api:1.0
    ports: {http: "0.0.0.0:18080:8000", admin: {port: 9000, publish: false}}
    depends_on: [db]
    health: {http: /health}
    upgrade: start-first
"""


def _plan(text: str = FLEET):  # type: ignore[no-untyped-def]
    fleet = loads(text, environ={})
    return fleet, plan(fleet)


def test_no_start_first_service_no_ingress() -> None:
    fleet, p = _plan(FLEET.replace("    upgrade: start-first\n", ""))
    assert INGRESS not in p.services and INGRESS not in p.families
    assert not any(path.startswith("ingress/") for path in render_all(fleet, p, ""))


def test_the_ingress_is_a_service_of_the_plan_after_what_it_fronts() -> None:
    _, p = _plan()
    sp = p.services[INGRESS]
    assert sp.level == p.services["api"].level + 1 and p.levels[-1] == [INGRESS]
    assert sp.image == f"demo/family-{INGRESS}:current" and sp.built
    assert p.families[INGRESS].from_ == "debian:bookworm-slim"
    assert set(p.families[INGRESS].apt) == {"haproxy", "socat"}
    assert [s.name for s in p.builds] == [INGRESS]
    assert [(r.service, r.port_name, r.port.host_port) for r in ingress_routes(p, "local")] == [
        ("api", "http", 18080)]


def test_the_ingress_owns_the_host_port_where_the_manifest_put_it() -> None:
    fleet, p = _plan()
    doc = compose_project(fleet, p, "local")
    api, proxy, db = doc["services"]["api"], doc["services"][INGRESS], doc["services"]["db"]
    assert "ports" not in api and api["expose"] == ["8000", "9000"]
    assert proxy["ports"] == ["0.0.0.0:18080:18080"]
    assert proxy["volumes"] == ["./ingress/local.haproxy.cfg:/etc/dockyard/haproxy.cfg:ro"]
    assert proxy["depends_on"] == {"api": {"condition": "service_healthy"}}
    assert db["ports"] == ["127.0.0.1:6379:6379"]  # not start-first: as today
    assert "sysctls" not in proxy


def test_a_privileged_host_port_lets_haproxy_bind_it_as_its_user() -> None:
    fleet, p = _plan(FLEET.replace("0.0.0.0:18080:8000", "0.0.0.0:80:8000"))
    proxy = compose_project(fleet, p, "local")["services"][INGRESS]
    assert proxy["sysctls"] == {"net.ipv4.ip_unprivileged_port_start": "0"}


def test_haproxy_config_two_slots_per_route_and_the_admin_socket() -> None:
    _, p = _plan()
    text = render_haproxy(p, "local")
    assert "stats socket /tmp/dockyard-ingress.sock mode 600 level admin" in text
    assert "frontend api.http\n    bind :18080\n    default_backend api.http" in text
    assert "    server a api:8000 init-addr libc,none\n" in text
    assert "    server b 127.0.0.1:8000 disabled\n" in text
    assert "option http-server-close" in text and "frontend db" not in text


def test_render_writes_the_config_and_a_dockerfile_for_the_family() -> None:
    fleet, p = _plan()
    files = render_all(fleet, p, "")
    assert "ingress/local.haproxy.cfg" in files
    dockerfile = files[f"families/{INGRESS}/Dockerfile"]
    assert "haproxy socat tini" in dockerfile and "USER 10001:10001" in dockerfile
    compose = yaml.safe_load(files["compose.local.yaml"])
    assert INGRESS in compose["services"]


def test_each_machine_gets_the_routes_of_its_own_services() -> None:
    text = FLEET.replace("  local: {}\n", "  a: {}\n  b: {}\n").replace(
        "    upgrade: start-first\n", "    upgrade: start-first\n    machine: a\n").replace(
        "    ports: {redis: 6379}\n", "    ports: {redis: 6379}\n    machine: a\n")
    text += ("  web:\n    image: ghcr.io/x/web:1.0\n    ports: {http: 18081}\n"
             "    health: {http: /}\n    upgrade: start-first\n    machine: b\n")
    fleet, p = _plan(text)
    assert p.services[INGRESS].machines == ("a", "b")
    assert compose_project(fleet, p, "a")["services"][INGRESS]["ports"] == [
        "0.0.0.0:18080:18080"]
    assert compose_project(fleet, p, "b")["services"][INGRESS]["ports"] == [
        "127.0.0.1:18081:18081"]


def test_swarm_and_kubernetes_replace_start_first_themselves() -> None:
    fleet, p = _plan()
    assert without_ingress(p).services.keys() == {"db", "api"}
    assert without_ingress(p).families == {} and without_ingress(p).builds == []
    stack = render_swarm(fleet, p)
    assert INGRESS not in "".join(stack.files.values())


def test_upgrade_replaces_start_first_only_where_the_ingress_owns_a_port() -> None:
    from dockyard.ops.upgrade import START_FIRST, STOP_FIRST, strategy_of

    _, p = _plan()
    assert strategy_of(p.services["api"].spec) == START_FIRST
    assert strategy_of(p.services["db"].spec) == STOP_FIRST
    assert strategy_of(p.services[INGRESS].spec) == STOP_FIRST  # it owns ports, none fronted
    _, hidden = _plan(FLEET.replace('"0.0.0.0:18080:8000"', "{port: 8000, publish: false}"))
    assert strategy_of(hidden.services["api"].spec) == STOP_FIRST  # DY952 says why


def test_a_changed_haproxy_config_changes_the_ingress_compose_entry() -> None:
    # compose's config hash does not read the mounted file: a label carries its hash.
    fleet, p = _plan()
    label = "dev.dockyard.ingress-config"
    before = compose_project(fleet, p, "local")["services"][INGRESS]["labels"][label]
    fleet2, p2 = _plan(FLEET.replace("18080:8000", "18080:8001"))  # same ingress ports
    after = compose_project(fleet2, p2, "local")["services"][INGRESS]["labels"][label]
    assert before != after and len(before) == 16
    one = dict(compose_project(fleet, p, "local")["services"][INGRESS])
    two = dict(compose_project(fleet2, p2, "local")["services"][INGRESS])
    one.pop("labels"), two.pop("labels")
    assert one == two  # only the label tells them apart

"""DY103: a host port the fleet will publish is already bound on its machine. The parsers of
/proc/net and the rule are pure; tests/engine/test_failures.py binds real ports."""

from __future__ import annotations

from dockyard.checks.ports import HostPorts, PortHolder
from dockyard.checks.run import check_host_ports
from dockyard.engine.hostports import Listener, held_ports, parse_proc_net, wanted
from dockyard.manifest.load import loads
from dockyard.plan import plan

# Recorded from this host's /proc/net/tcp and tcp6 (a listener on 0.0.0.0:2024, one on
# 127.0.0.1:8080, an established connection, and [::]:5432).
# Recorded from this host's /proc/net/tcp and tcp6, columns after the inode cut (a listener
# on 0.0.0.0:2024, one on 127.0.0.1:8080, an established connection, and [::]:5432).
TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1061
   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242
   2: 020200C0:9FAE 507100CB:0050 01 00000000:00000000 03:00001187 00000000     0        0 0
"""
V6_ANY, V6_LOOP = "0" * 32, "0" * 24 + "01000000"
TCP6 = f"""\
  sl  local_address remote_address st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout
   0: {V6_ANY}:1538 {V6_ANY}:0000 0A 00000000:00000000 00:00000000 00000000   105        0 777
   1: {V6_LOOP}:0035 {V6_ANY}:0000 0A 00000000:00000000 00:00000000 00000000   105        0 778
"""

FLEET = """\
fleet: web
machines:
  box: {}
services:
  api:
    image: nginx:1.27
    ports: {http: "8080:80", admin: {port: 9000, host: 19000, bind: 0.0.0.0}}
  db:
    image: postgres:16
    ports: {pg: "0.0.0.0:5432:5432"}
"""


def test_proc_net_tables_are_read_as_bound_sockets() -> None:
    assert parse_proc_net(TCP, "tcp") == [Listener("tcp", "0.0.0.0", 2024, 1061),
                                          Listener("tcp", "127.0.0.1", 8080, 4242)]
    assert parse_proc_net(TCP6, "tcp") == [Listener("tcp", "::", 5432, 777),
                                           Listener("tcp", "::1", 53, 778)]


def test_containers_first_then_processes_and_only_the_wanted_ports() -> None:
    fleet = loads(FLEET, environ={})
    want = wanted(plan(fleet).on("box"))
    assert want == [("0.0.0.0", 5432, "tcp"), ("0.0.0.0", 19000, "tcp"),
                    ("127.0.0.1", 8080, "tcp")]
    found = parse_proc_net(TCP, "tcp") + parse_proc_net(TCP6, "tcp")
    box = PortHolder(port=8080, address="127.0.0.1", container="other-web-1", project="other")
    held = held_ports(found, [box], want, {777: "postgres (pid 812)"})
    # 8080 is the container's (docker-proxy's socket is not a second holder); 5432 a process.
    assert held == [box, PortHolder(port=5432, address="::", process="postgres (pid 812)")]


def test_dy103_names_the_service_the_port_and_what_holds_it() -> None:
    fleet = loads(FLEET, environ={})
    the_plan = plan(fleet)
    facts = HostPorts(machine="box", project="web", services=("api", "db"), held=(
        PortHolder(port=8080, address="127.0.0.1", container="other-web-1", project="other"),
        PortHolder(port=5432, address="::", process="postgres (pid 812)"),
        PortHolder(port=19000, address="0.0.0.0")))
    found = {f.service + ":" + f.message.split("host port ")[1].split()[0]: f
             for f in check_host_ports(fleet, the_plan, facts)}
    assert set(found) == {"api:8080", "api:19000", "db:5432"}
    f = found["api:8080"]
    assert f.code == "DY103" and f.where.line == 7
    assert f.message == ("service api publishes host port 8080 on machine box, but container "
                         "other-web-1, compose project other on 127.0.0.1 already holds it")
    assert f.fix.startswith("stop it (`docker stop other-web-1`), or give api another host "
                            "port, e.g. `host: 8081`")
    assert "but process postgres (pid 812) already holds it" in found["db:5432"].message
    assert "ss -tlnp 'sport = :19000'" in found["api:19000"].fix


def test_the_fleets_own_containers_and_other_addresses_are_no_rivals() -> None:
    fleet = loads(FLEET, environ={})
    facts = HostPorts(machine="box", project="web", services=("api", "db"), held=(
        PortHolder(port=8080, address="127.0.0.1", container="web-api-1", project="web"),
        PortHolder(port=8080, address="192.168.1.5"),  # api binds 127.0.0.1 only
        PortHolder(port=5432, protocol="udp")))
    assert check_host_ports(fleet, plan(fleet), facts) == []


def test_a_suppressed_dy103_is_quiet_and_services_up_does_not_start_are_not_judged() -> None:
    fleet = loads(FLEET.replace("    image: postgres:16\n", "    image: postgres:16\n"
                                "    suppress: {DY103: the old one is stopped first}\n"),
                  environ={})
    held = (PortHolder(port=5432), PortHolder(port=8080))
    assert check_host_ports(fleet, plan(fleet), HostPorts(
        machine="box", project="web", services=("db",), held=held)) == []

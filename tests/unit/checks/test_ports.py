"""DY1xx: host ports per machine, ports inside one container."""

from __future__ import annotations

import pytest

from dockyard.checks import Severity
from tests.unit.checks.helpers import BASE, HEALTH, TWO, assert_finding, findings, only

# --- DY101: host port collision -------------------------------------------------------------

def test_dy101_same_host_port_on_one_machine() -> None:
    text = BASE + """\
services:
  web:
    image: nginx:1.27
    ports: {http: "8080:80"}
""" + HEALTH + """\
  api:
    image: nginx:1.27
    ports:
      main: {port: 9000, host: 8080}
""" + HEALTH
    f = only(text, "DY101")
    # The services are checked by name: `api` claims 8080 first, `web` collides.
    assert_finding(f, "DY101", Severity.ERROR, "fleet.yaml:7:13", "web")
    assert "8080" in f.message and "api" in f.message
    assert "host: 8081" in f.fix


def test_dy101_no_finding_for_distinct_ports() -> None:
    text = BASE + """\
services:
  web:
    image: nginx:1.27
    ports: {http: "8080:80", other: "8081:80", hidden: {port: 8080, publish: false}}
""" + HEALTH + """\
  api:
    image: nginx:1.27
    ports: {http: {port: 8080, publish: false}}
""" + HEALTH
    assert findings(text, "DY101") == []


def test_dy101_same_port_on_different_machines_is_fine() -> None:
    text = TWO + """\
services:
  web:
    image: nginx:1.27
    machine: a
    ports: {http: "8080:80"}
""" + HEALTH + """\
  api:
    image: nginx:1.27
    machine: b
    ports: {http: "8080:80"}
""" + HEALTH
    assert findings(text, "DY101") == []


@pytest.mark.parametrize(("first_bind", "second_bind"), [
    ("0.0.0.0", "127.0.0.1"), ("127.0.0.1", "0.0.0.0"), ("0.0.0.0", "0.0.0.0")])
def test_dy101_all_interfaces_collides_with_any_address(first_bind: str,
                                                       second_bind: str) -> None:
    text = BASE + f"""\
services:
  api:
    image: nginx:1.27
    ports: {{http: "{first_bind}:8080:80"}}
""" + HEALTH + f"""\
  web:
    image: nginx:1.27
    ports: {{http: "{second_bind}:8080:80"}}
""" + HEALTH
    f = only(text, "DY101")
    assert_finding(f, "DY101", Severity.ERROR, "fleet.yaml:11:13", "web")
    assert "api" in f.message


def test_dy101_two_specific_addresses_do_not_collide() -> None:
    text = BASE + """\
services:
  api:
    image: nginx:1.27
    ports: {http: "127.0.0.1:8080:80"}
""" + HEALTH + """\
  web:
    image: nginx:1.27
    ports: {http: "192.168.1.5:8080:80"}
""" + HEALTH
    assert findings(text, "DY101") == []


def test_dy101_tcp_and_udp_on_one_port_do_not_collide() -> None:
    text = BASE + """\
services:
  api:
    image: nginx:1.27
    ports: {http: {port: 53, host: 5353}}
""" + HEALTH + """\
  dns:
    image: coredns/coredns:1.11.3
    ports: {dns: {port: 53, host: 5353, protocol: udp}}
""" + HEALTH
    assert findings(text, "DY101") == []


def test_dy101_udp_collides_with_udp() -> None:
    text = BASE + """\
services:
  api:
    image: nginx:1.27
    ports: {dns: {port: 53, host: 5353, protocol: udp}}
""" + HEALTH + """\
  dns:
    image: coredns/coredns:1.11.3
    ports: {dns: {port: 53, host: 5353, protocol: udp}}
""" + HEALTH
    assert_finding(only(text, "DY101"), "DY101", Severity.ERROR, "fleet.yaml:11:13", "dns")


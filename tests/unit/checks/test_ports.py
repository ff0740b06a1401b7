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



# --- DY101 with copies on several machines and agents -----------------------------------------

THREE = """\
fleet: demo
machines:
  a: {}
  b: {}
  c: {}
"""


def test_dy101_copy_on_each_machine_collides_there() -> None:
    text = THREE + """\
services:
  api:
    image: ghcr.io/x/api:1.0
    machines: [a, b]
    ports: {http: "8080:80"}
""" + HEALTH + """\
  web:
    image: ghcr.io/x/web:1.0
    machine: b
    ports: {http: "8080:80"}
""" + HEALTH
    f = only(text, "DY101")
    assert_finding(f, "DY101", Severity.ERROR, "fleet.yaml:15:13", "web")
    assert "machine b" in f.message and "api" in f.message


def test_dy101_copies_on_other_machines_do_not_collide() -> None:
    text = THREE + """\
services:
  api:
    image: ghcr.io/x/api:1.0
    machines: [a, b]
    ports: {http: "8080:80"}
""" + HEALTH + """\
  web:
    image: ghcr.io/x/web:1.0
    machine: c
    ports: {http: "8080:80"}
""" + HEALTH
    assert findings(text, "DY101") == []


def test_dy101_agent_port_collides_with_another_service() -> None:
    text = BASE + """\
services:
  crew:
    image: ghcr.io/x/crew:1.0
    agents:
      planner: {command: [plan], ports: {http: "9001:9001"}}
      writer: {command: [write], ports: {http: "9002:9002"}}
""" + HEALTH + """\
  web:
    image: ghcr.io/x/web:1.0
    ports: {http: "9002:80"}
""" + HEALTH
    f = only(text, "DY101")
    assert_finding(f, "DY101", Severity.ERROR, "fleet.yaml:13:13", "web")
    assert "crew (agent writer)" in f.message


def test_dy101_agents_with_their_own_host_ports() -> None:
    text = BASE + """\
services:
  crew:
    image: ghcr.io/x/crew:1.0
    agents:
      planner: {command: [plan], ports: {http: "9001:9001"}}
      writer: {command: [write], ports: {http: "9002:9002"}}
""" + HEALTH + """\
  web:
    image: ghcr.io/x/web:1.0
    ports: {http: "9003:80"}
""" + HEALTH
    assert findings(text, "DY101") == []
    assert findings(text, "DY102") == []


# --- DY102: processes of one container share its ports ---------------------------------------

def test_dy102_two_agents_on_one_container_port() -> None:
    text = BASE + """\
services:
  crew:
    image: ghcr.io/x/crew:1.0
    agents:
      planner: {command: [plan], ports: {http: {port: 8000, publish: false}}}
      writer: {command: [write], ports: {http: {port: 8000, publish: false}}}
""" + HEALTH
    f = only(text, "DY102")
    assert_finding(f, "DY102", Severity.ERROR, "fleet.yaml:9:42", "crew")
    assert "agent writer" in f.message and "agent planner" in f.message


def test_dy102_health_port_of_another_process() -> None:
    text = BASE + """\
services:
  crew:
    image: ghcr.io/x/crew:1.0
    agents:
      planner: {command: [plan], ports: {http: {port: 8000, publish: false}}}
      writer:
        command: [write]
        health: {http: /health, port: 8000}
""" + HEALTH
    f = only(text, "DY102")
    assert_finding(f, "DY102", Severity.ERROR, "fleet.yaml:11:33", "crew")
    assert "agent writer" in f.message and "8000" in f.message


def test_dy102_health_on_its_own_port_is_fine() -> None:
    text = BASE + """\
services:
  crew:
    image: ghcr.io/x/crew:1.0
    agents:
      planner: {command: [plan], ports: {http: {port: 8000, publish: false}}}
      writer:
        command: [write]
        ports: {http: {port: 8001, publish: false}}
        health: {http: /health, port: http}
""" + HEALTH
    assert findings(text, "DY102") == []


def test_dy102_one_finding_per_shared_port_naming_every_agent() -> None:
    port = "{zmq: {port: 8000, publish: false}}"
    agents = "".join(f"      a{i}: {{command: [run], ports: {port}}}\n" for i in range(8))
    text = BASE + """\
services:
  crew:
    image: ghcr.io/x/crew:1.0
    agents:
""" + agents + HEALTH
    f = only(text, "DY102")
    assert str(f.where) == "fleet.yaml:9:36"  # a1, the first to share a0's port
    assert "agent a1, agent a2, agent a3, agent a4, agent a5 and 2 more use container port " \
           "8000, which agent a0 already uses" in f.message


def test_dy101_quiet_across_mutually_exclusive_profiles() -> None:
    # The n8n starter kit: ollama-cpu, ollama-gpu and ollama-gpu-amd, one per profile.
    text = BASE + """\
services:
  ollama-cpu: {image: "ollama/ollama:0.5.7", profiles: [cpu], ports: {api: 11434}}
  ollama-gpu: {image: "ollama/ollama:0.5.7", profiles: [gpu-nvidia], ports: {api: 11434}}
  ollama-amd: {image: "ollama/ollama:0.5.7-rocm", profiles: [gpu-amd], ports: {api: 11434}}
"""
    assert findings(text, "DY101") == []


def test_dy101_still_reported_when_profiles_can_run_together() -> None:
    text = BASE + """\
services:
  ollama-cpu: {image: "ollama/ollama:0.5.7", profiles: [cpu, all], ports: {api: 11434}}
  ollama-gpu: {image: "ollama/ollama:0.5.7", profiles: [gpu, all], ports: {api: 11434}}
"""
    assert [f.service for f in findings(text, "DY101")] == ["ollama-gpu"]
    always = text + '  proxy: {image: "ghcr.io/x/proxy:1.0", ports: {api: 11434}}\n'
    assert [f.service for f in findings(always, "DY101")] == ["ollama-gpu", "proxy"]

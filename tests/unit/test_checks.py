"""The check rules: for each, a manifest that triggers it (code, severity, exact place, a message
and fix that name the service) and one that does not.

Locations are counted by hand from the inline YAML: each manifest starts at line 1 with
`fleet: demo`, so with the three-line BASE `services:` is line 4 and the first service line 5.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import dockyard
from dockyard.checks import Finding, Severity, check
from dockyard.checks.rules import RULES
from dockyard.manifest.load import load, loads
from dockyard.plan import plan

EXAMPLE = Path(dockyard.__file__).parent / "examples" / "quickstart" / "fleet.yaml"

BASE = """\
fleet: demo
machines:
  local: {}
"""

TWO = """\
fleet: demo
machines:
  a: {}
  b: {}
"""

GPU = """\
fleet: demo
machines:
  box:
    gpus: [{model: NVIDIA GeForce RTX 4090, memory: 24GiB}, {memory: 12GiB}]
"""

HEALTH = "    health: {cmd: [/bin/true]}\n"


def findings(text: str, code: str | None = None) -> list[Finding]:
    fleet = loads(text, environ={})
    found = check(fleet, plan(fleet))
    return [f for f in found if code is None or f.code == code]


def only(text: str, code: str) -> Finding:
    found = findings(text, code)
    assert len(found) == 1, found
    return found[0]


def assert_finding(f: Finding, code: str, severity: Severity, where: str, service: str) -> None:
    assert f.code == code
    assert f.severity is severity
    assert str(f.where) == where
    assert f.message.strip() and f.fix.strip()
    assert service in f.message
    assert str(f).startswith(f"{where}: {severity} {code}: ")
    as_dict = f.as_dict()
    assert (as_dict["file"], as_dict["line"], as_dict["col"]) == (
        f.where.file, f.where.line, f.where.col)
    assert as_dict["severity"] == str(severity)


def test_every_rule_is_registered() -> None:
    names = {rule.__name__ for rule in RULES}
    assert names == {"host_port_collisions", "gpu_budget", "dependency_without_health",
                     "missing_health", "latest_tag"}


def test_bundled_example_is_clean() -> None:
    fleet = load(EXAMPLE, environ={})
    assert check(fleet, plan(fleet)) == []


def test_findings_are_sorted_by_place() -> None:
    text = BASE + """\
services:
  zed:
    image: redis
  api:
    image: nginx
"""
    found = findings(text)
    places = [(f.where.line, f.where.col, f.code) for f in found]
    assert places == sorted(places)
    assert [f.code for f in found] == ["DY502", "DY601", "DY502", "DY601"]


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


# --- DY201 / DY202: GPU budget --------------------------------------------------------------

def test_dy201_budgets_over_one_gpu() -> None:
    text = GPU + """\
services:
  llm:
    image: vllm/vllm-openai:v0.8.5
    gpu: {memory: 20GiB}
""" + HEALTH + """\
  embed:
    image: ghcr.io/x/embed:1.0
    gpu:
      memory: 8GiB
""" + HEALTH
    f = only(text, "DY201")
    # Checked by name (embed, llm): the finding points at the last one's budget.
    assert_finding(f, "DY201", Severity.ERROR, "fleet.yaml:8:11", "llm")
    assert "embed" in f.message
    assert "24.0 GiB" in f.message and "28.0 GiB" in f.message


def test_dy201_budgets_that_fit_each_gpu() -> None:
    text = GPU + """\
services:
  llm:
    image: vllm/vllm-openai:v0.8.5
    gpu: {memory: 20GiB}
""" + HEALTH + """\
  embed:
    image: ghcr.io/x/embed:1.0
    gpu: {memory: 8GiB, device: 1}
""" + HEALTH + """\
  tiny:
    image: ghcr.io/x/tiny:1.0
    gpu: {memory: 4GiB}
""" + HEALTH
    assert findings(text, "DY201") == []
    assert findings(text, "DY202") == []


def test_dy201_gpu_memory_unknown_is_no_budget() -> None:
    text = """\
fleet: demo
machines:
  box: {gpus: [{model: unknown}]}
services:
  llm:
    image: vllm/vllm-openai:v0.8.5
    gpu: {memory: 200GiB}
""" + HEALTH
    assert findings(text, "DY201") == []


def test_dy202_device_the_machine_does_not_have() -> None:
    text = GPU + """\
services:
  llm:
    image: vllm/vllm-openai:v0.8.5
    gpu: {memory: 20GiB, device: 2}
""" + HEALTH
    f = only(text, "DY202")
    assert_finding(f, "DY202", Severity.ERROR, "fleet.yaml:8:5", "llm")
    assert "box" in f.message and "gpus" in f.fix


def test_dy202_gpu_service_placed_on_a_machine_without_gpus() -> None:
    text = """\
fleet: demo
machines:
  cpu: {}
  gpu: {gpus: [{memory: 24GiB}]}
services:
  llm:
    image: vllm/vllm-openai:v0.8.5
    machine: cpu
    gpu: {memory: 8GiB}
""" + HEALTH
    f = only(text, "DY202")
    assert_finding(f, "DY202", Severity.ERROR, "fleet.yaml:9:5", "llm")
    assert "0 GPU(s)" in f.message


# --- DY501: depends_on healthy without a health check --------------------------------------

def test_dy501_waiting_for_healthy_without_health() -> None:
    text = BASE + """\
services:
  db:
    image: postgres:16.4
  api:
    image: nginx:1.27
    depends_on: [db]
""" + HEALTH
    f = only(text, "DY501")
    assert_finding(f, "DY501", Severity.ERROR, "fleet.yaml:9:5", "api")
    assert "db" in f.message
    assert "condition: started" in f.fix and "db" in f.fix


def test_dy501_no_finding_when_only_started_is_awaited() -> None:
    text = BASE + """\
services:
  db:
    image: postgres:16.4
  api:
    image: nginx:1.27
    depends_on: {db: {condition: started}}
""" + HEALTH
    assert findings(text, "DY501") == []


def test_dy501_no_finding_when_the_dependency_has_health() -> None:
    text = BASE + """\
services:
  db:
    image: postgres:16.4
""" + HEALTH + """\
  api:
    image: nginx:1.27
    depends_on: [db]
""" + HEALTH
    assert findings(text) == []


# --- DY502: no health check ----------------------------------------------------------------

def test_dy502_service_without_health() -> None:
    text = BASE + """\
services:
  api:
    image: nginx:1.27
""" + HEALTH + """\
  worker:
    image: ghcr.io/x/worker:2.0
"""
    f = only(text, "DY502")
    assert_finding(f, "DY502", Severity.WARNING, "fleet.yaml:8:3", "worker")
    assert "health:" in f.fix


def test_dy502_no_finding_with_health() -> None:
    text = BASE + """\
services:
  api:
    image: nginx:1.27
    ports: {http: 80}
    health: {http: /health}
  worker:
    image: ghcr.io/x/worker:2.0
""" + HEALTH
    assert findings(text, "DY502") == []


# --- DY601: latest or untagged image --------------------------------------------------------

@pytest.mark.parametrize("image", [
    "redis", "redis:latest", "ghcr.io/x/redis:latest", "localhost:5000/redis"])
def test_dy601_moving_image(image: str) -> None:
    text = BASE + f"""\
services:
  cache:
    image: {image}
""" + HEALTH
    f = only(text, "DY601")
    assert_finding(f, "DY601", Severity.WARNING, "fleet.yaml:6:5", "cache")
    assert image in f.message
    assert "pin" in f.fix


@pytest.mark.parametrize("image", [
    "redis:7.4.1", "localhost:5000/redis:7.4.1", "ghcr.io/x/redis:latest-1",
    "redis@sha256:" + "a" * 64])
def test_dy601_pinned_image(image: str) -> None:
    text = BASE + f"""\
services:
  cache:
    image: {image}
""" + HEALTH
    assert findings(text, "DY601") == []


def test_dy601_ignores_built_services() -> None:
    text = BASE + """\
families:
  py: {from: python}
services:
  app:
    family: py
    build: app
""" + HEALTH
    assert findings(text) == []

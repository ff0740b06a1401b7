"""DY951-DY953: where `upgrade: start-first` cannot keep its promise."""

from __future__ import annotations

from dockyard.findings import Severity
from tests.unit.checks.helpers import BASE, HEALTH, assert_finding, codes, only

API = """\
services:
  api:
    image: ghcr.io/x/api:1.0
    ports: {http: 8000}
    upgrade: start-first
"""


def test_a_stateless_http_service_with_a_health_check_and_a_port_is_fine() -> None:
    assert not [c for c in codes(BASE + API + HEALTH) if c.startswith("DY95")]


def test_no_health_check_is_dy951_at_its_upgrade_key() -> None:
    f = only(BASE + API, "DY951")
    assert_finding(f, "DY951", Severity.ERROR, "fleet.yaml:8:5", "api")


def test_no_published_port_is_dy952() -> None:
    text = BASE + API.replace("{http: 8000}", "{http: {port: 8000, publish: false}}") + HEALTH
    f = only(text, "DY952")
    assert_finding(f, "DY952", Severity.ERROR, "fleet.yaml:8:5", "api")
    assert "both containers answer" in f.message


def test_a_udp_port_is_dy952_at_the_ports() -> None:
    text = BASE + API.replace("{http: 8000}", "{http: 8000, dns: \"53/udp\"}") + HEALTH
    text = text.replace('dns: "53/udp"', "dns: {port: 53, protocol: udp}")
    f = only(text, "DY952")
    assert "dns (udp)" in f.message and str(f.where) == "fleet.yaml:7:5"


def test_a_named_volume_written_by_both_copies_is_dy953_read_only_is_not() -> None:
    text = BASE + API + '    volumes: ["cache:/cache", "./conf:/conf", "models:/m:ro"]\n' + HEALTH
    f = only(text, "DY953")
    assert_finding(f, "DY953", Severity.ERROR, "fleet.yaml:9:15", "api")
    assert "cache" in f.message and "cache:/cache:ro" in f.fix


def test_stop_first_is_never_judged() -> None:
    text = BASE + API.replace("start-first", "stop-first") + '    volumes: ["d:/d"]\n'
    assert not [c for c in codes(text) if c.startswith("DY95")]


def test_the_ingress_port_does_not_collide_with_the_service_it_fronts() -> None:
    # The ingress publishes api's host port for it: no DY101 between the two.
    assert "DY101" not in codes(BASE + API + HEALTH)

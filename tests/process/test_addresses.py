"""engine/addresses.py against the system resolver (a process test: unit tests open no sockets).

Only names this machine answers itself (/etc/hosts): traffic stays here."""

from __future__ import annotations

import time

import pytest

from dockyard.engine.addresses import machine_addresses, resolve
from dockyard.manifest.load import loads
from dockyard.plan import plan

pytestmark = pytest.mark.process


def test_localhost_resolves_to_an_address() -> None:
    assert resolve(["localhost"]) == {"localhost": "127.0.0.1"}


def test_a_name_that_does_not_resolve_is_left_out_within_the_timeout() -> None:
    start = time.monotonic()
    assert resolve(["hna-nowhere.invalid"], timeout=2.0) == {}
    assert time.monotonic() - start < 3.0


def test_only_machines_a_route_goes_to_are_resolved() -> None:
    text = """\
fleet: hna-addresses
machines:
  a: {host: hna-nowhere.invalid}
  b: {host: localhost}
services:
  api:
    image: ghcr.io/x/api:1.0
    machine: a
    env: {EMBED_URL: "http://embedder:8001"}
  embedder:
    image: ghcr.io/x/embedder:1.0
    machine: b
    ports: {api: 8001}
"""
    fleet = loads(text)
    assert machine_addresses(fleet, plan(fleet)) == {"b": "127.0.0.1"}

"""Which services a rollback acts on, and which `:prev` images it pulls: no engine needed."""

from __future__ import annotations

import pytest

from dockyard.actions.rollback import prev_refs, rollback, rollback_to
from dockyard.actions.target import Choice
from dockyard.engine.build import prev_ref, rollback_services
from dockyard.errors import ManifestError
from dockyard.manifest.load import loads
from dockyard.plan import plan

FLEET = loads("""
fleet: shop
registry: registry.local:5000
machines: {box: {}}
families:
  base: {from: 'python:3.11-slim'}
services:
  api: {family: base, build: api}
  worker: {family: base, build: worker}
  cache: {image: 'redis:7.4.1'}
""")
PLAN = plan(FLEET)


def test_by_default_every_service_dockyard_builds() -> None:
    assert rollback_services(PLAN) == ["api", "worker"]
    assert prev_refs(PLAN) == ["registry.local:5000/shop/api:prev",
                               "registry.local:5000/shop/worker:prev"]


def test_named_services_only_and_stock_images_have_no_prev() -> None:
    assert rollback_services(PLAN, ["worker", "cache"]) == ["worker", "cache"]
    assert prev_refs(PLAN, ["worker", "cache"]) == ["registry.local:5000/shop/worker:prev"]


def test_prev_of_an_image_keeps_a_registry_port() -> None:
    assert prev_ref("registry.local:5000/shop/service-api:current") == (
        "registry.local:5000/shop/service-api:prev")
    assert prev_ref("quickstart/web") == "quickstart/web:prev"


TWO = loads("""
fleet: pair
machines:
  a: {engine: "ssh://root@10.0.0.1"}
  c: {engine: "ssh://root@10.0.0.3", build: remote}
families:
  base: {from: 'python:3.11-slim'}
services:
  web: {family: base, build: web, machine: a}
  api: {family: base, build: api, machine: c}
""")


def test_a_service_named_on_a_machine_that_m_leaves_out_is_refused_before_any_engine() -> None:
    only_a = Choice("a", None, (), ("a",))
    with pytest.raises(ManifestError, match="service api runs on c, which -m leaves out"):
        rollback(TWO, plan(TWO), ["api"], only_a, emit=lambda e: None)
    with pytest.raises(ManifestError, match="add -m c"):
        rollback_to(TWO, plan(TWO), "20261201-100000-aaaaaaaaaaaa", ["web", "api"], only_a,
                    emit=lambda e: None)

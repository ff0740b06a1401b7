"""Which services a rollback acts on, and which `:prev` images it pulls: no engine needed."""

from __future__ import annotations

from dockyard.actions.rollback import prev_refs
from dockyard.engine.build import prev_ref, rollback_services
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

"""DY5xx: health checks and dependencies."""

from __future__ import annotations

from dockyard.checks import Severity
from tests.unit.checks.helpers import BASE, HEALTH, assert_finding, findings, only

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
    image: ghcr.io/x/api:1.0
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


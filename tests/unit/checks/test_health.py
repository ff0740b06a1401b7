"""DY5xx: health checks and dependencies."""

from __future__ import annotations

import pytest

from dockyard.checks import Severity
from dockyard.checks.health import health_binaries, needed_programs, programs_to_look_for
from dockyard.manifest.load import loads
from dockyard.plan import plan
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
    depends_on: {worker: {condition: started}}
""" + HEALTH + """\
  worker:
    image: ghcr.io/x/worker:2.0
"""
    f = only(text, "DY502")
    assert_finding(f, "DY502", Severity.WARNING, "fleet.yaml:9:3", "worker")
    assert "health:" in f.fix and "api start" in f.message


def test_dy502_quiet_for_a_service_nobody_depends_on() -> None:
    text = BASE + """\
services:
  api:
    image: nginx:1.27
""" + HEALTH + """\
  worker:
    image: ghcr.io/x/worker:2.0
"""
    assert findings(text, "DY502") == []
    note = only(text, "DY505")
    assert_finding(note, "DY505", Severity.INFO, "fleet.yaml:8:3", "worker")


def test_dy502_and_dy505_quiet_for_a_one_shot() -> None:
    """A migration others wait for with `condition: completed`: its exit 0 is its health."""
    text = BASE + """\
services:
  migrate:
    image: ghcr.io/x/migrate:1.0
    restart: "no"
  api:
    image: nginx:1.27
    depends_on: {migrate: {condition: completed}}
""" + HEALTH
    assert findings(text, "DY502") == [] and findings(text, "DY505") == []
    assert findings(text, "DY506") == []


def test_dy506_a_one_shot_that_its_restart_policy_starts_again() -> None:
    text = BASE + """\
services:
  migrate:
    image: ghcr.io/x/migrate:1.0
  init:
    image: ghcr.io/x/init:1.0
    restart: always
  api:
    image: nginx:1.27
    depends_on: {migrate: {condition: completed}, init: {condition: completed}}
""" + HEALTH
    found = {f.service: f for f in findings(text, "DY506")}
    assert set(found) == {"migrate", "init"}
    assert_finding(found["init"], "DY506", Severity.ERROR, "fleet.yaml:9:5", "init")
    assert found["migrate"].message == ("service migrate is a one-shot (api wait for it to "
                                        "complete), but `restart: unless-stopped` starts it "
                                        "again after it exits 0")
    assert found["migrate"].where.line == 5  # the manifest's default: the service itself
    assert 'restart: "no"' in found["migrate"].fix


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



# --- DY503: an http health check with no program to run it -------------------------------

def test_dy503_family_without_python_or_curl() -> None:
    text = BASE + """\
families:
  plain: {from: "debian:bookworm-slim", apt: [nginx]}
services:
  web:
    family: plain
    build: web
    ports: {http: 8080}
    health: {http: /health}
"""
    f = only(text, "DY503")
    assert_finding(f, "DY503", Severity.ERROR, "fleet.yaml:11:14", "web")
    assert "curl or wget" in f.message and "family plain" in f.message
    assert "apt" in f.fix


def test_dy503_quiet_for_a_services_own_dockerfile() -> None:
    # Its own Dockerfile may install curl (`apt-get install curl`): only the built image,
    # looked at by `check --images`, can say it is missing.
    text = BASE + """\
families:
  plain: {from: "debian:bookworm-slim", apt: [nginx]}
services:
  web:
    family: plain
    build: web
    dockerfile: web/Dockerfile
    ports: {http: 8080}
    health: {http: /health}
"""
    assert findings(text, "DY503") == []
    fleet = loads(text, environ={})
    built = list(health_binaries(fleet, plan(fleet), {"web": {"nginx"}}))
    assert [f.code for f in built] == ["DY503"]  # the image, once looked at, decides


@pytest.mark.parametrize("family", ['{from: "debian:bookworm-slim", apt: [nginx, curl]}',
                                    '{from: "python:3.11-slim"}',
                                    '{from: "debian:bookworm-slim", requirements: [flask==3.0.3]}',
                                    '{from: "myorg/base:1.0"}'])
def test_dy503_family_that_can_probe(family: str) -> None:
    text = BASE + f"""\
families:
  plain: {family}
services:
  web:
    family: plain
    build: web
    ports: {{http: 8080}}
    health: {{http: /health}}
"""
    assert findings(text, "DY503") == []


def test_dy503_stock_image_without_curl_or_wget() -> None:
    text = BASE + """\
services:
  ollama:
    image: ollama/ollama:0.5.4
    ports: {api: 11434}
    health: {http: /api/version}
"""
    f = only(text, "DY503")
    assert "ollama/ollama:0.5.4" in f.message


# --- DY504: a cmd health check runs a program the image lacks ------------------------------

def test_dy504_curl_on_qdrant() -> None:
    text = BASE + """\
services:
  qdrant:
    image: qdrant/qdrant:v1.12.4
    ports: {http: 6333}
    health: {cmd: "curl -fsS http://localhost:6333/healthz || exit 1"}
"""
    f = only(text, "DY504")
    assert_finding(f, "DY504", Severity.ERROR, "fleet.yaml:8:14", "qdrant")
    assert "curl" in f.message and "/dev/tcp" in f.fix


def test_dy504_exec_form_wget_on_postgres() -> None:
    text = BASE + """\
services:
  db:
    image: postgres:16.4
    health: {cmd: [wget, -qO-, "http://localhost:5432"]}
"""
    f = only(text, "DY504")
    assert "wget" in f.message and "pg_isready" in f.fix


@pytest.mark.parametrize(("image", "cmd"), [
    ("postgres:16.4", "[pg_isready, -U, postgres]"),
    ("redis:7.4.1", "[redis-cli, ping]"),
    ("redis:7.4.1-alpine", "[wget, -qO-, 'http://localhost:8001']"),  # busybox wget
    ("ghcr.io/x/unknown:1.0", "[curl, -f, 'http://localhost']"),  # unknown: no guess
    ("qdrant/qdrant:v1.12.4", "\"bash -c ':> /dev/tcp/127.0.0.1/6333'\""),
])
def test_dy504_programs_the_image_has(image: str, cmd: str) -> None:
    text = BASE + f"""\
services:
  svc:
    image: {image}
    health: {{cmd: {cmd}}}
"""
    assert findings(text, "DY504") == []
    assert findings(text, "DY503") == []


# --- the hook: programs found on the built image ---------------------------------------------

FAMILY_WEB = BASE + """\
families:
  plain: {from: "myorg/base:1.0"}
services:
  web:
    family: plain
    build: web
    ports: {http: 8080}
    health: {http: /health}
  worker:
    family: plain
    build: worker
    health: {cmd: [celery, inspect, ping]}
"""


def _with_programs(present: dict[str, set[str]]) -> list[str]:
    fleet = loads(FAMILY_WEB, environ={})
    return sorted(f"{f.code} {f.service}" for f in health_binaries(fleet, plan(fleet), present))


def test_hook_programs_found_on_the_built_image() -> None:
    # Unknown base: no finding from a guess...
    assert _with_programs({}) == []
    # ...but what the engine found on the built images is the truth.
    assert _with_programs({"web": {"sh", "ls"}, "worker": {"sh", "python3"}}) == [
        "DY503 web", "DY504 worker"]
    assert _with_programs({"web": {"sh", "wget"}, "worker": {"celery"}}) == []


def test_needed_programs_reads_rendered_tests() -> None:
    assert needed_programs(["NONE"]) == []
    assert needed_programs(["CMD", "/usr/bin/pg_isready", "-U", "x"]) == [("pg_isready",)]
    assert needed_programs(["CMD-SHELL", "curl -fsS http://x >/dev/null || wget -qO- http://x "
                            ">/dev/null || exit 1"]) == [("sh",), ("curl", "wget")]
    assert needed_programs(["CMD", "/bin/sh", "-c", "FOO=1 redis-cli ping | grep PONG"]) == [
        ("sh",), ("redis-cli",)]
    assert needed_programs(["CMD", "python3", "-c", "import x"]) == [("python3",)]


def test_programs_to_look_for_on_built_images() -> None:
    fleet = loads(FAMILY_WEB, environ={})
    assert programs_to_look_for(fleet, plan(fleet)) == {
        "web": {"sh", "curl", "wget"}, "worker": {"celery"}}


def test_dy502_and_dy501_quiet_for_an_image_that_ships_its_own_healthcheck() -> None:
    # `check --images` saw a HEALTHCHECK in the image: `up` waits on the engine's verdict.
    from dockyard.checks.run import check_report

    text = BASE + """\
services:
  api:
    image: ghcr.io/x/api:1.0
    depends_on: [search]
""" + HEALTH + """\
  search:
    image: getmeili/meilisearch:v1.12
"""
    fleet = loads(text, environ={})
    the_plan = plan(fleet)
    before = {f.code for f in check_report(fleet, the_plan).findings}
    assert {"DY501", "DY502"} <= before
    after = {f.code for f in check_report(fleet, the_plan, own_health={"search"}).findings}
    assert not {"DY501", "DY502", "DY505"} & after
    switched_off = loads(text.replace("    image: getmeili/meilisearch:v1.12\n",
                                      "    image: getmeili/meilisearch:v1.12\n"
                                      "    image_health: false\n"), environ={})
    kept = {f.code for f in check_report(switched_off, plan(switched_off),
                                          own_health={"search"}).findings}
    assert {"DY501", "DY502"} <= kept

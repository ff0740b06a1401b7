"""DY4xx: services find each other by name; data paths and dependencies across machines."""

from __future__ import annotations

import pytest

from dockyard.checks import Severity
from tests.unit.checks.helpers import BASE, HEALTH, TWO, assert_finding, findings, only

STORE = """\
  store:
    image: redis:7.4.1
    ports: {redis: 6379}
    health: {cmd: [redis-cli, ping]}
"""


# --- DY401: loopback as a target ------------------------------------------------------------

def test_dy401_url_to_localhost_names_the_service_that_answers() -> None:
    text = BASE + """\
services:
  api:
    image: ghcr.io/x/api:1.0
    env: {REDIS_URL: "redis://localhost:6379/0"}
""" + HEALTH + STORE
    f = only(text, "DY401")
    assert_finding(f, "DY401", Severity.ERROR, "fleet.yaml:7:11", "api")
    assert "localhost:6379" in f.message and "store" in f.message
    assert f.fix == "write `REDIS_URL: redis://store:6379/0`"


@pytest.mark.parametrize("value", ["http://127.0.0.1:6379", "0.0.0.0:6379",
                                   "redis://user:pw@localhost:6379"])
def test_dy401_other_loopback_forms(value: str) -> None:
    text = BASE + f"""\
services:
  api:
    image: ghcr.io/x/api:1.0
    env: {{CACHE: "{value}"}}
""" + HEALTH + STORE
    f = only(text, "DY401")
    assert "store:6379" in f.fix


def test_dy401_bare_host_under_a_host_key() -> None:
    text = BASE + """\
services:
  api:
    image: ghcr.io/x/api:1.0
    env: {REDIS_HOST: localhost}
""" + HEALTH + STORE
    f = only(text, "DY401")
    assert "REDIS_HOST" in f.message and "host.docker.internal" in f.fix


@pytest.mark.parametrize(("key", "value"), [
    ("REDIS_URL", "redis://store:6379"),  # the service name: right
    ("HOST", "0.0.0.0"),  # what the service listens on
    ("UVICORN_HOST", "127.0.0.1"),
    ("BIND_ADDR", "127.0.0.1"),
    ("NO_PROXY", "localhost,127.0.0.1"),
    ("SELF_URL", "http://localhost:8000/v1"),  # its own port: talking to itself
    ("DOCS", "see https://example.org/x"),
])
def test_dy401_not_a_target(key: str, value: str) -> None:
    text = BASE + f"""\
services:
  api:
    image: ghcr.io/x/api:1.0
    ports: {{http: 8000}}
    env: {{{key}: "{value}"}}
""" + HEALTH + STORE
    assert findings(text, "DY401") == []
    assert findings(text, "DY402") == []


def test_dy401_in_an_agent_env() -> None:
    text = BASE + """\
services:
  crew:
    image: ghcr.io/x/crew:1.0
    agents:
      planner:
        command: [plan]
        env: {MEMORY_URL: "http://localhost:6379"}
""" + HEALTH + STORE
    f = only(text, "DY401")
    assert_finding(f, "DY401", Severity.ERROR, "fleet.yaml:10:15", "crew")


# --- DY402: hard-coded address of a machine -------------------------------------------------

HOSTS = """\
fleet: demo
machines:
  a: {host: 192.168.1.10}
  b: {host: 192.168.1.20}
"""


def test_dy402_ip_of_another_machine() -> None:
    text = HOSTS + """\
services:
  api:
    image: ghcr.io/x/api:1.0
    machine: a
    env: {VECTORS: "http://192.168.1.20:6333"}
""" + HEALTH + """\
  qdrant:
    image: ghcr.io/x/qdrant:1.0
    machine: b
    ports: {http: "0.0.0.0:6333:6333"}
""" + HEALTH
    f = only(text, "DY402")
    assert_finding(f, "DY402", Severity.WARNING, "fleet.yaml:9:11", "api")
    assert "machine b" in f.message and "qdrant" in f.message


def test_dy402_ip_of_its_own_machine_suggests_the_name() -> None:
    text = HOSTS + """\
services:
  api:
    image: ghcr.io/x/api:1.0
    machine: a
    env: {VECTORS: "http://192.168.1.10:16333"}
""" + HEALTH + """\
  qdrant:
    image: ghcr.io/x/qdrant:1.0
    machine: a
    ports: {http: "0.0.0.0:16333:6333"}
""" + HEALTH
    f = only(text, "DY402")
    assert f.fix == "write `VECTORS: http://qdrant:6333`"


def test_dy402_outside_addresses_are_not_flagged() -> None:
    text = HOSTS + """\
services:
  api:
    image: ghcr.io/x/api:1.0
    machine: a
    env: {DNS: "8.8.8.8:53", MODEL: "http://10.1.2.3:8080"}
""" + HEALTH
    assert findings(text, "DY402") == []
    assert findings(text, "DY401") == []


# --- DY403: relative host paths ------------------------------------------------------------

@pytest.mark.parametrize("volume", ["./data:/data", "../shared/models:/models:ro",
                                    "data/cache:/cache"])
def test_dy403_relative_host_path(volume: str) -> None:
    text = BASE + f"""\
services:
  api:
    image: ghcr.io/x/api:1.0
    volumes: ["/srv/ok:/ok", "{volume}"]
""" + HEALTH
    f = only(text, "DY403")
    assert_finding(f, "DY403", Severity.WARNING, "fleet.yaml:7:30", "api")
    target = volume.split(":")[1]
    assert "/srv/demo/" in f.fix and f":{target}`" in f.fix


@pytest.mark.parametrize("volume", ["/srv/data:/data", "pgdata:/var/lib/postgresql/data",
                                    "~/models:/models", "${DATA_DIR}:/data"])
def test_dy403_absolute_or_named(volume: str) -> None:
    text = BASE + f"""\
services:
  api:
    image: ghcr.io/x/api:1.0
    volumes: ["{volume}"]
""" + HEALTH
    assert findings(text, "DY403", environ={"DATA_DIR": "/srv/data"}) == []


# --- DY404, DY407, DY408: a service reached on another machine with no route --------------
# (plan/routes.py decides; tests/unit/test_routes.py tests what render writes for a route)

def test_dy407_dependency_on_another_machine_without_a_port() -> None:
    text = HOSTS + """\
services:
  api:
    image: ghcr.io/x/api:1.0
    machine: a
    depends_on: [db]
""" + HEALTH + """\
  db:
    image: postgres:16.4
    machine: b
    health: {cmd: [pg_isready]}
"""
    f = only(text, "DY407")
    assert_finding(f, "DY407", Severity.ERROR, "fleet.yaml:9:5", "api")
    assert f.message == ("service api on a: its depends_on reaches db, on machine b, which "
                         "declares no port: nothing on another machine can reach it")
    assert "db's `ports:`" in f.fix
    # a one-shot that only has to have run needs no route
    assert findings(text.replace("depends_on: [db]",
                                 "depends_on: {db: {condition: completed}}"), "DY407") == []


def test_dy404_the_callee_machine_has_no_host() -> None:
    text = TWO + """\
services:
  api:
    image: ghcr.io/x/api:1.0
    machine: a
    depends_on: [db]
    env: {DATABASE_URL: "postgres://app@db:5432/app"}
""" + HEALTH + """\
  db:
    image: postgres:16.4
    machine: b
    ports: {pg: "5432"}
    health: {cmd: [pg_isready]}
"""
    found = findings(text, "DY404")
    assert [str(f.where) for f in found] == ["fleet.yaml:9:5", "fleet.yaml:10:11"]
    assert found[1].message == ("service api on a: DATABASE_URL reaches db, which runs on "
                                "machine b, and machine b has no `host:` address for the route")
    assert "machines.b.host" in found[1].fix
    # With an address for b, the default 127.0.0.1 bind is no obstacle: render adds b's.
    assert findings(text.replace("  a: {}\n  b: {}", "  a: {}\n  b: {host: 10.0.0.2}"),
                    "DY404") == []


def test_dy404_reachable_or_on_the_same_machine() -> None:
    text = HOSTS + """\
services:
  api:
    image: ghcr.io/x/api:1.0
    machine: a
    depends_on: [db, cache]
""" + HEALTH + """\
  db:
    image: postgres:16.4
    machine: b
    ports: {pg: "0.0.0.0:5432:5432"}
    health: {cmd: [pg_isready]}
  cache:
    image: redis:7.4.1
    machines: [a, b]
    health: {cmd: [redis-cli, ping]}
"""
    assert [f for f in findings(text) if f.code in ("DY404", "DY407", "DY408")] == []


def test_dy407_a_url_port_the_callee_cannot_publish() -> None:
    text = HOSTS + """\
services:
  api:
    image: ghcr.io/x/api:1.0
    machine: a
    env:
      VECTORS: "http://qdrant:6333"
      EMBED: "http://embedder:9000/v1"
      OTHER: "grpc://qdrant:6334"
""" + HEALTH + """\
  qdrant:
    image: qdrant/qdrant:v1.13.4
    machine: b
    ports: {http: {port: 6333, publish: false}, grpc: 6334}
""" + HEALTH + """\
  embedder:
    image: ghcr.io/x/embedder:1.0
    machine: b
    ports: {api: 8001}
""" + HEALTH + """\
  proxy:
    image: ghcr.io/x/proxy:1.0
    machine: b
    ports: {p: "0.0.0.0:6334:80"}
""" + HEALTH
    found = {f.where.line: f for f in findings(text, "DY407")}
    assert sorted(found) == [10, 11, 12]
    assert "that port is `publish: false`" in found[10].message
    assert "embedder declares no port 9000" in found[11].message
    assert found[12].message.endswith("whose host port 6334 proxy already publishes")
    assert found[12].fix == "give proxy another host port, or run api on b"


def test_dy408_localhost_for_a_service_on_another_machine() -> None:
    text = HOSTS + """\
services:
  api:
    image: ghcr.io/x/api:1.0
    machine: a
    env: {EMBED_URL: "http://localhost:8001/v1", SELF: "http://localhost:7000"}
    command: [serve, --backend, "127.0.0.1:8001"]
    ports: {http: 7000}
""" + HEALTH + """\
  embedder:
    image: ghcr.io/x/embedder:1.0
    machine: b
    ports: {api: 8001}
""" + HEALTH
    found = findings(text, "DY408")
    assert [str(f.where) for f in found] == ["fleet.yaml:9:11", "fleet.yaml:10:33"]
    assert found[0].message == (
        "service api on a: EMBED_URL points at localhost:8001, which inside a container is "
        "the container itself; embedder answers on port 8001, on machine b")
    assert found[0].fix == ("write `http://embedder:8001/v1` in EMBED_URL: render points the "
                            "name embedder at machine b")
    assert found[1].fix.startswith("write `embedder:8001`: ")
    assert findings(text, "DY401") == []  # said once, by DY408


def test_dy402_an_address_passed_in_as_a_variable_is_not_hard_coded() -> None:
    text = """\
fleet: demo
machines:
  a: {host: "${A_HOST}"}
  b: {host: "${B_HOST}"}
services:
  api:
    image: ghcr.io/x/api:1.0
    machine: a
    env: {VECTORS: "http://${B_HOST}:6333", CACHE: "http://192.168.1.20:6379"}
""" + HEALTH + """\
  qdrant:
    image: ghcr.io/x/qdrant:1.0
    machine: b
    ports: {http: "0.0.0.0:6333:6333"}
""" + HEALTH
    found = findings(text, "DY402", environ={"A_HOST": "192.168.1.10", "B_HOST": "192.168.1.20"})
    assert [f.message for f in found] == [
        "service api: CACHE hard-codes 192.168.1.20, the address of machine b"]


def test_dy401_in_a_command_argument() -> None:
    text = BASE + """\
services:
  worker:
    image: ghcr.io/x/worker:1.0
    command: [celery, -A, tasks, worker, --broker, "redis://127.0.0.1:6379/0"]
""" + HEALTH + STORE
    f = only(text, "DY401")
    assert_finding(f, "DY401", Severity.ERROR, "fleet.yaml:7:52", "worker")
    assert "an argument of its command points at 127.0.0.1:6379" in f.message
    assert f.fix == "write `redis://store:6379/0` in the command"


def test_dy401_listen_addresses_in_commands_are_fine() -> None:
    text = BASE + """\
services:
  api:
    image: ghcr.io/x/api:1.0
    command: [uvicorn, app:app, --host, 0.0.0.0, --port, "8000"]
    entrypoint: [/usr/bin/tini, --]
    ports: {http: 8000}
    health: {cmd: [curl, -f, "http://localhost:8000/health"]}
""" + STORE
    assert findings(text, "DY401") == []


def test_dy401_suggests_the_service_on_the_same_machine() -> None:
    text = TWO + """\
services:
  api:
    image: ghcr.io/x/api:1.0
    machine: b
    env: {CACHE: "redis://localhost:6379"}
""" + HEALTH + """\
  cache-a:
    image: redis:7.4.1
    machine: a
    ports: {redis: {port: 6379, publish: false}}
    health: {cmd: [redis-cli, ping]}
  cache-b:
    image: redis:7.4.1
    machine: b
    ports: {redis: {port: 6379, publish: false}}
    health: {cmd: [redis-cli, ping]}
"""
    assert only(text, "DY401").fix == "write `CACHE: redis://cache-b:6379`"


# --- DY405: a URL whose host is no service or machine ---------------------------------------

def _api(env: str) -> str:
    return BASE + f"""\
services:
  store:
    image: redis:7.4
{HEALTH}  api:
    image: ghcr.io/x/api:1.0
    env: {{{env}}}
{HEALTH}"""


def test_dy405_a_url_naming_no_service() -> None:
    found = findings(_api("METRICS_URL: 'http://pc2-observability:9100'"), "DY405")
    assert len(found) == 1 and found[0].severity is Severity.WARNING
    assert "host pc2-observability, which is no service or machine" in found[0].message


def test_dy405_absent_for_services_outside_names_and_variables() -> None:
    assert findings(_api("CACHE: 'redis://store:6379/0'"), "DY405") == []
    assert findings(_api("LLM: 'https://api.openai.com/v1'"), "DY405") == []
    assert findings(_api("HOST: 'http://host.docker.internal:11434'"), "DY405") == []
    assert findings(_api("OBS: 'http://${OBS_HOST}:9100'"),
                    "DY405", environ={"OBS_HOST": "elsewhere"}) == []


# --- what DY401 must not judge: found on real compose projects (../shared/realworld) -------

@pytest.mark.parametrize(("key", "value"), [
    ("SITE_URL", "http://localhost:3000"),                       # Supabase: for browsers
    ("NEXTAUTH_URL", "http://localhost:6379"),                   # Langfuse: the public URL
    ("API_EXTERNAL_URL", "http://localhost:6379"),               # Supabase
    ("LANGFUSE_S3_BATCH_EXPORT_EXTERNAL_ENDPOINT", "http://localhost:6379"),
    ("API_SEARXNG_BASE_URL", "http://localhost:6379"),           # PUBLIC words only: see below
])
def test_dy401_quiet_for_urls_browsers_use(key: str, value: str) -> None:
    if key == "API_SEARXNG_BASE_URL":  # a client's BASE_URL is dialled: still reported
        text = BASE + f"services:\n  client:\n    image: ghcr.io/x/client:1.0\n" \
                      f"    env: {{{key}: \"{value}\"}}\n" + HEALTH + STORE
        assert len(findings(text, "DY401")) == 1
        return
    text = BASE + f"""\
services:
  api:
    image: ghcr.io/x/api:1.0
    env: {{{key}: "{value}"}}
""" + HEALTH + STORE
    assert findings(text, "DY401") == []


def test_dy401_quiet_for_the_services_own_settings() -> None:
    text = BASE + """\
services:
  search:
    image: searxng/searxng:2025.1.1
    env: {SEARXNG_BASE_URL: "http://localhost:8080/", SEARCH_HOST: 127.0.0.1}
""" + HEALTH + """\
  analytics:
    image: supabase/logflare:1.4.0
    env: {LOGFLARE_NODE_HOST: 127.0.0.1}
""" + HEALTH
    assert findings(text, "DY401") == []


@pytest.mark.parametrize("command", [
    '["etcd", "-listen-client-urls", "http://0.0.0.0:2379", "--data-dir", "/etcd"]',
    '"etcd -listen-client-urls http://0.0.0.0:2379 --data-dir /etcd"',
    '["server", "--bind=127.0.0.1:9000"]',
    '["server", "--listen", "127.0.0.1:9000"]',
])
def test_dy401_quiet_for_addresses_a_command_listens_on(command: str) -> None:
    text = BASE + f"""\
services:
  etcd:
    image: quay.io/coreos/etcd:v3.5.18
    command: {command}
""" + HEALTH
    assert findings(text, "DY401") == []


def test_dy401_still_reports_a_command_that_dials_loopback() -> None:
    text = BASE + """\
services:
  worker:
    image: ghcr.io/x/worker:1.0
    command: ["worker", "--broker", "redis://localhost:6379/0"]
""" + HEALTH + STORE
    assert "store:6379" in only(text, "DY401").fix


def test_dy401_quiet_for_a_published_host_port_other_than_the_containers() -> None:
    # Langfuse: minio publishes 9090 -> 9000; localhost:9090 is the host's (a browser's) side.
    text = BASE + """\
services:
  web:
    image: langfuse/langfuse:3
    env: {LANGFUSE_S3_MEDIA_UPLOAD_ENDPOINT: "http://localhost:9090"}
""" + HEALTH + """\
  minio:
    image: minio/minio:RELEASE.2025-01-20T14-49-07Z
    ports: {api: "9090:9000"}
""" + HEALTH
    assert findings(text, "DY401") == []


def test_dy401_quiet_for_a_backend_of_another_profile() -> None:
    text = BASE + """\
services:
  api:
    image: ghcr.io/x/api:1.0
    profiles: [qdrant]
    env: {MILVUS_URI: "http://127.0.0.1:19530"}
""" + HEALTH + """\
  milvus:
    image: milvusdb/milvus:v2.5.4
    profiles: [milvus]
    ports: {grpc: 19530}
""" + HEALTH
    assert findings(text, "DY401") == []


# --- DY406: a container's address ----------------------------------------------------------

def test_dy406_a_hard_coded_container_address() -> None:
    text = BASE + """\
services:
  api:
    image: ghcr.io/x/api:1.0
    env: {REDIS_HOST: 172.17.0.3, OTHER: "http://172.20.1.9:8000/v1"}
""" + HEALTH + STORE
    found = findings(text, "DY406")
    assert [f.where for f in found] == [found[0].where, found[1].where] and len(found) == 2
    assert_finding(found[0], "DY406", Severity.WARNING, "fleet.yaml:7:11", "api")
    assert "172.17.0.3" in found[0].message and "recreated" in found[0].message


@pytest.mark.parametrize("env", [
    '{LAN_NAS: 192.168.1.20, PUBLIC: "http://172.32.0.1", VERSION: "10.172.16.1.2"}',
    '{REDIS_HOST: "${REDIS_IP:-172.17.0.3}"}',
])
def test_dy406_quiet_for_other_addresses_and_variables(env: str) -> None:
    text = BASE + f"""\
services:
  api:
    image: ghcr.io/x/api:1.0
    env: {env}
""" + HEALTH
    assert findings(text, "DY406") == []


def test_dy406_quiet_for_a_machines_own_address() -> None:
    text = """\
fleet: demo
machines:
  a: {host: 172.20.0.10}
services:
  api:
    image: ghcr.io/x/api:1.0
    env: {UPSTREAM: "http://172.20.0.10:8000"}
""" + HEALTH
    assert findings(text, "DY406") == []


def test_dy402_a_machines_host_name_in_a_url_suggests_the_service() -> None:
    text = """\
fleet: demo
machines:
  start9: {host: 192.168.1.10}
  spark1: {host: spark1.local}
services:
  panel:
    image: ghcr.io/x/panel:1.0
    machine: start9
    env: {VLLM_URL: "http://spark1.local:8888/v1", DOCS: "https://spark1.local.example.com",
          FROM_ENV: "http://${SPARK1_HOST}:8888"}
""" + HEALTH + """\
  vllm:
    image: ghcr.io/x/vllm:1.0
    machine: spark1
    ports: {api: 8888}
""" + HEALTH
    found = findings(text, "DY402", environ={"SPARK1_HOST": "spark1.local"})
    assert [str(f.where) for f in found] == ["fleet.yaml:9:11"]
    assert found[0].message == (
        "service panel: VLLM_URL hard-codes spark1.local, the host name of machine spark1 "
        "where vllm answers: inside a container it may resolve IPv6 first and hang (`.local` "
        "names do)")
    assert found[0].fix == ("write `http://vllm:8888/v1`: render points vllm at machine "
                            "spark1's IPv4 address")

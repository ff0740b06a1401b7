"""`dockyard import`: compose -> fleet manifest, one mapping at a time (no Docker needed)."""

from __future__ import annotations

import contextlib
import io
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from dockyard import cli
from dockyard.errors import ManifestError
from dockyard.manifest.importer import (
    ComposeProject,
    ImportResult,
    dockerfile_base,
    import_compose,
    merge_compose,
    read_project,
)
from dockyard.manifest.interpolate import read_dotenv
from dockyard.manifest.load import loads

FIXTURES = Path(__file__).parents[1] / "fixtures" / "compose"
ENV = {"POSTGRES_PASSWORD": "pw"}


def imp(tmp_path: Path, compose: str, files: dict[str, str] | None = None,
        env: dict[str, str] | None = None, out_dir: Path | None = None) -> ImportResult:
    for rel, text in (files or {}).items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(compose))
    project = read_project([tmp_path / "compose.yaml"], environ=env or {})
    return import_compose(project, out_dir=out_dir or tmp_path)


def data(result: ImportResult) -> Any:
    """The manifest as plain data, after checking that dockyard loads it."""
    text = result.text()
    loads(text, environ={**ENV, "VLLM_API_KEY": "k"})
    return YAML(typ="safe").load(text)


def svc(result: ImportResult, name: str = "app") -> Any:
    return data(result)["services"][name]


def unmapped(result: ImportResult) -> set[str]:
    return {u.path for u in result.unmapped}


# -- merging ------------------------------------------------------------------------------------

def test_later_files_override_like_compose() -> None:
    base = {"services": {"a": {"image": "x:1", "command": ["a", "b"],
                               "environment": ["A=1", "B=2"], "ports": ["80:80"],
                               "volumes": ["data:/data", "./c:/c"]}}}
    over = {"services": {"a": {"image": "x:2", "command": ["c"], "environment": {"B": "3"},
                               "ports": ["443:443"], "volumes": ["other:/data"]},
                         "b": {"image": "y"}}}
    merged = merge_compose([base, over])["services"]
    assert merged["a"]["image"] == "x:2"
    assert merged["a"]["command"] == ["c"]
    assert merged["a"]["environment"] == {"A": "1", "B": "3"}
    assert merged["a"]["ports"] == ["80:80", "443:443"]
    assert merged["a"]["volumes"] == ["other:/data", "./c:/c"]
    assert merged["b"] == {"image": "y"}


def test_two_files_on_the_command_line_are_merged(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  app: {image: 'x:1', restart: always}\n")
    (tmp_path / "over.yaml").write_text("services:\n  app: {image: 'x:2'}\n")
    project = read_project([tmp_path / "compose.yaml", tmp_path / "over.yaml"], environ={})
    app = data(import_compose(project, out_dir=tmp_path))["services"]["app"]
    assert (app["image"], app["restart"]) == ("x:2", "always")


# -- ports --------------------------------------------------------------------------------------

def test_every_short_and_long_port_form(tmp_path: Path) -> None:
    result = imp(tmp_path, """
        services:
          app:
            image: x:1
            ports:
              - 80
              - "8080:8081"
              - "127.0.0.1:9000:9001"
              - "5004:5004/udp"
              - "[::1]:7000:7001"
              - "8000-8001:9000-9001"
              - target: 3000
                published: "3001"
                host_ip: 127.0.0.1
                name: web
            expose: ["6000", "3000"]
        """)
    ports = svc(result)["ports"]
    assert ports["p80"] == "0.0.0.0:80:80"
    assert ports["p8081"] == "0.0.0.0:8080:8081"
    assert ports["p9001"] == "127.0.0.1:9000:9001"
    assert ports["p5004-udp"] == {"port": 5004, "host": 5004, "bind": "0.0.0.0",
                                  "protocol": "udp"}
    assert ports["p7001"] == {"port": 7001, "host": 7000, "bind": "::1"}
    assert (ports["p9000"], ports["p9001-2"]) == ("0.0.0.0:8000:9000", "0.0.0.0:8001:9001")
    assert ports["web"] == "127.0.0.1:3001:3000"
    assert ports["p6000"] == {"port": 6000, "publish": False}
    assert "p3000" not in ports  # exposed and published: published wins
    # compose publishes a bare container port on a random host port; dockyard cannot
    assert "services.app.ports[0]" in unmapped(result)


def test_port_from_a_variable_is_interpolated(tmp_path: Path) -> None:
    result = imp(tmp_path, """
        services:
          app: {image: "x:1", ports: ["${PORT:-8000}:80"]}
        """, env={"PORT": "18000"})
    assert svc(result)["ports"] == {"p80": "0.0.0.0:18000:80"}


def test_unreadable_port_is_reported_not_guessed(tmp_path: Path) -> None:
    result = imp(tmp_path, """
        services:
          app: {image: "x:1", ports: ["80:80/sctp", "a:b"]}
        """)
    assert "ports" not in svc(result)
    assert {"services.app.ports[0]", "services.app.ports[1]"} <= unmapped(result)


# -- health checks ------------------------------------------------------------------------------

@pytest.mark.parametrize(("test", "expected"), [
    # exec-form stays exec-form: no /bin/sh needed, and `localhost` stays localhost (IPv6 too)
    (["CMD", "curl", "-f", "http://localhost:8000/health"],
     {"cmd": ["curl", "-f", "http://localhost:8000/health"]}),
    (["CMD", "wget", "-qO-", "http://localhost:82/ready"],
     {"cmd": ["wget", "-qO-", "http://localhost:82/ready"]}),
    # shell-form that only fetches a local URL: an http check (rendered shell-form again)
    (["CMD-SHELL", "curl -fsS http://localhost:9/v1/models || exit 1"],
     {"http": "/v1/models", "port": 9}),
    ("wget -q --spider http://localhost:81/ok", {"http": "/ok", "port": 81}),
    # no --fail: curl succeeds on a 500, so it is not an HTTP health check
    ("curl http://localhost:8000/health", {"cmd": "curl http://localhost:8000/health"}),
    (["CMD-SHELL", "curl -f http://localhost:8000/health && echo ok"],
     {"cmd": "curl -f http://localhost:8000/health && echo ok"}),
    (["CMD", "curl", "-f", "http://db:5432/"], {"cmd": ["curl", "-f", "http://db:5432/"]}),
    (["CMD", "redis-cli", "ping"], {"cmd": ["redis-cli", "ping"]}),
    (["CMD-SHELL", "pg_isready -U $${USER}"], {"cmd": "pg_isready -U $${USER}"}),
])
def test_health_checks(tmp_path: Path, test: Any, expected: dict[str, Any]) -> None:
    result = imp(tmp_path, "services:\n  app: {image: 'x:1', ports: ['80'], healthcheck: "
                 "{test: TEST, retries: 4, start_period: 1m}}\n".replace("TEST", repr(test)))
    health = svc(result)["health"]
    assert {k: health[k] for k in expected} == expected
    assert (health["interval"], health["timeout"]) == ("30s", "30s")  # Docker's defaults
    assert (health["retries"], health["start_period"]) == (4, "1m")


def test_disabled_health_check_switches_the_images_off(tmp_path: Path) -> None:
    result = imp(tmp_path, """
        services:
          app: {image: "x:1", healthcheck: {disable: true}}
          other: {image: "x:1", healthcheck: {test: [NONE]}}
          kept: {image: "x:1", healthcheck: {disable: false}}
          toggled:
            image: x:1
            healthcheck: {test: [CMD, "true"], disable: "${OFF:-true}"}
        """)
    for name in ("app", "other", "toggled"):
        assert svc(result, name)["image_health"] is False
        assert "health" not in svc(result, name)
    assert "image_health" not in svc(result, "kept")  # `disable: false` changes nothing
    assert unmapped(result) == {"services.toggled.healthcheck.test"}  # the test it switched off


def test_health_check_form_survives_render(tmp_path: Path) -> None:
    """Exec-form stays exec-form in the rendered compose file; CMD-SHELL only from shell-form."""
    from dockyard.plan import plan
    from dockyard.render.compose import compose_service

    result = imp(tmp_path, """
        services:
          exec: {image: "x:1", healthcheck: {test: [CMD, curl, -f, "http://localhost:8/h"]}}
          shell: {image: "x:1", healthcheck: {test: "curl -f http://localhost:8/h"}}
          off: {image: "x:1", healthcheck: {disable: true}}
        """)
    fleet = loads(result.text(), environ={})
    the_plan = plan(fleet)
    test = {n: compose_service(fleet, the_plan, the_plan.services[n])["healthcheck"]
            for n in ("exec", "shell", "off")}
    assert test["exec"]["test"] == ["CMD", "curl", "-f", "http://localhost:8/h"]
    assert test["shell"]["test"][0] == "CMD-SHELL"
    assert test["off"] == {"disable": True}


# -- dependencies, volumes, environment ----------------------------------------------------------

def test_depends_on_keeps_compose_meaning(tmp_path: Path) -> None:
    result = imp(tmp_path, """
        services:
          db: {image: "x:1", healthcheck: {test: [CMD, "true"]}}
          job: {image: "x:1"}
          app:
            image: x:1
            depends_on:
              db: {condition: service_healthy, restart: true}
              job: {condition: service_completed_successfully}
          list: {image: "x:1", depends_on: [db]}
        """)
    # restart: true is carried over: `dockyard upgrade` recreates app when it changes db
    assert svc(result)["depends_on"] == {"db": {"condition": "healthy", "restart": True},
                                         "job": {"condition": "completed"}}
    # a list means "started" in compose; dockyard's own default is "healthy"
    assert svc(result, "list")["depends_on"] == {"db": {"condition": "started"}}
    assert unmapped(result) == set()


def test_optional_and_one_shot_dependencies_render_like_compose(tmp_path: Path) -> None:
    """A migration that must finish first, a dependency that may not run (its profile)."""
    from dockyard.plan import plan
    from dockyard.render.compose import compose_service

    result = imp(tmp_path, """
        services:
          migrate: {image: "x:1", restart: "no"}
          db: {image: "x:1", profiles: [postgres], healthcheck: {test: [CMD, "true"]}}
          api:
            image: x:1
            depends_on:
              migrate: {condition: service_completed_successfully}
              db: {condition: service_healthy, required: false}
        """)
    assert svc(result, "api")["depends_on"] == {
        "migrate": {"condition": "completed"},
        "db": {"condition": "healthy", "required": False}}
    fleet = loads(result.text(), environ={})
    the_plan = plan(fleet)
    assert compose_service(fleet, the_plan, the_plan.services["api"])["depends_on"] == {
        "db": {"condition": "service_healthy", "required": False},
        "migrate": {"condition": "service_completed_successfully"}}


def test_volumes_binds_are_relative_to_the_new_manifest(tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    out.mkdir()
    result = imp(tmp_path, """
        services:
          app:
            image: x:1
            volumes:
              - data:/data
              - ./conf:/conf:ro
              - /abs:/abs
              - /anonymous
              - {type: bind, source: ./logs, target: /logs, read_only: true}
              - {type: tmpfs, target: /tmp}
        """, out_dir=out)
    assert svc(result)["volumes"] == ["data:/data", "../conf:/conf:ro", "/abs:/abs",
                                      "/anonymous", "../logs:/logs:ro"]
    assert "services.app.volumes[5]" in unmapped(result)


def test_environment_forms_and_env_file(tmp_path: Path) -> None:
    result = imp(tmp_path, """
        services:
          app:
            image: x:1
            env_file: [app.env, {path: optional.env, required: false}]
            environment:
              - A=from-environment
              - PASSTHROUGH
              - SECRET=${TOKEN:?set TOKEN}
          dict:
            image: x:1
            environment: {N: 1, B: true, E: null}
        """, files={"app.env": "A=from-file\nFILE_ONLY='quoted'\nAPI_KEY=sk-in-the-file\n"})
    app = YAML(typ="safe").load(result.text())["services"]["app"]
    assert app["env"] == {"A": "from-environment", "PASSTHROUGH": "${PASSTHROUGH}",
                          "SECRET": "${TOKEN:?set TOKEN}"}
    # The env files stay files compose reads: none of their values is copied into fleet.yaml.
    assert app["env_file"] == ["./app.env", {"path": "./optional.env", "required": False}]
    assert "sk-in-the-file" not in result.text() and "from-file" not in result.text()
    dict_env = YAML(typ="safe").load(result.text())["services"]["dict"]["env"]
    assert dict_env == {"N": "1", "B": "true", "E": "${E}"}


def test_missing_env_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="does not exist"):
        imp(tmp_path, "services:\n  app: {image: 'x:1', env_file: nope.env}\n")


# -- resources, restart, the rest ----------------------------------------------------------------

def test_resources_and_gpus(tmp_path: Path) -> None:
    result = imp(tmp_path, """
        services:
          app:
            image: x:1
            deploy:
              replicas: 2
              resources:
                limits: {cpus: "2.5", memory: 2gb}
                reservations:
                  memory: 1g
                  devices: [{driver: nvidia, count: all, capabilities: [gpu]}]
          legacy: {image: "x:1", cpus: 1, mem_limit: 512m}
          pinned:
            image: x:1
            deploy:
              resources:
                reservations:
                  devices: [{driver: nvidia, device_ids: ["1"], capabilities: [gpu]}]
        """)
    app = svc(result)
    # compose reads "2gb" as binary, like Docker; dockyard would read GB as decimal
    assert (app["cpus"], app["memory"]) == (2.5, "2GiB")
    assert app["gpu"] == {"count": "all"}  # every GPU, not device 0
    assert svc(result, "legacy")["memory"] == "512MiB"
    assert svc(result, "pinned")["gpu"] == {"device": 1}
    assert unmapped(result) == {"services.app.deploy.replicas",
                                "services.app.deploy.resources.reservations.memory"}


def test_all_gpus_stay_all_gpus_when_rendered(tmp_path: Path) -> None:
    from dockyard.plan import plan
    from dockyard.render.compose import compose_service

    result = imp(tmp_path, """
        services:
          app:
            image: x:1
            deploy:
              resources:
                reservations:
                  devices: [{driver: nvidia, count: all, capabilities: [gpu]}]
        """)
    fleet = loads(result.text(), environ={})
    the_plan = plan(fleet)
    out = compose_service(fleet, the_plan, the_plan.services["app"])
    assert out["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert "CUDA_VISIBLE_DEVICES" not in out.get("environment", {})


@pytest.mark.parametrize(("restart", "expected", "noted"), [
    (None, "no", False), ("always", "always", False), ("on-failure:3", "on-failure", True),
    ("unless-stopped", "unless-stopped", False)])
def test_restart(tmp_path: Path, restart: str | None, expected: str, noted: bool) -> None:
    line = f", restart: '{restart}'" if restart else ""
    result = imp(tmp_path, f"services:\n  app: {{image: 'x:1'{line}}}\n")
    assert svc(result)["restart"] == expected
    assert ("services.app.restart" in unmapped(result)) == noted


def test_what_cannot_be_mapped_is_listed_and_written_as_comments(tmp_path: Path) -> None:
    result = imp(tmp_path, """
        x-common: &common {restart: always}
        services:
          app:
            <<: *common
            image: x:1
            container_name: app
            networks: [back]
            labels: {a: b}
            shm_size: 1g
        networks: {back: {}}
        secrets: {key: {file: key.pem}}
        """)
    assert unmapped(result) == {"services.app.container_name", "services.app.labels",
                                "secrets"}
    text = result.text()
    assert "# not mapped: services.app.labels: dockyard sets its own labels" in text
    assert "# not mapped: secrets:" in text
    assert svc(result)["restart"] == "always"  # the merge key was followed


def test_uppercase_service_names_are_renamed_with_their_references(tmp_path: Path) -> None:
    result = imp(tmp_path, """
        services:
          Web_API: {image: "x:1"}
          worker: {image: "x:1", depends_on: [Web_API]}
        """)
    services = data(result)["services"]
    assert services["worker"]["depends_on"] == {"web_api": {"condition": "started"}}
    assert "services.Web_API" in unmapped(result)


# -- builds -------------------------------------------------------------------------------------

def test_built_services_keep_their_dockerfile_on_a_family_per_base(tmp_path: Path) -> None:
    result = imp(tmp_path, """
        services:
          api: {build: ./api, image: "registry/api:1"}
          worker: {build: {context: ./api, dockerfile: worker.Dockerfile, target: prod}}
        """, files={"api/Dockerfile": "FROM python:3.12-slim AS base\nCMD [\"x\"]\n",
                    "api/worker.Dockerfile": "ARG BASE=node:20\nFROM --platform=amd64 ${BASE}\n"})
    doc = data(result)
    assert doc["families"] == {"python-3.12-slim": {"from": "python:3.12-slim"},
                               "node-20": {"from": "node:20"}}
    assert doc["services"]["api"] == {"family": "python-3.12-slim", "build": "./api",
                                      "dockerfile": "Dockerfile", "restart": "no"}
    assert doc["services"]["worker"]["dockerfile"] == "worker.Dockerfile"
    assert {"services.api.image", "services.worker.build.target"} <= unmapped(result)


def test_missing_dockerfile_is_a_note_not_an_abort(tmp_path: Path) -> None:
    """A profiled or optional build whose Dockerfile is not there still imports."""
    result = imp(tmp_path, """
        services:
          app: {build: ./nowhere, profiles: [extra]}
          web: {image: "x:1"}
        """)
    assert svc(result) == {"family": "debian-bookworm-slim", "build": "./nowhere",
                           "dockerfile": "Dockerfile", "profiles": ["extra"], "restart": "no"}
    notes = {u.path: u.reason for u in result.unmapped}
    assert "no Dockerfile at" in notes["services.app.build"]


def test_build_from_git_is_reported(tmp_path: Path) -> None:
    result = imp(tmp_path, "services:\n  app: {build: 'https://github.com/x/y.git', "
                 "image: 'x/y:1'}\n")
    assert svc(result)["image"] == "x/y:1"
    assert "services.app.build" in unmapped(result)


@pytest.mark.parametrize(("text", "base"), [
    ("FROM python:3.11-slim\n", "python:3.11-slim"),
    ("# comment\nARG V=3.12\nFROM python:${V}-slim AS build\nFROM debian\n", "python:3.12-slim"),
    ("FROM \\\n  nvcr.io/nvidia/pytorch:24.10-py3\n", "nvcr.io/nvidia/pytorch:24.10-py3"),
    ("FROM scratch\n", ""), ("ARG B\nFROM $B\n", ""), ("", ""),
])
def test_dockerfile_base(text: str, base: str) -> None:
    assert dockerfile_base(text) == base


def test_dockerfile_base_takes_the_builds_args() -> None:
    assert dockerfile_base("ARG V=3.12\nFROM python:${V}-slim\n", {"V": "3.13"}) \
        == "python:3.13-slim"


def test_bad_compose_yaml_is_located(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        imp(tmp_path, "services:\n  app: {image: [\n")
    assert str(info.value).startswith("compose.yaml:")


# -- include, .env, networks, container settings ---------------------------------------------

def test_include_merges_another_project_as_compose_does(tmp_path: Path) -> None:
    """RAGFlow's layout: the services of an included file join the project; its relative
    paths stay relative to its own folder, and its own .env is named."""
    result = imp(tmp_path, """
        include:
          - base/compose.yaml
          - path: [extra/a.yaml, extra/b.yaml]
        services:
          api: {image: "x:1", depends_on: [db]}
        """, files={
            "base/compose.yaml": "services:\n  db:\n    image: 'postgres:16'\n"
                                 "    volumes: ['./data:/var/lib/postgresql/data']\n"
                                 "    env_file: [db.env]\n    build: ./img\n",
            "base/db.env": "POSTGRES_DB=app\n",
            "base/.env": "ONLY_HERE=1\n",
            "base/img/Dockerfile": "FROM postgres:16\n",
            "extra/a.yaml": "services:\n  cache: {image: 'redis:7'}\n",
            "extra/b.yaml": "services:\n  cache: {command: [redis-server, --save, '']}\n",
        })
    services = data(result)["services"]
    assert set(services) == {"api", "db", "cache"}
    assert services["db"]["volumes"] == ["./base/data:/var/lib/postgresql/data"]
    assert services["db"]["env_file"] == ["./base/db.env"]
    assert services["db"]["build"] == "./base/img"
    assert services["cache"] == {"image": "redis:7", "command": ["redis-server", "--save", ""],
                                 "restart": "no"}
    assert "include[0]" in unmapped(result)  # base/.env: compose reads it for that file


def test_include_conflicts_and_cycles_are_located_errors(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"services\.db is defined in compose.yaml and in a "
                                            "file it includes"):
        imp(tmp_path, "include: [other.yaml]\nservices:\n  db: {image: 'x:1'}\n",
            files={"other.yaml": "services:\n  db: {image: 'x:2'}\n"})
    with pytest.raises(ManifestError, match="includes itself"):
        imp(tmp_path, "include: [loop.yaml]\nservices:\n  a: {image: 'x:1'}\n",
            files={"loop.yaml": "include: [compose.yaml]\n"})


def test_dotenv_is_read_as_compose_reads_it(tmp_path: Path) -> None:
    """Each expected value is what `docker compose config` (v2.40) shows for the same line."""
    (tmp_path / ".env").write_text(textwrap.dedent("""\
        A=x
        B=${A}-y
        C=${UNSET:-dflt} # a comment
        D="quoted # not comment" # comment
        E='single ${A} $$'
        F=value#nospace
        G="esc\\nline\\t\\"q\\" \\$A"
        I= spaced value
        J=
        export K=exp
        L="multi
        line"
        M=$A$$
        N=a\\nb
        O=${TAG:-1.27}
        """))
    assert read_dotenv(tmp_path / ".env") == {
        "A": "x", "B": "x-y", "C": "dflt", "D": "quoted # not comment", "E": "single ${A} $$",
        "F": "value#nospace", "G": 'esc\nline\t"q" $A', "I": "spaced value", "J": "",
        "K": "exp", "L": "multi\nline", "M": "x$", "N": "a\\nb", "O": "1.27"}
    # the process environment wins, also inside the file's own references
    shell = read_dotenv(tmp_path / ".env", {"A": "shell", "TAG": "2.0"})
    assert (shell["B"], shell["O"]) == ("shell-y", "2.0")


def test_compose_profiles_select_profiles_and_stay_out_of_containers(tmp_path: Path) -> None:
    result = imp(tmp_path, """
        services:
          es: {image: "x:1", profiles: [elasticsearch], env_file: .env}
          api: {image: "x:1", env_file: .env, environment: [COMPOSE_PROFILES]}
        """, files={".env": "DOC_ENGINE=elasticsearch\n"
                            "COMPOSE_PROFILES=${DOC_ENGINE},cpu # the doc engine\nTAG=1\n"})
    assert result.profiles == ["elasticsearch", "cpu"]
    # The file is read by compose, all but the line that is compose's own.
    assert svc(result, "es")["env_file"] == [{"path": "./.env", "skip": ["COMPOSE_PROFILES"]}]
    assert "env" not in svc(result, "es")
    notes = {u.path: u.reason for u in result.unmapped}
    assert "--profile elasticsearch --profile cpu" in notes["COMPOSE_PROFILES"]
    assert "services.es.environment.COMPOSE_PROFILES" in notes
    # asked for by name, the container gets it, as in compose
    assert svc(result, "api")["env"]["COMPOSE_PROFILES"] == "${COMPOSE_PROFILES}"
    assert svc(result, "api")["env_file"] == ["./.env"]


def test_networks_keep_their_isolation(tmp_path: Path) -> None:
    """Dify's sandbox: on an internal network with the proxy, not on the flat default one."""
    from dockyard.plan import plan
    from dockyard.render.compose import compose_project

    result = imp(tmp_path, """
        services:
          sandbox: {image: "x:1", networks: [ssrf_proxy_network]}
          proxy:
            image: x:1
            networks:
              ssrf_proxy_network: {aliases: [ssrf-proxy]}
              default:
          api: {image: "x:1"}
        networks:
          ssrf_proxy_network: {driver: bridge, internal: true}
          default: {name: dify-net}
        """)
    doc = data(result)
    assert doc["networks"] == {"ssrf_proxy_network": {"driver": "bridge", "internal": True},
                               "default": {"name": "dify-net"}}
    assert doc["services"]["sandbox"]["networks"] == ["ssrf_proxy_network"]
    assert doc["services"]["proxy"]["networks"] == {
        "ssrf_proxy_network": {"aliases": ["ssrf-proxy"]}, "default": {}}
    assert "networks" not in doc["services"]["api"]
    assert unmapped(result) == set()
    fleet = loads(result.text(), environ={})
    rendered = compose_project(fleet, plan(fleet), "local")
    assert rendered["networks"] == {"default": {"name": "dify-net"},
                                    "ssrf_proxy_network": {"driver": "bridge", "internal": True}}
    assert rendered["services"]["sandbox"]["networks"] == ["ssrf_proxy_network"]
    assert rendered["services"]["proxy"]["networks"] == {
        "ssrf_proxy_network": {"aliases": ["ssrf-proxy"]}, "default": None}
    assert "networks" not in rendered["services"]["api"]


def test_a_service_on_an_undeclared_network_is_a_located_error() -> None:
    with pytest.raises(ManifestError, match=r"unknown network `bakc`.*did you mean `back`"):
        loads("fleet: f\nmachines: {local: {}}\nnetworks: {back: {internal: true}}\n"
              "services:\n  a: {image: 'x:1', networks: [bakc]}\n")


def test_container_names_that_others_dial_stay_network_aliases(tmp_path: Path) -> None:
    """The n8n kit's `ollama` (container_name) and a hostname other services dial."""
    result = imp(tmp_path, """
        services:
          ollama-cpu: {image: "x:1", container_name: ollama, networks: [demo]}
          tei: {image: "x:1", hostname: tei-embed}
          n8n: {image: "x:1", environment: {OLLAMA_HOST: "ollama:11434"}, networks: [demo]}
        networks:
          demo:
        """)
    services = data(result)["services"]
    assert services["ollama-cpu"]["networks"] == {"demo": {"aliases": ["ollama"]}}
    assert services["tei"]["hostname"] == "tei-embed"
    assert services["tei"]["networks"] == {"default": {"aliases": ["tei-embed"]}}
    assert "ollama stays a name" in {u.path: u.reason for u in result.unmapped}[
        "services.ollama-cpu.container_name"]


def test_container_settings_are_kept_and_rendered(tmp_path: Path) -> None:
    from dockyard.plan import plan
    from dockyard.render.compose import compose_service

    result = imp(tmp_path, """
        services:
          app:
            image: x:1
            ulimits: {nofile: {soft: 65535, hard: 65535}, memlock: -1}
            shm_size: 1g
            tmpfs: /run
            cap_add: [SYS_ADMIN]
            cap_drop: [ALL]
            security_opt: ["seccomp:unconfined", "seccomp:unconfined"]
            privileged: true
            devices: [/dev/kfd, "/dev/dri:/dev/dri:rwm"]
            init: true
            working_dir: /app
            extra_hosts: ["host.docker.internal:host-gateway", "v6=::1"]
            tty: true
            stdin_open: true
            ports: [":8080:80"]
        """)
    app = svc(result)
    assert app["ulimits"] == {"nofile": {"soft": 65535, "hard": 65535}, "memlock": -1}
    assert (app["shm_size"], app["tmpfs"], app["devices"]) == (
        "1GiB", ["/run"], ["/dev/kfd", "/dev/dri:/dev/dri:rwm"])
    assert app["security_opt"] == ["seccomp:unconfined"]  # compose refuses a repeated one
    assert app["extra_hosts"] == {"host.docker.internal": "host-gateway", "v6": "::1"}
    assert app["ports"] == {"p80": "0.0.0.0:8080:80"}  # an empty host IP: every interface
    assert unmapped(result) == set()
    fleet = loads(result.text(), environ={})
    the_plan = plan(fleet)
    out = compose_service(fleet, the_plan, the_plan.services["app"])
    assert {k: out[k] for k in ("cap_add", "cap_drop", "privileged", "init", "working_dir",
                                "tty", "stdin_open", "tmpfs", "shm_size")} == {
        "cap_add": ["SYS_ADMIN"], "cap_drop": ["ALL"], "privileged": True, "init": True,
        "working_dir": "/app", "tty": True, "stdin_open": True, "tmpfs": ["/run"],
        "shm_size": str(1024**3)}
    assert out["extra_hosts"] == ["host.docker.internal=host-gateway", "v6=::1"]
    assert out["ulimits"] == {"memlock": -1, "nofile": {"soft": 65535, "hard": 65535}}
    assert out["ports"] == ["0.0.0.0:8080:80"]


def test_images_dockyard_builds_are_named_under_the_fleet(tmp_path: Path) -> None:
    """A project in a docker/ folder is not the fleet `docker`: docker/api:current would be
    pulled from Docker Hub's docker organisation. The rendered file keeps `build:`."""
    from dockyard.plan import plan
    from dockyard.render.compose import compose_service

    folder = tmp_path / "dify" / "docker"
    folder.mkdir(parents=True)
    result = imp(folder, """
        services:
          api:
            image: langgenius/dify-api:1
            build: {context: ./api, args: {UID: 1000, MODE: "${MODE}", HOME: null}}
        """, files={"api/Dockerfile": "FROM python:3.12-slim\n"}, env={"HOME": "/root"})
    doc = data(result)
    assert doc["fleet"] == "dify"
    assert doc["services"]["api"]["build_args"] == {"UID": "1000", "MODE": "${MODE}",
                                                    "HOME": "${HOME}"}
    assert "name" in unmapped(result)
    fleet = loads(result.text(), environ={"MODE": "prod", "HOME": "/root"},
                  path=folder / "fleet.yaml")
    the_plan = plan(fleet)
    out = compose_service(fleet, the_plan, the_plan.services["api"], root="../..")
    assert out["image"] == "dify/api:current"
    assert out["build"] == {"context": "../../api", "dockerfile": "Dockerfile",
                            "args": {"HOME": "/root", "MODE": "prod", "UID": "1000"}}


# -- the fixture projects and the command --------------------------------------------------------

@pytest.mark.parametrize(("name", "files"), [
    ("llm-stack", ["compose.yaml"]), ("speech", ["compose.yaml", "compose.gpu.yaml"]),
    ("api-db", ["compose.yaml"])])
def test_fixture_projects_import_to_loadable_manifests(name: str, files: list[str]) -> None:
    folder = FIXTURES / name
    result = import_compose(read_project([folder / f for f in files], environ=ENV),
                            out_dir=folder)
    fleet = loads(result.text(), environ={**ENV, "VLLM_API_KEY": "k"}, path=folder / "x.yaml")
    assert set(fleet.spec.services) == set(YAML(typ="safe").load(
        (folder / "compose.yaml").read_text())["services"])


def run_cli(*args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    argv, sys.argv = sys.argv, ["dockyard", *args]
    code: Any = 0
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            cli.main()
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.argv = argv
    return int(code or 0), stdout.getvalue(), stderr.getvalue()


def test_import_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web: {image: 'nginx:1.27', ports: ['8080:80'], container_name: w}\n")
    target = tmp_path / "fleet.yaml"
    code, stdout, _ = run_cli("import", str(tmp_path / "compose.yaml"), "--fleet", "site",
                              "--machine", "box")
    assert code == 0
    assert "not mapped: services.web.container_name" in stdout
    doc = YAML(typ="safe").load(target.read_text())
    assert (doc["fleet"], list(doc["machines"])) == ("site", ["box"])
    code, _, stderr = run_cli("import", str(tmp_path / "compose.yaml"))
    assert code == 2 and "already exists" in stderr and "--force" in stderr
    code, stdout, stderr = run_cli("import", str(tmp_path / "compose.yaml"), "-o", "-")
    assert code == 0 and stdout.startswith("# imported by `dockyard import`")
    assert "not mapped: services.web.container_name" in stderr


@settings(max_examples=50, suppress_health_check=list(HealthCheck))
@example(words=["0?"], value="", bind="::1")  # found by hypothesis: `[0?]` did not read back
@given(words=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=4),
       value=st.text(max_size=20), bind=st.sampled_from(["::1", "0.0.0.0", "fe80::1"]))
def test_any_text_survives_the_written_manifest(words: list[str], value: str, bind: str) -> None:
    """Commands, env values and bind addresses read back exactly as compose had them."""
    project = ComposeProject(data={"services": {"app": {
        "image": "x:1", "command": words, "environment": {"V": value},
        "ports": [{"target": 80, "published": 8080, "host_ip": bind}]}}},
        directory=Path("/srv/p"), files=[Path("/srv/p/compose.yaml")])
    doc = YAML(typ="safe").load(import_compose(project, out_dir=Path("/srv/p")).text())
    app = doc["services"]["app"]
    assert app["command"] == words
    assert app["env"]["V"] == value
    assert app["ports"]["p80"]["bind"] == bind if isinstance(app["ports"]["p80"], dict) \
        else app["ports"]["p80"] == f"{bind}:8080:80"


def test_a_dotenv_left_behind_is_reported(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    compose = "services:\n  app: {image: 'x:1', environment: {A: '${A}'}}\n"
    beside = imp(tmp_path, compose, files={".env": "A=1\n"})
    assert ".env" not in unmapped(beside)
    elsewhere = imp(tmp_path, compose, out_dir=tmp_path / "deploy")
    assert ".env" in unmapped(elsewhere)


_junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=12),
              st.sampled_from(["8080:80", "a:b:c:d", "${X:?}", "./rel:/x", "CMD", "NONE",
                               "http://localhost:1/", "service_healthy", "all", "1g"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(
                                ["test", "target", "published", "source", "type", "condition",
                                 "devices", "resources", "limits", "reservations", "count",
                                 "device_ids", "capabilities", "path", "context", "x"]),
                                inner, max_size=3)),
    max_leaves=8)
_keys = st.sampled_from(["image", "build", "command", "entrypoint", "ports", "expose",
                         "healthcheck", "depends_on", "volumes", "environment", "env_file",
                         "profiles", "deploy", "restart", "user", "networks", "cpus",
                         "mem_limit", "gpus", "container_name", "hostname", "ulimits",
                         "extra_hosts", "tmpfs", "devices", "shm_size", "init", "cap_add"])


@settings(max_examples=60, suppress_health_check=list(HealthCheck))
@given(services=st.dictionaries(st.sampled_from(["a", "b", "Web"]),
                                st.dictionaries(_keys, _junk, max_size=5), min_size=1,
                                max_size=3),
       top=st.dictionaries(st.sampled_from(["volumes", "networks", "secrets", "name"]), _junk,
                           max_size=2))
def test_junk_compose_is_a_located_error_or_a_manifest(services: dict[str, Any],
                                                       top: dict[str, Any]) -> None:
    project = ComposeProject(data={**top, "services": services}, directory=Path("/nowhere"),
                             files=[Path("/nowhere/compose.yaml")])
    try:
        result = import_compose(project, out_dir=Path("/nowhere"))
    except ManifestError as exc:
        assert str(exc).startswith("compose.yaml") or "services." in str(exc), str(exc)
        return
    assert isinstance(YAML(typ="safe").load(result.text()), dict)


def test_nvidia_runtime_becomes_a_gpu_request(tmp_path: Path) -> None:
    result = imp(tmp_path, "services:\n  app: {image: 'x:1', runtime: nvidia}\n")
    assert svc(result)["gpu"] == {"count": 1}
    assert "services.app.runtime" in unmapped(result)

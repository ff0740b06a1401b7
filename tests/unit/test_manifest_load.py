"""Good manifests: what loads, and what it loads as."""

from __future__ import annotations

from pathlib import Path

import pytest

import dockyard
from dockyard.errors import InterpolationError, Location
from dockyard.manifest.interpolate import interpolate, read_dotenv
from dockyard.manifest.load import Fleet, find_manifest, load, loads
from dockyard.manifest.models import PortSpec, ServiceSpec

EXAMPLE = Path(dockyard.__file__).parent / "examples" / "quickstart" / "fleet.yaml"

BASE = """\
fleet: demo
machines:
  local: {}
"""


def service(body: str, environ: dict[str, str] | None = None) -> ServiceSpec:
    """Load a manifest whose one service `api` has `body` (indented 4 spaces)."""
    fleet = loads(BASE + "services:\n  api:\n" + body, environ=environ or {})
    return fleet.spec.services["api"]


def env_of(value: str, environ: dict[str, str]) -> str:
    """What `X: <value>` in a service's env becomes under `environ`."""
    return service(f"    image: nginx\n    env:\n      X: {value}\n", environ).env["X"]


# --- the bundled example ---------------------------------------------------------------------

def test_bundled_example_loads() -> None:
    fleet = load(EXAMPLE, environ={})
    spec = fleet.spec
    assert spec.fleet == "quickstart"
    assert list(spec.machines) == ["local"]
    assert spec.machines["local"].memory == 4 * 2**30
    assert spec.machines["local"].cpus == 2
    assert list(spec.families) == ["base-python", "redis", "web", "embed"]
    assert spec.families["web"].from_ == "base-python"
    assert spec.families["embed"].env["OMP_NUM_THREADS"] == "1"
    assert list(spec.services) == ["store", "embedder", "gateway"]
    gateway = spec.services["gateway"]
    assert gateway.family == "web"
    assert gateway.build == "services/gateway"
    assert list(gateway.depends_on) == ["store", "embedder"]
    assert all(dep.condition == "healthy" for dep in gateway.depends_on.values())
    assert gateway.ports["http"].host_port == 8080
    assert gateway.health is not None
    assert gateway.health.http == "/health"
    assert gateway.memory == 256 * 2**20
    store = spec.services["store"]
    assert store.health is not None
    assert store.health.cmd == ["redis-cli", "ping"]
    assert store.health.deadline == 25.0
    embedder = spec.services["embedder"]
    assert embedder.ports["http"].publish is False
    assert embedder.health is not None
    assert embedder.health.start_period == 60.0
    assert fleet.path == EXAMPLE
    assert fleet.root == EXAMPLE.parent
    assert (fleet.root / gateway.build / "app.py").is_file()


def test_bundled_example_takes_its_port_from_the_environment() -> None:
    fleet = load(EXAMPLE, environ={"GATEWAY_PORT": "18080"})
    http = fleet.spec.services["gateway"].ports["http"]
    assert (http.host, http.port, http.bind) == (18080, 8080, "127.0.0.1")


def test_find_manifest_walks_up(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(BASE)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_manifest(deep) == tmp_path / "fleet.yaml"
    assert find_manifest(tmp_path / "a") == tmp_path / "fleet.yaml"


# --- Fleet.where -----------------------------------------------------------------------------

WHERE = BASE + """\
services:
  api:
    image: nginx
    ports:
      http: 8000
    volumes:
      - data:/data
      - ./conf:/conf
    depends_on: [db]
  db: {image: postgres}
"""


def test_where_points_at_keys_and_list_items() -> None:
    fleet = loads(WHERE, environ={})
    assert fleet.where("machines") == Location("fleet.yaml", 2, 1)
    assert fleet.where("machines", "local") == Location("fleet.yaml", 3, 3)
    assert fleet.where("services", "api") == Location("fleet.yaml", 5, 3)
    assert fleet.where("services", "api", "ports", "http") == Location("fleet.yaml", 8, 7)
    assert fleet.where("services", "api", "volumes", 1) == Location("fleet.yaml", 11, 9)
    assert fleet.where("services", "api", "depends_on", 0) == Location("fleet.yaml", 12, 18)
    assert fleet.where("services", "db", "image") == Location("fleet.yaml", 13, 8)
    assert str(fleet.where("services", "api", "image")) == "fleet.yaml:6:5"


def test_where_falls_back_to_the_nearest_parent() -> None:
    fleet = loads(WHERE, environ={})
    assert fleet.where("services", "api", "health", "http") == Location("fleet.yaml", 5, 3)
    assert fleet.where("services", "api", "volumes", 7) == Location("fleet.yaml", 9, 5)
    assert str(fleet.where("nothing-here")) == "fleet.yaml"


def test_where_uses_the_file_name(tmp_path: Path) -> None:
    (tmp_path / "dockyard.yaml").write_text(WHERE)
    fleet = load(tmp_path / "dockyard.yaml", environ={})
    assert str(fleet.where("services", "db")) == "dockyard.yaml:13:3"
    assert isinstance(fleet, Fleet)


# --- interpolation ---------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "environ", "expected"), [
    ("${VAR}", {"VAR": "x"}, "x"),
    ("${VAR}", {}, ""),
    ("pre-${VAR}-post", {"VAR": "x"}, "pre-x-post"),
    ("${VAR:-default}", {}, "default"),
    ("${VAR:-default}", {"VAR": ""}, "default"),
    ("${VAR:-default}", {"VAR": "set"}, "set"),
    ("${VAR-default}", {}, "default"),
    ("${VAR-default}", {"VAR": ""}, ""),
    ("${VAR-default}", {"VAR": "set"}, "set"),
    ("${VAR:-}", {}, ""),
    ("${VAR:?needed}", {"VAR": "set"}, "set"),
    ("${VAR?needed}", {"VAR": ""}, ""),
    ("${VAR:+alt}", {"VAR": "set"}, "alt"),
    ("${VAR:+alt}", {"VAR": ""}, ""),
    ("${VAR:+alt}", {}, ""),
    ("${VAR+alt}", {"VAR": ""}, "alt"),
    ("${VAR+alt}", {}, ""),
    ("$$", {}, "$"),
    ("$${VAR}", {"VAR": "x"}, "${VAR}"),
    ("price: $$5", {}, "price: $5"),
    ("$VAR", {"VAR": "x"}, "x"),
    ("$VAR/bin", {"VAR": "/opt"}, "/opt/bin"),
    ("$VAR_2x", {"VAR_2x": "y", "VAR": "no"}, "y"),
    ("costs $5", {}, "costs $5"),
    ("${A:-${B}}", {"B": "b"}, "b"),
    ("${A:-${B}}", {"A": "a", "B": "b"}, "a"),
    ("${A:-${B:-deep}}", {}, "deep"),
    ("${A:-x}:${B:-y}", {"B": "b"}, "x:b"),
])
def test_interpolate(text: str, environ: dict[str, str], expected: str) -> None:
    assert interpolate(text, environ) == expected


@pytest.mark.parametrize(("text", "fragment"), [
    ("${VAR:?set VAR to a token}", "required variable VAR is not set: set VAR to a token"),
    ("${VAR?}", "required variable VAR is not set"),
    ("${}", "invalid variable ${}"),
    ("${1X}", "invalid variable ${1X}"),
    ("${VAR", "`${` is not closed"),
    ("${A:-${B:-${C}}}", "`${` is not closed"),
])
def test_interpolate_errors(text: str, fragment: str) -> None:
    with pytest.raises(InterpolationError) as caught:
        interpolate(text, {"OTHER": "x"})
    assert fragment in str(caught.value)


def test_required_empty_is_unset_with_colon() -> None:
    with pytest.raises(InterpolationError):
        interpolate("${VAR:?msg}", {"VAR": ""})


def test_interpolation_applies_throughout_the_manifest() -> None:
    svc = service(
        "    image: ${REGISTRY:-docker.io}/nginx:${TAG:-latest}\n"
        "    command: [serve, --port, $PORT]\n"
        "    env:\n"
        "      LITERAL: price is $$5\n"
        "      TOKEN: ${TOKEN:?set TOKEN}\n",
        {"TAG": "1.27", "PORT": "9000", "TOKEN": "t0k"},
    )
    assert svc.image == "docker.io/nginx:1.27"
    assert svc.command == ["serve", "--port", "9000"]
    assert svc.env == {"LITERAL": "price is $5", "TOKEN": "t0k"}


def test_loads_without_environ_sees_no_variables() -> None:
    fleet = loads(BASE + "services:\n  api:\n    image: nginx:${TAG:-stable}\n")
    assert fleet.spec.services["api"].image == "nginx:stable"


def test_dotenv_beside_the_manifest(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "# settings for the demo\n"
        "\n"
        "FROM_DOTENV=dotenv-value\n"
        "export EXPORTED=yes\n"
        "QUOTED=\"two words\"\n"
        "SINGLE='x=y'\n"
        "BOTH=from-dotenv\n"
        "not a line\n"
    )
    (tmp_path / "fleet.yaml").write_text(BASE + """\
services:
  api:
    image: nginx
    env:
      A: ${FROM_DOTENV}
      B: ${EXPORTED}
      C: ${QUOTED}
      D: ${SINGLE}
      E: ${BOTH}
      F: ${ONLY_PROCESS}
""")
    fleet = load(tmp_path / "fleet.yaml", environ={"BOTH": "from-process", "ONLY_PROCESS": "p"})
    assert fleet.spec.services["api"].env == {
        "A": "dotenv-value", "B": "yes", "C": "two words", "D": "x=y",
        "E": "from-process", "F": "p",
    }
    assert fleet.root == tmp_path


def test_dotenv_satisfies_a_required_variable(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DB_PASSWORD=hunter2\n")
    (tmp_path / "fleet.yaml").write_text(
        BASE + "services:\n  db:\n    image: postgres\n"
        "    env: {POSTGRES_PASSWORD: \"${DB_PASSWORD:?set it}\"}\n"
    )
    fleet = load(tmp_path / "fleet.yaml", environ={})
    assert fleet.spec.services["db"].env["POSTGRES_PASSWORD"] == "hunter2"


def test_read_dotenv_without_a_file(tmp_path: Path) -> None:
    assert read_dotenv(tmp_path / ".env") == {}


# --- ports -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("written", "port", "host", "bind"), [
    ("8000", 8000, None, "127.0.0.1"),
    ('"8000"', 8000, None, "127.0.0.1"),
    ('"18000:8000"', 8000, 18000, "127.0.0.1"),
    ('"0.0.0.0:80:8080"', 8080, 80, "0.0.0.0"),
    ("{port: 8000, host: 9000, bind: 0.0.0.0}", 8000, 9000, "0.0.0.0"),
])
def test_port_forms(written: str, port: int, host: int | None, bind: str) -> None:
    spec = service(f"    image: nginx\n    ports:\n      http: {written}\n").ports["http"]
    assert (spec.port, spec.host, spec.bind) == (port, host, bind)
    assert spec.host_port == (host or port)
    assert spec.protocol == "tcp"
    assert spec.publish is True


def test_port_dict_form_with_every_key() -> None:
    ports = service(
        "    image: nginx\n"
        "    ports:\n"
        "      dns: {port: 53, protocol: udp, publish: false}\n"
        "      metrics: 9100\n"
    ).ports
    assert list(ports) == ["dns", "metrics"]
    assert ports["dns"] == PortSpec(port=53, protocol="udp", publish=False)
    assert ports["metrics"].host_port == 9100


# --- depends_on, env, command ----------------------------------------------------------------

def test_depends_on_list_and_mapping_forms() -> None:
    fleet = loads(BASE + """\
services:
  db: {image: postgres}
  cache: {image: redis}
  api:
    image: nginx
    depends_on: [db, cache]
  worker:
    image: nginx
    depends_on:
      db: {condition: started}
      cache: {}
""", environ={})
    api = fleet.spec.services["api"].depends_on
    worker = fleet.spec.services["worker"].depends_on
    assert list(api) == ["db", "cache"]
    assert {name: dep.condition for name, dep in api.items()} == {
        "db": "healthy", "cache": "healthy"}
    assert {name: dep.condition for name, dep in worker.items()} == {
        "db": "started", "cache": "healthy"}


def test_env_values_become_strings() -> None:
    svc = service(
        "    image: nginx\n"
        "    env:\n"
        "      THREADS: 16\n"
        "      RATIO: 0.5\n"
        "      DEBUG: true\n"
        "      QUIET: false\n"
        "      EMPTY:\n"
        "      QUOTED: \"16\"\n"
        "      WORD: yes\n"
    )
    assert svc.env == {
        "THREADS": "16", "RATIO": "0.5", "DEBUG": "true", "QUIET": "false", "EMPTY": "",
        "QUOTED": "16", "WORD": "yes",
    }
    assert all(isinstance(v, str) for v in svc.env.values())


def test_anchored_booleans_stay_true_and_false() -> None:
    fleet = loads(BASE + """\
families:
  py:
    from: "python:3.11-slim"
    env: {ON: &on true, OFF: &off false}
services:
  api:
    family: py
    env: {ALSO_ON: *on, ALSO_OFF: *off}
""", environ={})
    assert fleet.spec.families["py"].env == {"ON": "true", "OFF": "false"}
    assert fleet.spec.services["api"].env == {"ALSO_ON": "true", "ALSO_OFF": "false"}


def test_machine_profile_values_become_strings() -> None:
    fleet = loads("""\
fleet: demo
machines:
  gpu-box:
    arch: arm64
    memory: 128GiB
    gpus: [{model: GB10, memory: 128GiB, unified: true}]
    profile: {CUDA_VISIBLE_DEVICES: 0, NCCL_P2P_DISABLE: 1}
services:
  api: {image: nginx, machine: gpu-box, gpu: {memory: 8GiB}}
""", environ={})
    machine = fleet.spec.machines["gpu-box"]
    assert machine.profile == {"CUDA_VISIBLE_DEVICES": "0", "NCCL_P2P_DISABLE": "1"}
    assert machine.gpus[0].unified is True
    assert machine.gpus[0].memory == 128 * 2**30
    gpu = fleet.spec.services["api"].gpu
    assert gpu is not None
    assert (gpu.memory, gpu.count, gpu.device) == (8 * 2**30, 1, None)


def test_anchors_and_merge_keys() -> None:
    fleet = loads(BASE + """\
services:
  api: &common
    image: nginx
    restart: always
    env: &env {LOG_LEVEL: info, WORKERS: 4}
    memory: 512MiB
  worker:
    <<: *common
    memory: 1GiB
    env:
      <<: *env
      LOG_LEVEL: debug
  tool:
    <<: *common
    env: *env
""", environ={})
    services = fleet.spec.services
    assert services["worker"].image == "nginx"
    assert services["worker"].restart == "always"
    assert services["worker"].memory == 2**30  # its own key wins over the merged one
    assert services["worker"].env == {"LOG_LEVEL": "debug", "WORKERS": "4"}
    assert services["tool"].env == {"LOG_LEVEL": "info", "WORKERS": "4"}
    assert services["tool"].memory == 512 * 2**20
    # A merged key is located where it is written: in `api`, line 6.
    assert str(fleet.where("services", "tool", "image")) == "fleet.yaml:6:5"
    assert str(fleet.where("services", "worker", "memory")) == "fleet.yaml:12:5"


def test_command_as_a_string_runs_in_a_shell() -> None:
    svc = service(
        "    image: nginx\n"
        "    command: python -m http.server 8000 && echo done\n"
        "    entrypoint: [tini, --]\n"
    )
    assert svc.command == ["/bin/sh", "-c", "python -m http.server 8000 && echo done"]
    assert svc.entrypoint == ["tini", "--"]


def test_health_cmd_as_a_string_runs_in_a_shell() -> None:
    svc = service("    image: nginx\n    health: {cmd: 'curl -f localhost || exit 1'}\n")
    assert svc.health is not None
    assert svc.health.cmd == ["/bin/sh", "-c", "curl -f localhost || exit 1"]
    assert svc.health.deadline == 15.0


def test_command_as_a_list_is_exec_form() -> None:
    svc = service("    image: nginx\n    command: [nginx, -g, daemon off;]\n")
    assert svc.command == ["nginx", "-g", "daemon off;"]


def test_defaults() -> None:
    svc = service("    image: nginx\n")
    assert svc.restart == "unless-stopped"
    assert svc.command == []
    assert svc.ports == {}
    assert svc.health is None
    assert svc.depends_on == {}
    assert svc.memory == 0


def test_health_port_may_be_a_name_or_number() -> None:
    named = service("    image: nginx\n    ports: {web: 80}\n    health: {http: /, port: web}\n")
    assert named.health is not None
    assert named.health.port == "web"
    numbered = service("    image: nginx\n    health: {http: /ok, port: 8081}\n")
    assert numbered.health is not None
    assert numbered.health.port == 8081

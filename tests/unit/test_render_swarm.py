"""Swarm stacks (`render --target swarm`): golden folders and what they must say.

Every example fleet (examples/*/fleet.fixed.yaml, loaded with its .env.example) and every golden
fleet (tests/golden/*/fleet.yaml with its environ.env; `quickstart` is the bundled example) is
rendered and compared, byte for byte, with tests/golden/swarm/<name>/, which holds the fleet's
folder as `dockyard render --target swarm` writes it. What Swarm cannot keep is listed at the
top of each stack.yaml and the checklist in nodes.sh, so both are golden too. After an intended
change:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_render_swarm.py
    git diff tests/golden/swarm/

tests/process/test_render_swarm.py runs `docker stack config` on every golden stack.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from dockyard.cli import app
from dockyard.errors import ManifestError
from dockyard.manifest.interpolate import read_dotenv
from dockyard.manifest.load import loads
from dockyard.plan import plan
from dockyard.render.swarm import GPU_ENV, SwarmRender, render_swarm
from tests.unit.test_render_golden import reorder
from tests.unit.test_render_kube import CASES as ALL_CASES
from tests.unit.test_render_kube import GOLDEN

SWARM = GOLDEN / "swarm"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
# The fixed examples and the golden fleets (Kubernetes also renders the seeds as written).
CASES = {name: case for name, case in ALL_CASES.items() if not name.endswith("-seed")}
SAFE = YAML(typ="safe")


def render_text(text: str, environ: dict[str, str] | None = None,
                profiles: tuple[str, ...] = ()) -> SwarmRender:
    fleet = loads(text, environ=environ or {})
    return render_swarm(fleet, plan(fleet), profiles)


@functools.cache  # several tests read one case: render it once (nothing mutates it)
def render_case(name: str) -> SwarmRender:
    manifest, environ = CASES[name]
    return render_text(manifest.read_text(encoding="utf-8"), read_dotenv(environ))


def stack(result: SwarmRender) -> dict[str, Any]:
    doc: dict[str, Any] = SAFE.load(result.files["stack.yaml"])
    return doc


def service(result: SwarmRender, key: str) -> dict[str, Any]:
    entry: dict[str, Any] = stack(result)["services"][key]
    return entry


def everything(result: SwarmRender) -> str:
    """Every byte the render gives: its files, what it prints as lost and its checklist."""
    return "".join(result.files.values()) + "\n".join(result.lost + result.checklist)


# --- golden folders ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CASES))
def test_swarm_output_matches_golden(name: str) -> None:
    result = render_case(name)
    folder = SWARM / name
    if UPDATE:
        shutil.rmtree(folder, ignore_errors=True)
        for rel, text in result.files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text, encoding="utf-8", newline="")
    expected = {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
                for p in sorted(folder.rglob("*")) if p.is_file()}
    problems = []
    if set(expected) != set(result.files):
        problems.append(f"files differ: expected only {sorted(set(expected) - set(result.files))}"
                        f", rendered only {sorted(set(result.files) - set(expected))}")
    for rel in sorted(set(expected) & set(result.files)):
        if expected[rel] != result.files[rel]:
            problems.append("".join(difflib.unified_diff(
                expected[rel].splitlines(True), result.files[rel].splitlines(True),
                f"golden/swarm/{name}/{rel}", f"rendered/{rel}")))
    if problems:
        pytest.fail(f"swarm output of {name} differs (rerun with UPDATE_GOLDEN=1 to accept):\n"
                    + "\n".join(problems), pytrace=False)


@pytest.mark.parametrize("name", ["her-os", "budgets"])
def test_rendering_is_deterministic_and_independent_of_manifest_order(name: str) -> None:
    manifest, environ_file = CASES[name]
    text, environ = manifest.read_text(encoding="utf-8"), read_dotenv(environ_file)
    first, second = render_text(text, environ), render_text(text, environ)
    assert first == second
    shuffled = render_text(reorder(text), environ)

    def content(r: SwarmRender) -> dict[str, str]:  # comments carry the manifest's line numbers
        return {k: re.sub(r"(?m)^#.*\n", "", v) for k, v in r.files.items()}

    assert content(shuffled) == content(first)
    assert sorted(line.split(": ", 1)[1] for line in shuffled.lost) == sorted(
        line.split(": ", 1)[1] for line in first.lost)


def test_the_folder_is_named_by_the_fleet_and_levels_follow_the_plan() -> None:
    result = render_case("gpu-fleet")
    assert result.folder == "swarm/lab"
    assert sorted(result.files) == ["nodes.sh", "stack.yaml"]
    assert result.levels == [["db", "tts"], ["llm"]]  # llm depends on db
    budgets = render_case("budgets")
    copies = [k for k in budgets.levels[0] if k.startswith("node-exporter")]
    assert copies == ["node-exporter-box", "node-exporter-spark"]


# --- placement ---------------------------------------------------------------------------------

GPUS = """\
fleet: gpus
machines:
  a: {arch: arm64, gpus: [{memory: 24GiB}, {memory: 24GiB}], host: 10.0.0.1}
  b: {gpus: [{memory: 12GiB}], host: 10.0.0.2}
  c: {host: 10.0.0.3}
services:
  train:
    image: train:1
    machine: a
    gpu: {count: 2}
    cpus: 2.5
    memory: 6GiB
  free:
    image: free:1
    gpu: {memory: 10GiB}
    needs: [gpu]
  web:
    image: web:1
    machine: c
    ports: {http: "0.0.0.0:8080:8080"}
    health: {http: /health, interval: 2s, retries: 5, start_period: 10s}
"""


def test_placement_becomes_constraints_on_the_machine_label_and_arch() -> None:
    result = render_text(GPUS)
    train = service(result, "train")["deploy"]
    assert train["placement"] == {"constraints": [
        "node.labels.dockyard.machine == a", "node.platform.arch == aarch64"]}
    placed = plan(loads(GPUS, environ={})).services["free"].machine  # the solver's choice
    assert service(result, "free")["deploy"]["placement"]["constraints"][0] == (
        f"node.labels.dockyard.machine == {placed}")
    assert service(result, "web")["deploy"]["placement"]["constraints"][1] == (
        "node.platform.arch == x86_64")
    nodes = result.files["nodes.sh"]
    for machine in ("a", "b", "c"):
        assert (f'docker node update --label-add dockyard.machine={machine} '
                f'"${{NODE_{machine.upper()}:-{machine}}}"') in nodes
    assert nodes.startswith("#!/bin/sh\n") and "set -eu\n" in nodes


def test_gpus_become_generic_resources_and_budgets_limits_and_reservations() -> None:
    result = render_text(GPUS)
    assert service(result, "train")["deploy"]["resources"] == {
        "limits": {"cpus": "2.5", "memory": "6144m"},
        "reservations": {"cpus": "2.5", "memory": "6144m", "generic_resources": [
            {"discrete_resource_spec": {"kind": "NVIDIA-GPU", "value": 2}}]}}
    assert service(result, "free")["deploy"]["resources"] == {"reservations": {
        "generic_resources": [{"discrete_resource_spec": {"kind": "NVIDIA-GPU", "value": 1}}]}}
    assert "resources" not in service(result, "web")["deploy"]
    # The container sees only its reserved GPUs, renumbered from 0, as with compose.
    assert service(result, "train")["environment"]["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert "devices" not in result.files["stack.yaml"]  # Swarm has no device reservation


def test_a_service_without_gpus_on_a_gpu_node_is_kept_off_them() -> None:
    result = render_case("gpu-fleet")
    assert service(result, "db")["environment"]["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert "NVIDIA_VISIBLE_DEVICES" not in service(result, "llm")["environment"]
    assert "NVIDIA_VISIBLE_DEVICES" not in service(render_text(GPUS), "web").get(
        "environment", {})  # machine c has no GPU: nothing to keep it off


def test_copies_on_several_machines_are_one_service_each_with_the_name_as_alias() -> None:
    result = render_case("budgets")
    services = stack(result)["services"]
    assert "node-exporter" not in services
    box, spark = services["node-exporter-box"], services["node-exporter-spark"]
    assert box["networks"] == spark["networks"] == {"fleet": {"aliases": ["node-exporter"]}}
    assert spark["deploy"]["placement"]["constraints"][0] == (
        "node.labels.dockyard.machine == spark")
    assert spark["environment"]["OMP_NUM_THREADS"] == "20"  # spark's profile
    assert box["environment"]["OMP_NUM_THREADS"] == "16"
    assert box["deploy"]["labels"]["dev.dockyard.service"] == "node-exporter"
    assert services["llm"]["networks"] == ["fleet"]
    assert stack(result)["networks"] == {"fleet": {
        "driver": "overlay", "attachable": True, "labels": {"dev.dockyard.fleet": "budgets"}}}


# --- updates, restarts, health -----------------------------------------------------------------

def test_update_and_rollback_config() -> None:
    result = render_text(GPUS)
    web = service(result, "web")["deploy"]
    # Stateless, healthy, nothing exclusive or reserved: the new task starts before the old stops,
    # watched for the health deadline (10 s + 2 s x 5).
    assert web["update_config"] == {"parallelism": 1, "order": "start-first",
                                    "failure_action": "rollback", "monitor": "20s"}
    assert web["rollback_config"] == {"parallelism": 1, "order": "start-first",
                                      "failure_action": "pause", "monitor": "20s"}
    # GPUs (and no health check): the old task stops first, and no monitor is invented.
    assert service(result, "train")["deploy"]["update_config"] == {
        "parallelism": 1, "order": "stop-first", "failure_action": "rollback"}
    lab = render_case("gpu-fleet")
    assert service(lab, "db")["deploy"]["update_config"]["order"] == "stop-first"  # a volume
    assert service(lab, "db")["deploy"]["update_config"]["monitor"] == "50s"  # 5 s x 10
    assert service(lab, "llm")["deploy"]["rollback_config"]["monitor"] == "7m"  # 2m + 10s x 30


def test_a_host_port_or_a_reservation_makes_updates_stop_first() -> None:
    result = render_text("""\
fleet: orders
machines: {box: {}}
services:
  local:
    image: a:1
    ports: {http: 8080}
    health: {http: /}
  budget:
    image: b:1
    memory: 1GiB
    health: {cmd: ["true"]}
  mesh:
    image: c:1
    ports: {http: "0.0.0.0:9090:9090"}
    health: {cmd: ["true"]}
""")
    orders = {k: v["deploy"]["update_config"]["order"]
              for k, v in stack(result)["services"].items()}
    assert orders == {"local": "stop-first", "budget": "stop-first", "mesh": "start-first"}


def test_restart_becomes_restart_policy_and_health_is_rendered_as_for_compose() -> None:
    lab = render_case("gpu-fleet")
    assert service(lab, "db")["deploy"]["restart_policy"] == {"condition": "any"}
    assert service(lab, "db")["healthcheck"] == {
        "test": ["CMD", "/bin/sh", "-c", "pg_isready -U $$POSTGRES_USER"],
        "interval": "5s", "timeout": "5s", "retries": 10}
    assert "restart" not in service(lab, "db")  # Swarm reads deploy.restart_policy
    result = render_text("""\
fleet: restarts
machines: {box: {}}
services:
  once: {image: a:1, restart: "no"}
  retry: {image: a:1, restart: on-failure}
  always: {image: a:1, restart: always}
""")
    policies = {k: v["deploy"]["restart_policy"]["condition"]
                for k, v in stack(result)["services"].items()}
    assert policies == {"always": "any", "once": "none", "retry": "on-failure"}


def test_container_groups_keep_init_and_ship_the_supervisor_as_a_config() -> None:
    result = render_case("budgets")
    agents = service(result, "agents")
    assert agents["init"] is True
    assert agents["entrypoint"] == ["python3", "/opt/dockyard/supervisor.py"]
    (config,) = agents["configs"]
    assert config["target"] == "/opt/dockyard/supervisor.py" and config["mode"] == 0o444
    assert stack(result)["configs"][config["source"]]["file"] == (
        "./services/agents.supervisor.py")
    script = result.files["services/agents.supervisor.py"]
    compile(script, "supervisor.py", "exec")
    assert "agents.critic --port 9102" in script
    assert agents["healthcheck"]["test"][0] == "CMD-SHELL"
    # Configs are immutable: the key carries the script's hash, so a changed script is new.
    changed = render_text((GOLDEN / "budgets" / "fleet.yaml").read_text(encoding="utf-8")
                          .replace("--port 9102", "--port 9103"))
    assert service(changed, "agents")["configs"][0]["source"] != config["source"]


# --- ports -------------------------------------------------------------------------------------

def test_ports_bound_to_an_address_are_host_mode_and_wildcards_the_mesh() -> None:
    llm = service(render_case("gpu-fleet"), "llm")
    assert llm["ports"] == [
        {"target": 8080, "published": 80, "protocol": "tcp", "mode": "ingress"},
        {"target": 8000, "published": 18000, "protocol": "tcp", "mode": "host"}]
    assert "expose" not in llm  # the overlay reaches every port


def test_a_port_published_by_two_services_is_host_mode_on_each_machine() -> None:
    result = render_text("""\
fleet: clash
machines: {a: {}, b: {}}
services:
  one: {image: a:1, machine: a, ports: {http: "0.0.0.0:8000:8000"}}
  two: {image: a:1, machine: b, ports: {http: "0.0.0.0:8000:80"}}
  solo: {image: a:1, machine: b, ports: {dns: {port: 53, bind: 0.0.0.0, protocol: udp}}}
""")
    assert service(result, "one")["ports"][0]["mode"] == "host"
    assert service(result, "two")["ports"][0]["mode"] == "host"
    assert service(result, "solo")["ports"] == [
        {"target": 53, "published": 53, "protocol": "udp", "mode": "ingress"}]


# --- secrets -----------------------------------------------------------------------------------

def test_no_secret_value_reaches_a_rendered_byte() -> None:
    for name, secrets in (("gpu-fleet", ["DB_PASSWORD"]), ("her-os", [
            "POSTGRES_PASSWORD", "REDIS_PASSWORD", "NEO4J_PASSWORD", "ANTHROPIC_API_KEY"])):
        environ = read_dotenv(CASES[name][1])
        result = render_case(name)
        text = everything(result)
        for key in secrets:
            assert environ[key], f"{name}: the env file gives {key} no value to look for"
            assert environ[key] not in text, f"{name}: the value of {key} was rendered"
        assert ("#   export " + " ".join(sorted(secrets))) in result.files["stack.yaml"]


def test_secrets_stay_references_that_stack_deploy_interpolates() -> None:
    lab = render_case("gpu-fleet")
    required = "${DB_PASSWORD:?set DB_PASSWORD in the environment of docker stack deploy}"
    assert service(lab, "db")["environment"]["POSTGRES_PASSWORD"] == required
    assert service(lab, "llm")["environment"]["DATABASE_URL"] == (
        f"postgresql://app:{required}@db:5432/app")
    # A variable that is no secret is written with its value, as compose gets it.
    assert service(lab, "tts")["environment"]["VOICE"] == "en_US-amy-medium"
    her = render_case("her-os")
    redis = service(her, "redis")
    assert redis["command"][2].startswith("redis-server --requirepass ${REDIS_PASSWORD:?")
    assert "${REDIS_PASSWORD:?" in " ".join(redis["healthcheck"]["test"])


def test_dollars_are_escaped_and_a_named_secret_is_an_optional_reference() -> None:
    result = render_text("""\
fleet: cash
machines: {box: {}}
services:
  shop:
    image: shop:1.0
    command: "echo $$HOME costs $$5"
    env: {PRICE: "$$5", HF_TOKEN: "${HF_TOKEN}", MODE: "${MODE:-fast}", ON: "${HF_TOKEN:+yes}"}
""", {"HF_TOKEN": "hf_s3cret"})
    shop = service(result, "shop")
    assert shop["command"] == ["/bin/sh", "-c", "echo $$HOME costs $$5"]
    assert shop["environment"] == {"HF_TOKEN": "${HF_TOKEN}", "MODE": "fast", "ON": "yes",
                                   "PRICE": "$$5"}
    assert "hf_s3cret" not in everything(result)


def test_an_unsplittable_value_is_written_as_in_the_manifest() -> None:
    result = render_text("""\
fleet: mix
machines: {box: {}}
services:
  app:
    image: app:1
    env: {URL: "${USER}:${PASSWORD}"}
""", {"USER": "a:b", "PASSWORD": "c:d"})
    assert "c:d" not in everything(result)
    assert service(result, "app")["environment"]["URL"] == "${USER}:${PASSWORD}"
    assert any("docker stack deploy needs those in its environment too" in line
               and "USER" in line for line in result.lost)


def test_secrets_stack_deploy_cannot_read_are_refused() -> None:
    base = """\
fleet: refuse
machines: {box: {}}
services:
  app:
%s
"""
    for body, says in (
            ('    image: app:1\n    env: {A: "${TOKEN:+on}${TOKEN}"}', "cannot interpolate"),
            ('    image: app:1\n    agents: {a: {command: "run --key ${TOKEN:?}"}}',
             "supervisor's config")):
        with pytest.raises(ManifestError) as caught:
            render_text(base % body, {"TOKEN": "t0ken"})
        assert says in str(caught.value) and "fleet.yaml:" in str(caught.value)


def test_an_agents_secret_env_moves_to_the_container() -> None:
    result = render_text("""\
fleet: group
machines: {box: {}}
services:
  crew:
    image: crew:1
    agents:
      a: {command: [run, a], env: {API_KEY: "${API_KEY:?}", MODE: fast}}
""", {"API_KEY": "k3y-value"})
    assert "k3y-value" not in everything(result)
    script = result.files["services/crew.supervisor.py"]
    assert '"MODE": "fast"' in script and "API_KEY" not in script
    assert service(result, "crew")["environment"]["API_KEY"].startswith("${API_KEY:?")
    assert any("every agent of the group sees it" in line for line in result.lost)


# --- what Swarm loses, said at render time -----------------------------------------------------

def test_lost_features_are_reported_with_their_location() -> None:
    result = render_text("""\
fleet: lossy
machines:
  box: {gpus: [{memory: 24GiB}, {memory: 12GiB}]}
  other: {}
services:
  db:
    image: postgres:16
    machine: box
    volumes: ["./init:/docker-entrypoint-initdb.d"]
    ports: {pg: 5432}
  app:
    image: app:1
    machine: box
    depends_on: {db: {condition: started}}
    profiles: [extra]
    gpu: {device: 1, memory: 4GiB}
  probe:
    image: probe:1
    machines: [box, other]
    ports: {http: {port: 9000, publish: false}}
""")
    lost = "\n".join(result.lost)
    assert re.search(r"fleet.yaml:14:5: service app: depends_on db \(started\) is not kept: "
                     "Swarm starts every service at once; `dockyard up --target swarm` deploys "
                     "level by level", lost)
    assert "service app: profiles (extra) have no Swarm equivalent" in lost
    assert "`docker service scale lossy_app=1`" in lost
    assert "gpu.device 1 on box is not kept" in lost
    assert "service db: port 127.0.0.1:5432 is published on every address of box (host mode)" \
        in lost
    assert "service db: bind mount `./init` must exist on box" in lost
    assert "service probe: `probe` reaches any of its copies (box, other)" in lost
    assert service(result, "app")["deploy"]["replicas"] == 0
    assert service(result, "app")["deploy"]["labels"]["dev.dockyard.depends-on"] == "db:started"
    header = result.files["stack.yaml"].split("version:")[0]
    assert "# What Swarm does not keep of the manifest:" in header
    assert all(f"#   {line}" in header for line in result.lost)


def test_a_profile_asked_for_runs() -> None:
    fleet = loads((GOLDEN / "gpu-fleet" / "fleet.yaml").read_text(encoding="utf-8"),
                  environ={"DB_PASSWORD": "pw"})
    result = render_swarm(fleet, plan(fleet), profiles=["voice"])
    assert service(result, "tts")["deploy"]["replicas"] == 1
    assert not any("profiles" in line for line in result.lost)


def test_names_swarm_cannot_take_are_refused_or_mapped() -> None:
    with pytest.raises(ManifestError) as caught:
        render_text(f"fleet: f\nmachines: {{box: {{}}}}\nservices:\n  {'s' * 62}: {{image: a:1}}\n")
    assert "at most 63 characters" in str(caught.value)
    result = render_text("fleet: f\nmachines: {box: {}}\nservices:\n  api.v2: {image: a:1}\n")
    assert service(result, "api-v2")["networks"] == {"fleet": {"aliases": ["api.v2"]}}


# --- the checklist -----------------------------------------------------------------------------

def test_checklist_has_daemon_json_for_each_gpu_node_and_the_firewall_rule() -> None:
    result = render_text(GPUS)
    checklist = "\n".join(result.checklist)
    assert 'a has GPUs: in its /etc/docker/daemon.json' in checklist
    assert '"node-generic-resources": ["NVIDIA-GPU=0", "NVIDIA-GPU=1"]' in checklist
    assert '"node-generic-resources": ["NVIDIA-GPU=0"]' in checklist  # machine b
    assert checklist.count('"default-runtime": "nvidia"') == 2  # a and b, not c
    assert f'swarm-resource = "{GPU_ENV}"' in checklist and GPU_ENV == "DOCKER_RESOURCE_NVIDIA-GPU"
    assert "TCP 2377 (to managers), TCP+UDP 7946 (gossip) and UDP 4789 (overlay VXLAN)" \
        in checklist
    assert "on a: ufw allow proto tcp from 10.0.0.2 to any port 2377,7946" in checklist
    assert "on c: ufw allow proto udp from 10.0.0.1 to any port 7946,4789" in checklist
    assert "docker swarm init --advertise-addr 10.0.0.1" in checklist
    nodes = result.files["nodes.sh"]
    assert all(f"#   {line}" in nodes for line in result.checklist)


def test_checklist_of_one_machine_needs_no_firewall_and_names_a_missing_address() -> None:
    quick = render_case("quickstart")
    assert not any("firewall" in line for line in quick.checklist)
    assert quick.checklist[0].startswith("swarm: `docker swarm init` on ")
    assert any(line.startswith("images: the fleet has no registry") for line in quick.checklist)
    assert "--resolve-image never" in quick.files["stack.yaml"]
    lab = "\n".join(render_case("gpu-fleet").checklist)
    assert "from <address of small>" in lab  # small has no `host:`
    assert "from big.lab.internal" in lab


# --- the command -------------------------------------------------------------------------------

def test_cli_writes_the_stack_and_prints_what_is_lost_and_the_checklist(tmp_path: Path) -> None:
    manifest = GOLDEN / "gpu-fleet" / "fleet.yaml"
    result = CliRunner().invoke(app, ["-f", str(manifest), "render", "--target", "swarm",
                                      "-o", str(tmp_path)], env={"DB_PASSWORD": "pw-cli"})
    assert result.exit_code == 0, result.output
    folder = tmp_path / "swarm" / "lab"
    assert sorted(p.name for p in folder.iterdir()) == ["nodes.sh", "stack.yaml"]
    assert not (tmp_path / "compose.big.yaml").exists()
    assert "swarm: " in result.output and "depends_on db (started) is not kept" in result.output
    assert '"node-generic-resources": ["NVIDIA-GPU=0"]' in result.output
    assert "pw-cli" not in "".join(p.read_text() for p in folder.iterdir()) + result.output
    # The relative bind is rebased onto the fleet's folder, seen from the stack's.
    llm = SAFE.load((folder / "stack.yaml").read_text())["services"]["llm"]
    bind = next(v for v in llm["volumes"] if v.endswith(":/data"))
    assert (folder / bind.split(":")[0]).resolve() == (manifest.parent / "data").resolve()

"""Kubernetes manifests (`render --target kubernetes`): golden folders and what they must say.

Every example fleet (examples/*/fleet.fixed.yaml, loaded with its .env.example) and every golden
fleet (tests/golden/*/fleet.yaml with its environ.env; `quickstart` is the bundled example) is
rendered and compared, byte for byte, with tests/golden/kubernetes/<name>/, which holds the
fleet's folder as `dockyard render --target kubernetes` writes it. What Kubernetes cannot keep
is listed at the top of each kustomization.yaml, so it is golden too. After an intended change:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_render_kube.py
    git diff tests/golden/kubernetes/

tests/unit/test_kube_validate.py validates every golden document against the Kubernetes schemas.
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
from dockyard.render.kube import KubeRender, name_of, render_kubernetes, split
from tests.unit.test_render_golden import reorder

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
KUBE = GOLDEN / "kubernetes"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
SAFE = YAML(typ="safe")


def _cases() -> dict[str, tuple[Path, Path]]:
    """name -> (manifest, its environment file). Every example's manifests: fleet.fixed.yaml
    as <example>, the seed as written (defects and all) as <example>-seed."""
    cases = {p.parent.name: (p, p.parent / ".env.example")
             for p in sorted((ROOT / "examples").glob("*/fleet.fixed.yaml"))}
    cases.update({f"{p.parent.name}-seed": (p, p.parent / ".env.example")
                  for p in sorted((ROOT / "examples").glob("*/fleet.yaml"))})
    cases.update({p.parent.name: (p, p.parent / "environ.env")
                  for p in sorted(GOLDEN.glob("*/fleet.yaml"))})
    return cases


CASES = _cases()


def render_text(text: str, environ: dict[str, str] | None = None) -> KubeRender:
    fleet = loads(text, environ=environ or {})
    return render_kubernetes(fleet, plan(fleet))


@functools.cache  # several tests read one case: render it once (nothing mutates it)
def render_case(name: str) -> KubeRender:
    manifest, environ = CASES[name]
    return render_text(manifest.read_text(encoding="utf-8"), read_dotenv(environ))


def docs(result: KubeRender, rel: str) -> list[dict[str, Any]]:
    return [d for d in SAFE.load_all(result.files[rel]) if d]


def workload(result: KubeRender, service: str, name: str = "") -> dict[str, Any]:
    return next(d for d in docs(result, f"services/{service}.yaml")
                if d["kind"] in ("Deployment", "StatefulSet")
                and d["metadata"]["name"] == (name or service))


def container(result: KubeRender, service: str, name: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = workload(result, service, name)["spec"]["template"]["spec"]
    return spec["containers"][0]  # type: ignore[no-any-return]


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


# --- golden folders ----------------------------------------------------------------------------

def test_every_example_and_golden_fleet_is_a_case() -> None:
    assert {"agents-77", "blueprint-4090-3060", "her-os", "spark-control", "quickstart",
            "gpu-fleet", "budgets", "family-chain", "own-dockerfile", "cross-machine"} <= set(CASES)
    examples = sorted((ROOT / "examples").glob("*/fleet*.yaml"))
    assert len(examples) == 8 and {m for m, _ in CASES.values()} >= set(examples)


@pytest.mark.parametrize("name", sorted(CASES))
def test_kubernetes_output_matches_golden(name: str) -> None:
    result = render_case(name)
    folder = KUBE / name
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
                f"golden/kubernetes/{name}/{rel}", f"rendered/{rel}")))
    if problems:
        pytest.fail(f"kubernetes output of {name} differs (rerun with UPDATE_GOLDEN=1 to "
                    "accept):\n" + "\n".join(problems), pytrace=False)


@pytest.mark.parametrize("name", ["her-os", "budgets"])
def test_rendering_is_deterministic_and_independent_of_manifest_order(name: str) -> None:
    manifest, environ_file = CASES[name]
    text, environ = manifest.read_text(encoding="utf-8"), read_dotenv(environ_file)
    first, second = render_text(text, environ), render_text(text, environ)
    assert first == second
    shuffled = render_text(reorder(text), environ)

    def content(r: KubeRender) -> dict[str, str]:  # comments carry the manifest's line numbers
        return {k: re.sub(r"(?m)^#.*\n", "", v) for k, v in r.files.items()}

    assert content(shuffled) == content(first)
    assert [line.split(": ", 1)[1] for line in shuffled.lost] == [
        line.split(": ", 1)[1] for line in first.lost]


def test_kustomization_lists_every_file_but_the_secret() -> None:
    for name in ("her-os", "gpu-fleet", "blueprint-4090-3060"):
        result = render_case(name)
        listed = SAFE.load(result.files["kustomization.yaml"])
        assert listed["namespace"] == name_of(loads_name(name))
        assert sorted(listed["resources"]) == sorted(
            set(result.files) - {"kustomization.yaml", "secret.yaml"})
        assert result.folder == f"kubernetes/{listed['namespace']}"


def loads_name(case: str) -> str:
    manifest, environ = CASES[case]
    return loads(manifest.read_text(encoding="utf-8"), environ=read_dotenv(environ)).spec.fleet


# --- what the manifests must say ---------------------------------------------------------------

def test_volumes_make_a_statefulset_with_claims_and_the_rest_deployments() -> None:
    result = render_case("gpu-fleet")
    db = workload(result, "db")
    assert db["kind"] == "StatefulSet" and db["spec"]["serviceName"] == "db"
    assert db["spec"]["template"]["spec"]["volumes"] == [
        {"name": "pg-data", "persistentVolumeClaim": {"claimName": "pg-data"}}]
    tts = workload(result, "tts")
    assert tts["kind"] == "Deployment" and tts["spec"]["strategy"] == {"type": "Recreate"}
    claims = [d["metadata"]["name"] for d in docs(result, "volumes.yaml")]
    assert claims == ["hf-cache", "pg-data"]  # the bind mount ./data is no claim


def test_a_volume_used_on_two_machines_is_one_claim_per_machine() -> None:
    result = render_case("agents-77")
    claims = {d["metadata"]["name"] for d in docs(result, "volumes.yaml")}
    assert {"huggingface-cache-mainpc", "huggingface-cache-pc2"} <= claims


def test_probes_follow_health() -> None:
    result = render_text("""\
fleet: probes
machines: {box: {}}
services:
  api:
    image: api:1
    ports: {http: 8080, admin: {port: 9000, publish: false}}
    health: {http: /ready, port: admin, interval: 2.5s, timeout: 0.5s, retries: 4,
             start_period: 11s}
  worker:
    image: worker:1
    health: {cmd: [test, -f, /tmp/alive], interval: 10s}
""")
    api = container(result, "api")
    get = {"httpGet": {"path": "/ready", "port": 9000}}
    timing = {"periodSeconds": 3, "timeoutSeconds": 1, "failureThreshold": 4}
    assert api["readinessProbe"] == api["livenessProbe"] == {**get, **timing}
    # start_period 11 s at a 3 s period: 4 probes, then the 4 retries (dockyard's deadline).
    assert api["startupProbe"] == {**get, **timing, "failureThreshold": 8}
    worker = container(result, "worker")
    assert "startupProbe" not in worker
    assert worker["readinessProbe"] == {
        "exec": {"command": ["test", "-f", "/tmp/alive"]},
        "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3}


GPUS = """\
fleet: gpus
machines:
  a: {arch: arm64, gpus: [{memory: 24GiB}, {memory: 24GiB}]}
  b: {gpus: [{memory: 12GiB}]}
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
"""


def test_gpus_placement_and_budgets() -> None:
    result = render_text(GPUS)
    train = workload(result, "train")["spec"]["template"]["spec"]
    assert train["nodeSelector"] == {"dockyard.dev/machine": "a", "kubernetes.io/arch": "arm64"}
    assert train["containers"][0]["resources"] == {
        "limits": {"cpu": "2500m", "memory": "6Gi", "nvidia.com/gpu": 2},
        "requests": {"cpu": "2500m", "memory": "6Gi"}}
    placed = plan(loads(GPUS, environ={})).services["free"].machine  # the solver's choice
    free = workload(result, "free")["spec"]["template"]["spec"]
    assert free["nodeSelector"]["dockyard.dev/machine"] == placed
    assert free["containers"][0]["resources"] == {"limits": {"nvidia.com/gpu": 1}}


def test_copies_on_several_machines_are_one_workload_each_and_one_local_service() -> None:
    result = render_case("budgets")
    names = [d["metadata"]["name"] for d in docs(result, "services/node-exporter.yaml")
             if d["kind"] == "Deployment"]
    assert names == ["node-exporter-box", "node-exporter-spark"]
    spark = workload(result, "node-exporter", "node-exporter-spark")["spec"]["template"]["spec"]
    assert spark["nodeSelector"]["dockyard.dev/machine"] == "spark"
    assert env_of(spark["containers"][0])["OMP_NUM_THREADS"] == "20"  # spark's profile
    service = next(d for d in docs(result, "services/node-exporter.yaml") if d["kind"] == "Service")
    assert service["spec"]["internalTrafficPolicy"] == "Local"
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9100, "targetPort": 9100, "protocol": "TCP"}]


def test_published_ports_are_host_ports_and_every_port_is_on_the_service() -> None:
    result = render_case("gpu-fleet")
    ports = container(result, "llm")["ports"]
    assert {"containerPort": 8000, "protocol": "TCP", "hostPort": 18000,
            "hostIP": "127.0.0.1"} in ports
    assert {"containerPort": 8080, "protocol": "TCP", "hostPort": 80} in ports  # 0.0.0.0
    assert {"containerPort": 9100, "protocol": "TCP"} in ports  # publish: false
    service = next(d for d in docs(result, "services/llm.yaml") if d["kind"] == "Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert sorted(p["port"] for p in service["spec"]["ports"]) == [8000, 8080, 9100]


def test_container_groups_run_the_supervisor_from_a_config_map() -> None:
    result = render_case("budgets")
    config = docs(result, "services/agents.yaml")[0]
    assert config["kind"] == "ConfigMap"
    script = config["data"]["supervisor.py"]
    compile(script, "supervisor.py", "exec")  # the block literal reads back as the script
    assert "agents.critic --port 9102" in script
    pod = workload(result, "agents")["spec"]["template"]["spec"]
    assert pod["shareProcessNamespace"] is True
    c = pod["containers"][0]
    assert c["command"] == ["python3", "/opt/dockyard/supervisor.py"]
    assert {"name": "supervisor", "mountPath": "/opt/dockyard/supervisor.py",
            "subPath": "supervisor.py", "readOnly": True} in c["volumeMounts"]
    assert c["readinessProbe"]["exec"]["command"][:2] == ["/bin/sh", "-c"]
    assert "test -f /tmp/scribe.alive" in c["readinessProbe"]["exec"]["command"][2]


# --- secrets -----------------------------------------------------------------------------------

def test_no_secret_value_reaches_a_rendered_byte() -> None:
    for name, secrets in (("gpu-fleet", ["DB_PASSWORD"]), ("her-os", [
            "POSTGRES_PASSWORD", "REDIS_PASSWORD", "NEO4J_PASSWORD", "ANTHROPIC_API_KEY"])):
        environ = read_dotenv(CASES[name][1])
        result = render_case(name)
        text = "".join(result.files.values())
        for key in secrets:
            assert environ[key] not in text, f"{name}: the value of {key} was rendered"
        secret = SAFE.load(result.files["secret.yaml"].split("\n", 1)[1])
        assert secret["stringData"] == dict.fromkeys(sorted(secrets), "")


def test_secret_references_become_secret_key_refs_and_expansions() -> None:
    result = render_case("gpu-fleet")
    db = env_of(container(result, "db"))
    assert db["POSTGRES_PASSWORD"] == {"secretKeyRef": {"name": "lab-secrets",
                                                        "key": "DB_PASSWORD"}}
    llm = container(result, "llm")["env"]
    names = [e["name"] for e in llm]
    # A value embedding the secret expands a variable of its own, listed before it.
    assert env_of({"env": llm})["DATABASE_URL"] == (
        "postgresql://app:$(DOCKYARD_SECRET_DB_PASSWORD)@db:5432/app")
    assert names.index("DOCKYARD_SECRET_DB_PASSWORD") < names.index("DATABASE_URL")
    assert "DB_PASSWORD" not in names


def test_secrets_in_commands_and_probes_are_read_at_run_time() -> None:
    result = render_case("her-os")
    redis = container(result, "redis")
    assert redis["args"][2].startswith(
        "redis-server --requirepass $(DOCKYARD_SECRET_REDIS_PASSWORD) ")
    probe = redis["readinessProbe"]["exec"]["command"]
    assert probe == ["/bin/sh", "-c", 'redis-cli -a "${DOCKYARD_SECRET_REDIS_PASSWORD}" ping']
    core = env_of(container(result, "her-os-core"))
    assert core["DATABASE_URL"] == (
        "postgresql+asyncpg://heros:$(DOCKYARD_SECRET_POSTGRES_PASSWORD)@postgres:5432/heros")
    assert core["REDIS_URL"] == "redis://:$(DOCKYARD_SECRET_REDIS_PASSWORD)@redis:6379/0"
    # A variable that holds just the secret is reused rather than adding one.
    assert "DOCKYARD_SECRET_NEO4J_PASSWORD" not in core


def test_dollars_are_escaped_against_kubernetes_expansion() -> None:
    result = render_text("""\
fleet: cash
machines: {box: {}}
services:
  shop:
    image: shop:1.0
    command: "echo $$HOME costs $$(price)"
    env: {PRICE: "$$5"}
""")
    shop = container(result, "shop")
    assert shop["args"] == ["/bin/sh", "-c", "echo $$HOME costs $$(price)"]
    assert env_of(shop) == {"PRICE": "$$5"}


def test_split_finds_the_secret_only_where_the_match_is_unique() -> None:
    secrets = frozenset({"PW"})
    assert split("u:${PW:?}@h", "u:p:w@h", secrets) == [
        (False, "u:"), (True, "PW"), (False, "@h")]
    assert split("${USER}:${PW}", "a:b:c", secrets) is None  # USER a:b or a: no safe split
    assert split("${USER}:${PW}@h/${DB}", "me:pw@h/db", secrets) == [
        (False, "me:"), (True, "PW"), (False, "@h/db")]
    assert split("${PW:+on}", "on", secrets) == [(False, "on")]  # the alternative, not PW
    assert split("$${PW}", "${PW}", secrets) == [(False, "${PW}")]


def test_an_unsplittable_env_value_is_read_whole_from_the_secret() -> None:
    result = render_text("""\
fleet: mix
machines: {box: {}}
services:
  app:
    image: app:1
    env: {URL: "${USER}:${PASSWORD}"}
""", {"USER": "a:b", "PASSWORD": "c:d"})
    assert "c:d" not in "".join(result.files.values())
    assert env_of(container(result, "app"))["URL"] == {"secretKeyRef": {
        "name": "mix-secrets", "key": "URL", "optional": True}}
    assert any("URL mixes a secret" in line for line in result.lost)


def test_secrets_where_kubernetes_cannot_read_them_are_refused() -> None:
    base = """\
fleet: refuse
machines: {box: {}}
services:
  app:
%s
"""
    for body in ('    image: "app:${TOKEN:?}"',
                 '    image: app:1\n    volumes: ["/srv/${TOKEN:?}:/data"]',
                 '    image: app:1\n    agents: {a: {command: "run --key ${TOKEN:?}"}}'):
        with pytest.raises(ManifestError) as caught:
            render_text(base % body, {"TOKEN": "t0ken"})
        assert "uses a secret" in str(caught.value) and "fleet.yaml:" in str(caught.value)


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
    text = "".join(result.files.values())
    assert "k3y-value" not in text
    script = docs(result, "services/crew.yaml")[0]["data"]["supervisor.py"]
    assert '"MODE": "fast"' in script and "API_KEY" not in script
    assert env_of(container(result, "crew"))["API_KEY"] == {
        "secretKeyRef": {"name": "group-secrets", "key": "API_KEY"}}
    assert any("every agent of the group sees it" in line for line in result.lost)


# --- what Kubernetes loses, said at render time ------------------------------------------------

def test_lost_features_are_reported_with_their_location() -> None:
    result = render_text("""\
fleet: lossy
machines:
  box: {gpus: [{memory: 24GiB}, {memory: 12GiB}]}
services:
  my_db:
    image: postgres:16
    user: postgres
    restart: "no"
    volumes: ["./init:/docker-entrypoint-initdb.d"]
  app:
    image: app:1
    depends_on: {my_db: {condition: started}}
    profiles: [extra]
    gpu: {device: 1, memory: 4GiB}
""")
    lost = "\n".join(result.lost)
    assert re.search(r"fleet.yaml:12:5: service app: depends_on my_db \(started\) is not "
                     "enforced", lost)
    assert "service app: profiles (extra) have no Kubernetes equivalent" in lost
    assert "kubectl -n lossy scale deployment/app --replicas=1" in lost
    assert "gpu.device 1 on box is not kept" in lost
    assert "service my_db: named `my-db` in Kubernetes" in lost
    assert "service my_db: restart: no is not kept" in lost
    assert "service my_db: user `postgres` is a name" in lost
    assert "service my_db: `./init` has no path on a node" in lost
    assert workload(result, "app")["spec"]["replicas"] == 0


def test_container_settings_compose_keeps_are_lost_lines_here() -> None:
    """What import now carries (networks, capabilities, ulimits...) never vanishes silently."""
    result = render_text("""\
fleet: imported
machines: {box: {}}
networks: {back: {internal: true}}
services:
  app:
    image: app:1
    networks: [back]
    cap_add: [SYS_ADMIN]
    ulimits: {nofile: 65535}
    shm_size: 1g
""")
    lost = "\n".join(result.lost)
    for key in ("networks", "cap_add", "ulimits", "shm_size"):
        assert f"service app: {key} is not rendered for Kubernetes yet" in lost
    assert "NetworkPolicy" in lost
    assert "privileged" not in lost  # only what the manifest sets


def test_a_profile_asked_for_runs() -> None:
    fleet = loads((GOLDEN / "gpu-fleet" / "fleet.yaml").read_text(encoding="utf-8"),
                  environ={"DB_PASSWORD": "pw"})
    result = render_kubernetes(fleet, plan(fleet), profiles=["voice"])
    assert workload(result, "tts")["spec"]["replicas"] == 1
    assert not any("profiles" in line for line in result.lost)
    assert "# What Kubernetes does not keep of the manifest:" in result.files["kustomization.yaml"]


def test_cli_writes_the_fleet_folder_and_prints_what_is_lost(tmp_path: Path) -> None:
    manifest = GOLDEN / "gpu-fleet" / "fleet.yaml"
    result = CliRunner().invoke(app, ["-f", str(manifest), "render", "--target", "kubernetes",
                                      "-o", str(tmp_path)], env={"DB_PASSWORD": "pw-cli"})
    assert result.exit_code == 0, result.output
    folder = tmp_path / "kubernetes" / "lab"
    assert (folder / "kustomization.yaml").is_file()
    assert (folder / "services" / "llm.yaml").is_file()
    assert not (tmp_path / "compose.big.yaml").exists()
    assert "depends_on db (started) is not enforced" in result.output
    assert "pw-cli" not in "".join(p.read_text() for p in folder.rglob("*.yaml"))

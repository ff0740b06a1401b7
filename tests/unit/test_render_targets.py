"""The 4090+3060 blueprint, spark-control and agents-77 examples render for every target.

- compose, one file per machine: compared byte for byte with tests/golden/compose/<example>/
  (the compose files and .env.example; the Dockerfiles are the family goldens' concern);
- swarm and kubernetes: their goldens are tests/golden/swarm/ and tests/golden/kubernetes/
  (test_render_swarm.py, test_render_kube.py; test_kube_validate.py validates every one);
  here, that each target holds every service and copy of the plan.

After an intended change: `UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_render_targets.py`.
"""

from __future__ import annotations

import difflib
import functools
import os
import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from dockyard.manifest.interpolate import read_dotenv
from dockyard.manifest.load import Fleet, loads
from dockyard.plan import Plan, plan
from dockyard.render.files import render_all
from dockyard.render.kube import render_kubernetes
from dockyard.render.swarm import render_swarm

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "compose"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
EXAMPLES = ["agents-77", "blueprint-4090-3060", "spark-control"]  # agents-77: routed groups
SAFE = YAML(typ="safe")


@functools.cache
def load(name: str) -> tuple[Fleet, Plan, str]:
    manifest = ROOT / "examples" / name / "fleet.fixed.yaml"
    text = manifest.read_text(encoding="utf-8")
    fleet = loads(text, environ=read_dotenv(manifest.parent / ".env.example"))
    return fleet, plan(fleet), text


@pytest.mark.parametrize("name", EXAMPLES)
def test_compose_per_machine_matches_golden(name: str) -> None:
    fleet, the_plan, text = load(name)
    files = {rel: body for rel, body in render_all(fleet, the_plan, text).items()
             if rel.startswith("compose.") or rel == ".env.example"}
    folder = GOLDEN / name
    if UPDATE:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for rel, body in files.items():
            (folder / rel).write_text(body, encoding="utf-8", newline="")
    expected = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir())}
    assert sorted(expected) == sorted(files)
    problems = ["".join(difflib.unified_diff(
        expected[rel].splitlines(True), files[rel].splitlines(True),
        f"golden/compose/{name}/{rel}", f"rendered/{rel}"))
        for rel in sorted(files) if files[rel] != expected[rel]]
    if problems:
        pytest.fail("compose output differs (rerun with UPDATE_GOLDEN=1 to accept):\n"
                    + "\n".join(problems), pytrace=False)


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_target_holds_every_copy_of_the_plan(name: str) -> None:
    fleet, the_plan, text = load(name)
    copies = {(sp.name, m) for sp in the_plan.services.values() for m in sp.machines}
    machines = {m for _, m in copies}
    assert len(machines) >= 2  # both examples span machines
    rendered = render_all(fleet, the_plan, text)
    in_compose = {(service, m) for m in machines
                  for service in SAFE.load(rendered[f"compose.{m}.yaml"])["services"]}
    assert in_compose == copies
    stack = SAFE.load(render_swarm(fleet, the_plan).files["stack.yaml"])["services"]
    in_swarm = {(s["labels"]["dev.dockyard.service"], s["labels"]["dev.dockyard.machine"])
                for s in (entry["deploy"] for entry in stack.values())}
    assert in_swarm == copies
    kube = render_kubernetes(fleet, the_plan)
    workloads = {(d["metadata"]["labels"]["app.kubernetes.io/name"],
                  d["spec"]["template"]["spec"]["nodeSelector"]["dockyard.dev/machine"])
                 for body in kube.files.values() for d in SAFE.load_all(body)
                 if d and d["kind"] in ("Deployment", "StatefulSet")}
    assert workloads == copies


def test_spark_control_reaches_the_sparks_by_name_on_their_addresses() -> None:
    fleet, the_plan, text = load("spark-control")
    rendered = render_all(fleet, the_plan, text)
    controller = SAFE.load(rendered["compose.start9.yaml"])["services"]["spark-control"]
    assert controller["extra_hosts"] == ["embeddings=192.168.1.52", "kokoro=192.168.1.52",
                                         "parakeet-asr=192.168.1.52", "vllm=192.168.1.51"]
    assert controller["environment"]["VLLM_URL"] == "http://vllm:8888"
    vllm = SAFE.load(rendered["compose.spark1.yaml"])["services"]["vllm"]
    assert vllm["ports"] == ["127.0.0.1:8888:8888", "192.168.1.51:8888:8888"]  # not 0.0.0.0
    spark2 = SAFE.load(rendered["compose.spark2.yaml"])["services"]
    assert "ports" not in spark2["qdrant"]  # reached by embeddings, beside it: not routed

"""Budgets become settings (vLLM flag, torch/ollama env, devices) and container groups."""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from dockyard.checks.memory import vllm_budget
from dockyard.manifest.load import Fleet, loads
from dockyard.plan import plan
from dockyard.plan.budget import fraction, written_utilization
from dockyard.render.files import render_all

BOX = """\
fleet: b
machines:
  box:
    memory: 64GiB
    gpus: [{memory: 24GiB}, {memory: 12GiB}]
    profile: {OMP_NUM_THREADS: "8"}
"""


def fleet_of(services: str, head: str = BOX) -> Fleet:
    return loads(head + "services:\n" + services, environ={})


def compose(services: str, head: str = BOX, machine: str = "box") -> dict[str, dict]:
    fleet = fleet_of(services, head)
    files = render_all(fleet, plan(fleet), "")
    return YAML(typ="safe").load(files[f"compose.{machine}.yaml"])["services"]


def test_fraction_is_rounded_down_to_two_decimals() -> None:
    assert fraction(20 * 2**30, 24 * 2**30) == 0.83  # 0.8333
    assert fraction(6 * 2**30, 12 * 2**30) == 0.5
    assert fraction(0, 24 * 2**30) is None and fraction(2**30, 0) is None
    assert fraction(30 * 2**30, 24 * 2**30) == 1.0


def test_vllm_budget_becomes_gpu_memory_utilization() -> None:
    out = compose("  llm:\n    image: vllm/vllm-openai:v0.8.5\n    command: [--model, m]\n"
                  "    gpu: {memory: 20GiB, runtime: vllm, device: 0}\n")
    assert out["llm"]["command"] == ["--model", "m", "--gpu-memory-utilization", "0.83"]
    assert out["llm"]["environment"]["CUDA_VISIBLE_DEVICES"] == "0"
    # On the 12 GiB card the same budget would not fit; 6 GiB there is half of it.
    out = compose("  llm:\n    image: vllm/vllm-openai:v0.8.5\n    command: vllm serve m\n"
                  "    gpu: {memory: 6GiB, runtime: vllm, device: 1}\n")
    assert out["llm"]["command"] == ["/bin/sh", "-c", "vllm serve m --gpu-memory-utilization 0.50"]
    assert out["llm"]["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == ["1"]


def test_a_written_utilization_is_kept_and_reported_when_above_the_budget() -> None:
    services = ("  llm:\n    image: vllm/vllm-openai:v0.8.5\n"
                "    command: [--gpu-memory-utilization, '0.95']\n"
                "    gpu: {memory: 12GiB, runtime: vllm, device: 0}\n")
    out = compose(services)
    assert out["llm"]["command"] == ["--gpu-memory-utilization", "0.95"]
    fleet = fleet_of(services)
    findings = list(vllm_budget(fleet, plan(fleet)))
    assert [f.code for f in findings] == ["DY210"]
    assert "0.95" in findings[0].message and "0.50" in findings[0].fix
    assert findings[0].where.line == 10  # the `command:` line
    low = services.replace("'0.95'", "'0.4'")
    assert list(vllm_budget(fleet_of(low), plan(fleet_of(low)))) == []
    assert written_utilization(["/bin/sh", "-c", "vllm serve --gpu-memory-utilization=0.7"]) \
        == "0.7"


def test_torch_budget_is_env_the_service_applies() -> None:
    out = compose("  emb:\n    image: e:1\n    gpu: {memory: 6GiB, runtime: torch, device: 1}\n")
    env = out["emb"]["environment"]
    assert env["DOCKYARD_GPU_MEMORY_FRACTION"] == "0.50"
    assert env["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"
    assert env["DOCKYARD_GPU_MEMORY_BUDGET"] == str(6 * 2**30)
    assert env["OMP_NUM_THREADS"] == "8"  # the machine's profile
    # The user's allocator setting wins.
    out = compose("  emb:\n    image: e:1\n    gpu: {memory: 6GiB, runtime: torch}\n"
                  "    env: {PYTORCH_CUDA_ALLOC_CONF: 'max_split_size_mb:64'}\n")
    assert out["emb"]["environment"]["PYTORCH_CUDA_ALLOC_CONF"] == "max_split_size_mb:64"


def test_ollama_keeps_the_rest_of_the_gpu_free() -> None:
    out = compose("  chat:\n    image: ollama/ollama:0.6.5\n"
                  "    gpu: {memory: 16GiB, runtime: ollama, device: 0}\n")
    assert out["chat"]["environment"]["OLLAMA_GPU_OVERHEAD"] == str(8 * 2**30)
    assert "command" not in out["chat"]


def test_two_gpus_are_renumbered_inside_the_container() -> None:
    head = ("fleet: b\nmachines:\n  box:\n"
            "    gpus: [{memory: 24GiB}, {memory: 24GiB}, {memory: 24GiB}]\n")
    out = compose("  big:\n    image: x:1\n    gpu: {memory: 20GiB, count: 2}\n"
                  "  one:\n    image: y:1\n    gpu: {memory: 20GiB}\n", head)
    devices = out["big"]["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"]
    assert len(devices) == 2 and out["big"]["environment"]["CUDA_VISIBLE_DEVICES"] == "0,1"
    other = out["one"]["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"]
    assert set(devices).isdisjoint(other)  # the planner gave each GPU to one service


def test_copies_render_into_each_machines_compose_with_its_profile() -> None:
    head = ("fleet: b\nmachines:\n  a: {profile: {OMP_NUM_THREADS: '4'}}\n"
            "  c: {profile: {OMP_NUM_THREADS: '12'}}\n")
    services = "  exporter:\n    image: prom/node-exporter:v1.8.2\n    machines: [a, c]\n"
    assert compose(services, head, "a")["exporter"]["environment"] == {"OMP_NUM_THREADS": "4"}
    assert compose(services, head, "c")["exporter"]["environment"] == {"OMP_NUM_THREADS": "12"}


GROUP = """\
  crew:
    image: ghcr.io/x/crew:1.0
    agents:
      web:
        command: [python3, -m, http.server, "9201"]
        ports: {http: "9201"}
        health: {http: /}
      tick:
        command: "sleep 1000"
        health: {cmd: ["true"]}
"""


def test_a_container_group_runs_its_agents_under_the_supervisor() -> None:
    fleet = fleet_of(GROUP)
    files = render_all(fleet, plan(fleet), "")
    crew = YAML(typ="safe").load(files["compose.box.yaml"])["services"]["crew"]
    assert crew["entrypoint"] == ["python3", "/opt/dockyard/supervisor.py"]
    assert crew["init"] is True
    assert "./services/crew.supervisor.py:/opt/dockyard/supervisor.py:ro" in crew["volumes"]
    assert crew["ports"] == ["127.0.0.1:9201:9201"]
    test = crew["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL" and "http://127.0.0.1:9201/" in test[1] and "true && " in test[1]
    script = files["services/crew.supervisor.py"]
    compile(script, "supervisor.py", "exec")
    assert '"sleep 1000"' in script and '"http.server"' in script


@pytest.mark.parametrize("runtime", ["generic", "vllm", "torch", "ollama"])
def test_no_gpu_no_budget_settings(runtime: str) -> None:
    out = compose(f"  s:\n    image: s:1\n    gpu: {{count: 0, runtime: {runtime}}}\n")
    assert out["s"]["environment"] == {"OMP_NUM_THREADS": "8"}
    assert "deploy" not in out["s"]

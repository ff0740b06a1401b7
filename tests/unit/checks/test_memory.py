"""DY2xx: GPU memory per device, unified pools, host memory, CPUs."""

from __future__ import annotations

from dockyard.checks import Severity
from tests.unit.checks.helpers import GPU, HEALTH, assert_finding, findings, only

# --- DY201 / DY202: GPU budget --------------------------------------------------------------

def test_dy201_budgets_over_one_gpu() -> None:
    text = GPU + """\
services:
  llm:
    image: vllm/vllm-openai:v0.8.5
    gpu: {memory: 20GiB, device: 0}
""" + HEALTH + """\
  embed:
    image: ghcr.io/x/embed:1.0
    gpu:
      memory: 8GiB
      device: 0
""" + HEALTH
    f = only(text, "DY201")
    # Checked by name (embed, llm): the finding points at the last one's budget.
    assert_finding(f, "DY201", Severity.ERROR, "fleet.yaml:8:11", "llm")
    assert "embed" in f.message
    assert "24.0 GiB" in f.message and "28.0 GiB" in f.message


def test_dy201_budgets_that_fit_each_gpu() -> None:
    text = GPU + """\
services:
  llm:
    image: vllm/vllm-openai:v0.8.5
    gpu: {memory: 20GiB}
""" + HEALTH + """\
  embed:
    image: ghcr.io/x/embed:1.0
    gpu: {memory: 8GiB, device: 1}
""" + HEALTH + """\
  tiny:
    image: ghcr.io/x/tiny:1.0
    gpu: {memory: 4GiB}
""" + HEALTH
    assert findings(text, "DY201") == []
    assert findings(text, "DY202") == []


def test_dy201_gpu_memory_unknown_is_no_budget() -> None:
    text = """\
fleet: demo
machines:
  box: {gpus: [{model: unknown}]}
services:
  llm:
    image: vllm/vllm-openai:v0.8.5
    gpu: {memory: 200GiB}
""" + HEALTH
    assert findings(text, "DY201") == []


def test_dy202_device_the_machine_does_not_have() -> None:
    text = GPU + """\
services:
  llm:
    image: vllm/vllm-openai:v0.8.5
    gpu: {memory: 20GiB, device: 2}
""" + HEALTH
    f = only(text, "DY202")
    assert_finding(f, "DY202", Severity.ERROR, "fleet.yaml:8:5", "llm")
    assert "box" in f.message and "gpus" in f.fix


def test_dy202_gpu_service_placed_on_a_machine_without_gpus() -> None:
    text = """\
fleet: demo
machines:
  cpu: {}
  gpu: {gpus: [{memory: 24GiB}]}
services:
  llm:
    image: vllm/vllm-openai:v0.8.5
    machine: cpu
    gpu: {memory: 8GiB}
""" + HEALTH
    f = only(text, "DY202")
    assert_finding(f, "DY202", Severity.ERROR, "fleet.yaml:9:5", "llm")
    assert "0 GPU(s)" in f.message


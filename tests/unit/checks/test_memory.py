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



# --- DY201 / DY202 per device, with gpu.count ------------------------------------------------

TWO_24 = """\
fleet: demo
machines:
  box:
    gpus: [{memory: 24GiB}, {memory: 24GiB}]
"""


def test_dy201_a_multi_gpu_service_counts_on_each_of_its_gpus() -> None:
    text = TWO_24 + """\
services:
  llm:
    image: vllm/vllm-openai:v0.8.5
    gpu: {memory: 20GiB, count: 2}
""" + HEALTH + """\
  embed:
    image: ghcr.io/x/embed:1.0
    gpu: {memory: 8GiB, device: 1}
""" + HEALTH
    f = only(text, "DY201")
    assert_finding(f, "DY201", Severity.ERROR, "fleet.yaml:8:11", "llm")
    assert "GPU 1 of box" in f.message and "embed" in f.message
    assert "28.0 GiB" in f.message


def test_dy201_a_multi_gpu_service_that_fits() -> None:
    text = TWO_24 + """\
services:
  llm:
    image: vllm/vllm-openai:v0.8.5
    gpu: {memory: 20GiB, count: 2}
""" + HEALTH + """\
  embed:
    image: ghcr.io/x/embed:1.0
    gpu: {memory: 4GiB, device: 1}
""" + HEALTH
    assert findings(text, "DY201") == []
    assert findings(text, "DY202") == []


def test_dy202_more_gpus_than_the_machine_has() -> None:
    text = TWO_24 + """\
services:
  llm:
    image: vllm/vllm-openai:v0.8.5
    gpu: {memory: 20GiB, count: 3, device: 0}
""" + HEALTH
    f = only(text, "DY202")
    assert_finding(f, "DY202", Severity.ERROR, "fleet.yaml:8:5", "llm")
    assert "2 GPU(s)" in f.message


def test_dy201_copies_on_two_machines_count_per_machine() -> None:
    text = """\
fleet: demo
machines:
  a: {gpus: [{memory: 24GiB}]}
  b: {gpus: [{memory: 24GiB}]}
services:
  embed:
    image: ghcr.io/x/embed:1.0
    machines: [a, b]
    gpu: {memory: 16GiB, device: 0}
""" + HEALTH + """\
  llm:
    image: vllm/vllm-openai:v0.8.5
    machine: b
    gpu: {memory: 16GiB, device: 0}
""" + HEALTH
    f = only(text, "DY201")
    assert "GPU 0 of b" in f.message and "embed, llm" in f.message


# --- DY203: unified memory (DGX Spark) -------------------------------------------------------

SPARK = """\
fleet: demo
machines:
  spark:
    arch: arm64
    memory: 128GiB
    gpus: [{model: GB10, memory: 128GiB, unified: true}]
"""


def test_dy203_gpu_budgets_and_memory_limits_share_one_pool() -> None:
    text = SPARK + """\
services:
  llm:
    image: vllm/vllm-openai:v0.8.5
    gpu: {memory: 90GiB, device: 0}
""" + HEALTH + """\
  db:
    image: postgres:16.4
    memory: 48GiB
""" + HEALTH
    f = only(text, "DY203")
    # By name: db, then llm; the finding points at the last one's budget.
    assert_finding(f, "DY203", Severity.ERROR, "fleet.yaml:10:11", "llm")
    assert "db" in f.message and "138.0 GiB" in f.message and "128.0 GiB" in f.message
    assert findings(text, "DY201") == []  # each alone fits the GPU: only the pool is over


def test_dy203_pool_that_fits() -> None:
    text = SPARK + """\
services:
  llm:
    image: vllm/vllm-openai:v0.8.5
    gpu: {memory: 60GiB, device: 0}
""" + HEALTH + """\
  db:
    image: postgres:16.4
    memory: 48GiB
""" + HEALTH
    assert findings(text, "DY203") == []
    assert findings(text, "DY204") == []


# --- DY204: host memory, DY205: CPUs ---------------------------------------------------------

SMALL = """\
fleet: demo
machines:
  small: {cpus: 4, memory: 16GiB}
"""


def test_dy204_memory_limits_above_machine_memory() -> None:
    text = SMALL + """\
services:
  api:
    image: ghcr.io/x/api:1.0
    memory: 10GiB
""" + HEALTH + """\
  worker:
    image: ghcr.io/x/worker:1.0
    memory: 10GiB
""" + HEALTH
    f = only(text, "DY204")
    assert_finding(f, "DY204", Severity.WARNING, "fleet.yaml:11:5", "worker")
    assert "api" in f.message and "20.0 GiB" in f.message and "16.0 GiB" in f.message


def test_dy205_cpu_oversubscription_is_a_warning() -> None:
    text = SMALL + """\
services:
  api:
    image: ghcr.io/x/api:1.0
    cpus: 3
""" + HEALTH + """\
  worker:
    image: ghcr.io/x/worker:1.0
    cpus: 2.5
""" + HEALTH
    f = only(text, "DY205")
    assert_finding(f, "DY205", Severity.WARNING, "fleet.yaml:11:5", "worker")
    assert "5.5" in f.message and "4 CPUs" in f.message


def test_dy204_dy205_limits_that_fit() -> None:
    text = SMALL + """\
services:
  api:
    image: ghcr.io/x/api:1.0
    memory: 6GiB
    cpus: 2
""" + HEALTH + """\
  worker:
    image: ghcr.io/x/worker:1.0
    memory: 6GiB
    cpus: 2
""" + HEALTH
    assert findings(text, "DY204") == []
    assert findings(text, "DY205") == []


# --- DY206: a GPU service with no budget beside others, or on a unified-memory machine -------

def _gpu_svc(name: str, gpu: str) -> str:
    return (f"  {name}:\n    image: ghcr.io/x/{name}:1.0\n    machine: box\n"
            f"    gpu: {gpu}\n" + HEALTH)


def test_dy206_an_unbudgeted_service_sharing_a_gpu() -> None:
    text = GPU + "services:\n" + _gpu_svc("llm", "{device: 0}") + _gpu_svc(
        "tts", "{device: 0, memory: 2GiB}")
    found = findings(text, "DY206")
    assert len(found) == 1 and found[0].severity is Severity.WARNING
    assert found[0].message.startswith("llm has no GPU memory budget on GPU 0 of box, shared by 2")
    assert str(found[0].where) == "fleet.yaml:9:5"  # llm's `gpu:`


def test_dy206_alone_on_a_unified_memory_gpu() -> None:
    spark = ("fleet: demo\nmachines:\n  box:\n    memory: 128GiB\n"
             "    gpus: [{model: NVIDIA GB10, memory: 128GiB, unified: true}]\n")
    found = findings(spark + "services:\n" + _gpu_svc("vllm", "{}"), "DY206")
    assert len(found) == 1 and "draws on the machine's memory" in found[0].message


def test_dy206_absent_when_budgeted_or_alone_on_its_own_card() -> None:
    both = GPU + "services:\n" + _gpu_svc("llm", "{device: 0, memory: 20GiB}") + _gpu_svc(
        "tts", "{device: 0, memory: 2GiB}")
    assert findings(both, "DY206") == []
    apart = GPU + "services:\n" + _gpu_svc("llm", "{device: 0}") + _gpu_svc(
        "tts", "{device: 1}")
    assert findings(apart, "DY206") == []


def test_dy202_quiet_when_the_fleet_describes_no_gpus() -> None:
    # `dockyard import` writes `local: {}`: what the machine has is unknown, not "0 GPUs".
    text = """\
fleet: demo
machines:
  local: {}
services:
  ollama:
    image: ollama/ollama:0.5.7
    gpu: {count: 1}
""" + HEALTH
    assert findings(text, "DY202") == []

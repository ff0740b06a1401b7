"""A GPU memory budget turned into what makes the process honour it, per `gpu.runtime`.

- `vllm`: `--gpu-memory-utilization F`, F = budget / that GPU's memory, two decimals rounded
  down (vLLM takes the fraction of the whole card for weights + KV cache). A value the user
  already wrote is kept; checks/memory.py reports it (DY210) when it asks for more than the
  budget.
- `torch`: `DOCKYARD_GPU_MEMORY_FRACTION=F` for the service to pass to
  `torch.cuda.set_per_process_memory_fraction(F)` at start (PyTorch has no env var for it), and
  `PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True` (less fragmentation, so the budget holds)
  unless the service or its machine's profile sets the allocator itself.
- `ollama`: `OLLAMA_GPU_OVERHEAD` = GPU memory - budget (bytes): Ollama keeps that much of each
  GPU free when it decides how many layers to offload, so its models stay within the budget.
- every runtime, `generic` included: `DOCKYARD_GPU_MEMORY_BUDGET` (bytes) when a budget is set.

Every GPU service also gets `CUDA_VISIBLE_DEVICES` (0..n-1: the container only sees the GPUs
reserved for it, renumbered from 0) beside compose's device reservation of the chosen GPU(s);
one with `count: all` gets every GPU and no CUDA_VISIBLE_DEVICES.
"""

from __future__ import annotations

from dockyard.manifest.load import Fleet
from dockyard.manifest.models import ServiceSpec
from dockyard.plan.budget import FLAG, fraction, smallest_capacity, written_utilization
from dockyard.plan.model import ServicePlan


def budget_env(fleet: Fleet, sp: ServicePlan, machine: str, env: dict[str, str]
               ) -> dict[str, str]:
    """Env to add for the copy of `sp` on `machine` (never overriding what is in `env`)."""
    gpus = sp.gpus_on(machine)
    if not gpus:
        return {}
    gpu = sp.spec.gpu
    # `count: all` hands the container every GPU: it numbers them itself.
    add: dict[str, str] = {} if gpu and gpu.count == "all" else {
        "CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in range(len(gpus)))}
    budget = gpu.memory if gpu else 0
    capacity = smallest_capacity(fleet, machine, gpus)
    if budget:
        add["DOCKYARD_GPU_MEMORY_BUDGET"] = str(budget)
    share = fraction(budget, capacity)
    runtime = gpu.runtime if gpu else "generic"
    if runtime == "torch":
        if share is not None:
            add["DOCKYARD_GPU_MEMORY_FRACTION"] = f"{share:.2f}"
        if not any(k in env for k in ("PYTORCH_CUDA_ALLOC_CONF", "TORCH_CUDA_ALLOC_CONF")):
            add["PYTORCH_CUDA_ALLOC_CONF"] = "expandable_segments:True"
    elif runtime == "ollama" and budget and capacity > budget:
        add["OLLAMA_GPU_OVERHEAD"] = str(capacity - budget)
    return {k: v for k, v in add.items() if k not in env}


def budget_command(fleet: Fleet, sp: ServicePlan, machine: str, command: list[str]
                   ) -> list[str]:
    """A vLLM command with the budget's `--gpu-memory-utilization` appended (when missing)."""
    gpu = sp.spec.gpu
    if not gpu or gpu.runtime != "vllm" or written_utilization(command) is not None:
        return command
    share = fraction(gpu.memory, smallest_capacity(fleet, machine, sp.gpus_on(machine)))
    if share is None:
        return command
    flag = f"{FLAG} {share:.2f}"
    if command[:2] == ["/bin/sh", "-c"] and len(command) == 3:
        return [*command[:2], f"{command[2]} {flag}"]
    return [*command, FLAG, f"{share:.2f}"]


def needs_command(svc: ServiceSpec) -> bool:
    """A vLLM service's command is rendered into compose, where the budget flag is added."""
    return bool(svc.gpu and svc.gpu.runtime == "vllm" and svc.gpu.memory)

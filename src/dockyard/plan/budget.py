"""A GPU memory budget as a share of the GPU it runs on: the arithmetic both render (the
vLLM flag, the torch and ollama settings) and checks (DY210, a flag written above the budget)
use, so the two never disagree on the share."""

from __future__ import annotations

import math

from dockyard.manifest.load import Fleet
from dockyard.plan.model import ServicePlan

FLAG = "--gpu-memory-utilization"


def gpu_capacity(fleet: Fleet, machine: str, device: int) -> int:
    """Memory of GPU `device` on `machine` (a unified GPU: the machine's memory); 0 unknown."""
    spec = fleet.spec.machines[machine]
    if device >= len(spec.gpus):
        return 0
    gpu = spec.gpus[device]
    return gpu.memory or (spec.memory if gpu.unified else 0)


def fraction(budget: int, capacity: int) -> float | None:
    """budget / capacity, two decimals rounded down; None when either is unknown."""
    if not budget or not capacity:
        return None
    return min(1.0, math.floor(budget * 100 / capacity) / 100)


def smallest_capacity(fleet: Fleet, machine: str, gpus: tuple[int, ...]) -> int:
    """The memory of the smallest of `gpus` on `machine`; 0 when any is unknown."""
    caps = [gpu_capacity(fleet, machine, g) for g in gpus]
    return min(caps) if caps and all(caps) else 0


def written_utilization(command: list[str]) -> str | None:
    """The `--gpu-memory-utilization` value already in a command, if any."""
    words = [w for part in command for w in part.split()]
    for i, word in enumerate(words):
        if word == FLAG and i + 1 < len(words):
            return words[i + 1]
        if word.startswith(FLAG + "="):
            return word.split("=", 1)[1]
    return None


def gpu_choices_lost(fleet: Fleet, sp: ServicePlan, chooser: str
                     ) -> list[tuple[tuple[str | int, ...], str]]:
    """Where an orchestrator that hands out GPUs itself (`chooser`: Kubernetes' device
    plugin, Swarm's generic resources) may not keep the planned GPU: a pinned `gpu.device`,
    or a machine whose GPUs differ in size (the budget's settings were computed for the
    planned one). (manifest path, what is lost) for each."""
    gpu, name = sp.spec.gpu, sp.name
    out: list[tuple[tuple[str | int, ...], str]] = []
    for machine in sp.machines:
        gpus = sp.gpus_on(machine)
        sizes = {gpu_capacity(fleet, machine, g)
                 for g in range(len(fleet.spec.machines[machine].gpus))}
        if gpu and gpu.device is not None:
            out.append((("services", name, "gpu", "device"),
                        f"gpu.device {gpu.device} on {machine} is not kept: {chooser} chooses "
                        "the GPU"))
        elif gpus and gpu and gpu.memory and len(sizes) > 1:
            out.append((("services", name, "gpu"),
                        f"planned on GPU {gpus[0]} of {machine}, whose GPUs differ in size: "
                        f"{chooser} may choose another, and its memory budget settings were "
                        "computed for that one"))
    return out

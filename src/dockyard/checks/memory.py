"""DY2xx: GPU memory, host memory and CPUs per machine.

A service's `gpu.memory` is its budget on *each* of the `gpu.count` GPUs it gets. On a
unified-memory machine (DGX Spark / GB10: `unified: true`) the GPU allocates from system
RAM, so GPU budgets and container memory limits are drawn from one pool, the machine's
memory (FIELD-NOTES: NordicHPC/sonar#460).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from dockyard.checks.rules import Rule, copies, names
from dockyard.findings import Code, Finding, Severity
from dockyard.manifest.load import Fleet
from dockyard.plan.budget import FLAG, fraction, smallest_capacity, written_utilization
from dockyard.plan.model import Plan

GiB = 1024**3

CODES = {c.code: c for c in (
    Code("DY201", Severity.ERROR, "GPU memory budgets on one GPU add up to more than it has",
         "lower the budgets or move a service to another GPU or machine"),
    Code("DY202", Severity.ERROR, "a service asks for a GPU its machine does not list",
         "add the GPU to `machines.<m>.gpus`, lower `gpu.count` or choose another device"),
    Code("DY203", Severity.ERROR, "on a unified-memory machine, GPU budgets plus container "
         "memory limits exceed the machine's memory (one shared pool)",
         "lower GPU budgets or memory limits, or move a service to another machine"),
    Code("DY204", Severity.WARNING, "container memory limits on one machine add up to more "
         "than its memory", "lower the limits or move a service to another machine"),
    Code("DY205", Severity.WARNING, "CPU limits on one machine add up to more than its CPUs",
         "lower `cpus:` or move a service to another machine"),
    Code("DY206", Severity.WARNING, "a GPU service has no `gpu.memory` budget but shares its GPU "
         "with other services, or runs on a unified-memory machine: it may take the whole "
         "card (vLLM takes 90% by default)", "give it a `gpu.memory` budget"),
    Code("DY210", Severity.WARNING, "a vLLM `--gpu-memory-utilization` written by hand is above "
         "the service's GPU budget", "remove the flag (dockyard renders the budget's share) or "
         "raise `gpu.memory`"),
)}


def _gib(n: float) -> str:
    return f"{n / GiB:.1f} GiB"


def gpu_budget(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY201 / DY202: per GPU device, the budgets of every copy that reserves it."""
    used: dict[tuple[str, int], list[str]] = defaultdict(list)
    total: dict[tuple[str, int], int] = defaultdict(int)
    # A fleet that lists no GPU anywhere (`local: {}`, as import writes it) has not said what
    # its machines have: their GPUs are unknown, not zero.
    described = any("gpus" in m.model_fields_set for m in fleet.spec.machines.values())
    for copy in copies(plan):
        gpu = copy.spec.gpu
        machine = fleet.spec.machines.get(copy.machine)
        if gpu is None or not gpu.count or machine is None or not described:
            continue
        listed = len(machine.gpus)
        missing = [d for d in copy.gpus if d >= listed]
        if missing or gpu.number > listed:
            asked = (f"GPU {missing[0]}" if missing and gpu.count == 1
                     else f"{gpu.count} GPU(s)" if not missing
                     else f"GPUs {', '.join(map(str, copy.gpus))}")
            yield Finding(
                "DY202", Severity.ERROR, fleet.where("services", copy.name, "gpu"),
                f"service {copy.name} asks for {asked} of machine {copy.machine}, which lists "
                f"{listed} GPU(s)",
                f"add the GPU to machines.{copy.machine}.gpus, lower `gpu.count` or choose "
                "another device", service=copy.name)
            continue
        if gpu.memory:
            for device in copy.gpus:
                used[(copy.machine, device)].append(copy.name)
                total[(copy.machine, device)] += gpu.memory
    for (on, device), who in sorted(used.items()):
        capacity = fleet.spec.machines[on].gpus[device].memory
        if capacity and total[(on, device)] > capacity:
            yield Finding(
                "DY201", Severity.ERROR, fleet.where("services", who[-1], "gpu", "memory"),
                f"GPU {device} of {on} has {_gib(capacity)} but {names(who)} ask for "
                f"{_gib(total[(on, device)])} together",
                "lower the budgets or move a service to another GPU or machine",
                service=who[-1])


def machine_pools(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY203 unified pool, DY204 host memory, DY205 CPUs: sums per machine."""
    memory: dict[str, int] = defaultdict(int)
    unified: dict[str, int] = defaultdict(int)
    cpus: dict[str, float] = defaultdict(float)
    last: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {}
    members: dict[tuple[str, str], list[str]] = defaultdict(list)
    for copy in copies(plan):
        machine = fleet.spec.machines.get(copy.machine)
        if machine is None:
            continue
        m, svc = copy.machine, copy.spec
        if svc.memory:
            memory[m] += svc.memory
            last[(m, "memory")] = (copy.name, ("memory",))
            members[(m, "memory")].append(copy.name)
        if svc.cpus:
            cpus[m] += svc.cpus
            last[(m, "cpus")] = (copy.name, ("cpus",))
            members[(m, "cpus")].append(copy.name)
        gpu_share = sum(svc.gpu.memory for d in copy.gpus
                        if svc.gpu and d < len(machine.gpus) and machine.gpus[d].unified)
        if any(g.unified for g in machine.gpus) and (gpu_share or svc.memory):
            unified[m] += gpu_share + svc.memory
            last[(m, "unified")] = (copy.name, ("gpu", "memory") if gpu_share else ("memory",))
            members[(m, "unified")].append(copy.name)
    for m, spec in sorted(fleet.spec.machines.items()):
        is_unified = any(g.unified for g in spec.gpus)
        pool = spec.memory or max((g.memory for g in spec.gpus if g.unified), default=0)
        if is_unified and pool and unified[m] > pool:
            who, path = last[(m, "unified")]
            yield Finding(
                "DY203", Severity.ERROR, fleet.where("services", who, *path),
                f"machine {m} has unified memory: GPU budgets and memory limits of "
                f"{names(members[(m, 'unified')])} share its {_gib(pool)} and add up to "
                f"{_gib(unified[m])}",
                "lower GPU budgets or memory limits, or move a service to another machine",
                service=who)
        elif not is_unified and spec.memory and memory[m] > spec.memory:
            who, path = last[(m, "memory")]
            yield Finding(
                "DY204", Severity.WARNING, fleet.where("services", who, *path),
                f"memory limits of {names(members[(m, 'memory')])} on machine {m} add up to "
                f"{_gib(memory[m])}, more than its {_gib(spec.memory)}",
                "lower the limits or move a service to another machine", service=who)
        if spec.cpus and cpus[m] > spec.cpus:
            who, path = last[(m, "cpus")]
            yield Finding(
                "DY205", Severity.WARNING, fleet.where("services", who, *path),
                f"CPU limits of {names(members[(m, 'cpus')])} on machine {m} add up to "
                f"{cpus[m]:g}, more than its {spec.cpus:g} CPUs",
                "lower `cpus:` or move a service to another machine", service=who)


def unbudgeted_gpu(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY206: nothing keeps a GPU service without a budget from starving its neighbours.
    One finding per GPU, at its first service without a budget, naming all of them."""
    on_gpu: dict[tuple[str, int], list[tuple[str, bool]]] = defaultdict(list)
    for copy in copies(plan):
        gpu = copy.spec.gpu
        if gpu is not None and gpu.count:
            for device in copy.gpus:
                on_gpu[(copy.machine, device)].append((copy.name, bool(gpu.memory)))
    for (on, device), users in sorted(on_gpu.items()):
        machine = fleet.spec.machines.get(on)
        open_ = [n for n, budgeted in users if not budgeted]
        if not open_ or machine is None or device >= len(machine.gpus):
            continue
        unified = machine.gpus[device].unified
        if len(users) < 2 and not unified:
            continue
        shown = ", ".join(open_[:6]) + (f" and {len(open_) - 6} more" if len(open_) > 6 else "")
        where_ = (f"GPU {device} of {on}, which draws on the machine's memory"
                  if unified and len(users) < 2
                  else f"GPU {device} of {on}, shared by {len(users)} services")
        one = len(open_) == 1
        yield Finding(
            "DY206", Severity.WARNING, fleet.where("services", open_[0], "gpu"),
            f"{shown} {'has' if one else 'have'} no GPU memory budget on {where_}: "
            f"{'it' if one else 'any one'} may take all of it (vLLM takes 90% by default, "
            "PyTorch's allocator keeps what it had)",
            f"give {'it' if one else 'each'} a `gpu.memory:` (dockyard renders it into the "
            "server's settings)", service=open_[0])


def vllm_budget(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY210: a vLLM `--gpu-memory-utilization` written by hand above the GPU budget."""
    for name, sp in sorted(plan.services.items()):
        gpu = sp.spec.gpu
        if not gpu or gpu.runtime != "vllm":
            continue
        written = written_utilization(sp.spec.command)
        for machine in sp.machines:
            share = fraction(gpu.memory, smallest_capacity(fleet, machine, sp.gpus_on(machine)))
            try:
                value = float(written) if written is not None else None
            except ValueError:
                value = None
            if share is not None and value is not None and value > share + 0.005:
                yield Finding(
                    "DY210", Severity.WARNING, fleet.where("services", name, "command"),
                    f"service {name} tells vLLM {FLAG} {written}, but its GPU budget is "
                    f"{share:.2f} of the GPU on {machine}: it would take more than planned",
                    f"remove the flag (dockyard renders {FLAG} {share:.2f}) or raise "
                    "`gpu.memory`")
                break


RULES: list[Rule] = [gpu_budget, machine_pools, unbudgeted_gpu, vllm_budget]

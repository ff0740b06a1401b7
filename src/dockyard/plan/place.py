"""place(fleet): which machine, and which GPUs there, every copy of every service runs on.

Services that say where they run (`machine:` on a machine with one GPU or with `gpu.device`,
`machines:`, or a fleet of one machine) are *fixed*: no solver is needed when all are. The rest
are placed by OR-Tools CP-SAT, an exact solver, under these constraints:

- GPU memory per GPU (`gpu.memory` is per GPU; `gpu.count` GPUs on one machine), host memory,
  CPUs, each net of what the fixed services already take; an unknown capacity (0) is no limit;
  on a unified-memory machine (DGX Spark) GPU budgets also count against host memory;
- `needs: [gpu]` (a GPU is reserved even without a budget; `cpu` asks for nothing special);
- `affinity` and `group`: the linked services share one machine (with a `machines:` service:
  one of its machines); `anti_affinity`: never on the same machine;
- published host ports, the agents' included: two services that publish the same host port
  (same protocol, overlapping bind address) never share a machine.

Objective, in this order: (1) the fullest GPU the solver can choose, in per mille of its memory,
as low as possible: headroom for KV caches and fragmentation goes where it is scarcest;
(2) with that peak held, as few cross-machine `depends_on` links as possible: a service and
what it talks to on one machine saves a network hop and a failure mode. ("Fewest machines" was
tried as the second goal: it is bin packing, and on 100 machines the solver could not prove it
within seconds; the link count's bound is tight in practice.)

Two solves: (1) on a relaxation holding only the groups with a GPU service (leaving services
out can only lower the best peak, so its optimum bounds the fleet's); (2) everything, the peak
held at (1)'s value, minimising links, hinted with (1)'s answer. Should the rest not fit beside
(1)'s answer, one weighted solve (peak x (links + 1) + links) decides both. OPTIMAL means
both are proven; otherwise the gap is reported.

The solve is deterministic: one worker, a fixed seed and a deterministic time limit. When no
placement exists, the error names a smallest set of services that cannot be placed together:
the solver's infeasible core over "service is placed" assumptions, shrunk one by one.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dockyard.errors import PlacementError
from dockyard.manifest.load import Fleet
from dockyard.manifest.models import ServiceSpec
from dockyard.plan.model import Placement, PlacementReport, Plan

if TYPE_CHECKING:
    from ortools.sat.python import cp_model

MiB = 1024 * 1024
GiB = 1024 * MiB


def _mib(n: int) -> int:
    """Sizes enter the solver in whole MiB, rounded down like every capacity is: rounding
    budgets up instead made 3 x 8GB (decimal) miss a 24GB GPU they fill exactly (22890 MiB
    asked of 22888). The exact sums are judged by the checks (DY201/DY203/DY204)."""
    return n // MiB
WILDCARD = frozenset({"0.0.0.0", "*", "::", ""})
SCALE = 100  # the peak is measured in whole percent
TIME_LIMIT = 5.0  # deterministic seconds (the solver's own work units, about a wall second)


@dataclass(frozen=True)
class Need:
    """What one copy of a service takes from a machine."""

    name: str
    gpus: int  # GPUs per copy
    device: int | None  # a GPU index written in the manifest
    gpu_memory: int  # bytes per GPU
    memory: int
    cpus: int  # thousandths of a CPU
    ports: tuple[tuple[int, str, str], ...]  # (host port, protocol, bind address)


def need_of(name: str, svc: ServiceSpec) -> Need:
    gpu = svc.gpu
    count = gpu.number if gpu else (1 if "gpu" in svc.needs else 0)
    ports = [(p.host_port, p.protocol, p.bind) for p in svc.ports.values() if p.publish]
    ports += [(p.host_port, p.protocol, p.bind) for agent in svc.agents.values()
              for p in agent.ports.values() if p.publish]
    return Need(name, count, gpu.device if gpu and count else None,
                gpu.memory if gpu and count else 0, svc.memory, round(svc.cpus * 1000),
                tuple(sorted(set(ports))))


def _clash(a: tuple[int, str, str], b: tuple[int, str, str]) -> bool:
    return a[:2] == b[:2] and (a[2] == b[2] or a[2] in WILDCARD or b[2] in WILDCARD)


@dataclass
class _Box:
    """A machine's capacities and what fixed services already take (0 capacity: unknown)."""

    name: str
    memory: int
    cpus: int
    unified: bool
    gpu_caps: list[int]
    gpu_load: list[int]
    mem_load: int = 0
    cpu_load: int = 0

    def host_demand(self, n: Need) -> int:
        return n.memory + (n.gpu_memory * n.gpus if self.unified else 0)

    def gpu_free(self, g: int) -> int | None:
        """Free GPU memory on GPU g; None: capacity unknown (no limit)."""
        return self.gpu_caps[g] - self.gpu_load[g] if self.gpu_caps[g] else None

    def gpu_fits(self, g: int, n: Need) -> bool:
        free = self.gpu_free(g)
        return free is None or n.gpu_memory <= free

    def gpu_options(self, n: Need) -> list[int]:
        if n.device is not None:
            return [n.device] if n.device < len(self.gpu_caps) and self.gpu_fits(n.device, n) \
                else []
        return [g for g in range(len(self.gpu_caps)) if self.gpu_fits(g, n)]


@dataclass
class _Item:
    """Unfixed services that must share one machine (linked by affinity or group)."""

    names: list[str]
    domain: list[str]
    why: list[str]  # what took machines out of the domain, for the error when none is left


def cp_model_module() -> Any:
    """OR-Tools' cp_model, imported without pandas when pandas is not loaded yet.

    cp_model imports pandas (~0.6 s, two thirds of its import time) only for its `*_series`
    helpers, which dockyard does not use; it refers to `pd.Index` and `pd.Series` in
    annotations and isinstance checks. A stand-in with those two classes is put in place for
    the duration of the import and removed after it, so a later `import pandas` anywhere gets
    the real one (cp_model keeps the stand-in: its pandas helpers would not work).
    """
    import sys
    import types

    loaded = sys.modules.get("ortools.sat.python.cp_model")
    if loaded is not None or "pandas" in sys.modules:
        from ortools.sat.python import cp_model

        return cp_model
    stand_in = types.ModuleType("pandas", "stand-in while OR-Tools' cp_model is imported")
    stand_in.Index = type("Index", (), {})  # type: ignore[attr-defined]
    stand_in.Series = type("Series", (), {})  # type: ignore[attr-defined]
    sys.modules["pandas"] = stand_in
    try:
        from ortools.sat.python import cp_model
    except Exception:  # an OR-Tools that needs more of pandas at import: take the real one
        for name in [m for m in sys.modules if m.startswith("ortools.sat.python.cp_model")]:
            del sys.modules[name]
        sys.modules.pop("pandas", None)
        from ortools.sat.python import cp_model
    finally:
        if sys.modules.get("pandas") is stand_in:
            del sys.modules["pandas"]
    return cp_model


def _avoid(fleet: Fleet) -> dict[str, set[str]]:
    """Anti-affinity in both directions."""
    avoid: dict[str, set[str]] = defaultdict(set)
    for name, svc in fleet.spec.services.items():
        for other in svc.anti_affinity:
            avoid[name].add(other)
            avoid[other].add(name)
    return avoid


class _Narrow:
    """Takes machines out of a group's domain, writing down why."""

    def __init__(self, domain: list[str], why: list[str]) -> None:
        self.domain, self.why = domain, why

    def __call__(self, keep: set[str], reason: str) -> None:
        gone = [m for m in self.domain if m not in keep]
        if gone:
            self.why.append(f"{reason} (rules out {', '.join(gone)})")
            self.domain[:] = [m for m in self.domain if m in keep]


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, a: str) -> str:
        self.parent.setdefault(a, a)
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def place(fleet: Fleet) -> tuple[dict[str, tuple[Placement, ...]], PlacementReport]:
    """Every service's copies, and how the placement was found."""
    spec = fleet.spec
    machines = sorted(spec.machines)
    needs = {name: need_of(name, svc) for name, svc in spec.services.items()}
    boxes: dict[str, _Box] = {}
    for m in machines:
        ms = spec.machines[m]
        caps = [g.memory or (ms.memory if g.unified else 0) for g in ms.gpus]
        boxes[m] = _Box(m, ms.memory, round(ms.cpus * 1000), any(g.unified for g in ms.gpus),
                        caps, [0] * len(caps))

    result: dict[str, tuple[Placement, ...]] = {}
    open_names: list[str] = []
    for name in sorted(spec.services):
        svc, n = spec.services[name], needs[name]
        fixed = _fixed(svc, n, boxes, machines)
        if fixed is None:
            open_names.append(name)
            continue
        result[name] = fixed
        for p in fixed:
            box = boxes[p.machine]
            box.mem_load += box.host_demand(n)
            box.cpu_load += n.cpus
            for g in p.gpus:
                if g < len(box.gpu_load):
                    box.gpu_load[g] += n.gpu_memory
    if not open_names:
        return result, PlacementReport("FIXED")

    started = time.perf_counter()
    items = _items(fleet, open_names, needs, boxes, result, machines)
    placed, report = _solve(fleet, items, needs, boxes, result)
    result.update(placed)
    seconds = time.perf_counter() - started
    return dict(sorted(result.items())), PlacementReport(
        report.status, tuple(sorted(open_names)), report.peak_permille, report.cross_links,
        report.bound_permille, report.bound_links, report.gap, seconds, report.work)


def _fixed(svc: ServiceSpec, n: Need, boxes: dict[str, _Box], machines: list[str]
           ) -> tuple[Placement, ...] | None:
    """The copies of a service whose place is written (or has no alternative); else None."""
    def devices(m: str) -> tuple[int, ...]:
        if not n.gpus:
            return ()
        return (n.device,) if n.device is not None else tuple(range(n.gpus))

    if svc.machines:
        return tuple(Placement(m, devices(m)) for m in sorted(svc.machines))
    grouped = bool(svc.affinity or svc.anti_affinity or svc.group)
    if svc.machine or (len(machines) == 1 and not grouped):
        m = svc.machine or machines[0]
        gpu_choice = n.gpus and n.device is None and len(boxes[m].gpu_caps) > n.gpus
        if not gpu_choice:
            return (Placement(m, devices(m)),)
    return None


def _items(fleet: Fleet, open_names: list[str], needs: dict[str, Need], boxes: dict[str, _Box],
           fixed: dict[str, tuple[Placement, ...]], machines: list[str]) -> list[_Item]:
    """Group unfixed services that must share a machine; narrow each group's machines."""
    spec = fleet.spec
    uf = _UnionFind()
    for name, svc in spec.services.items():
        for other in svc.affinity:
            if other in spec.services:
                uf.union(name, other)
        if svc.group:
            uf.union(name, f"group:{svc.group}")
    members: dict[str, list[str]] = defaultdict(list)
    for name in sorted(spec.services):
        members[uf.find(name)].append(name)
    avoid = _avoid(fleet)
    # (host port, protocol) -> machine -> bind addresses the fixed services publish it on
    fixed_ports: dict[tuple[int, str], dict[str, set[str]]] = defaultdict(dict)
    for name, copies in fixed.items():
        for p in copies:
            for port in needs[name].ports:
                fixed_ports[port[:2]].setdefault(p.machine, set()).add(port[2])

    items: list[_Item] = []
    seen: set[str] = set()
    for name in open_names:
        root = uf.find(name)
        if root in seen:
            continue
        seen.add(root)
        group = members[root]
        names = [s for s in group if s not in fixed]
        domain = list(machines)
        why: list[str] = []

        narrow = _Narrow(domain, why)
        for s in group:
            if s in fixed:
                narrow({p.machine for p in fixed[s]}, f"shares a machine with {s}")
        for s in names:
            n, svc = needs[s], spec.services[s]
            if svc.machine:
                narrow({svc.machine}, f"{s} has `machine: {svc.machine}`")
            if n.gpus:
                narrow({m for m in domain if len(boxes[m].gpu_options(n)) >= n.gpus},
                       f"{s} needs {n.gpus} GPU(s)"
                       + (f" with {n.gpu_memory / GiB:.1f} GiB free" if n.gpu_memory else "")
                       + (f" (device {n.device})" if n.device is not None else ""))
            if n.memory or n.gpu_memory:
                narrow({m for m in domain if not boxes[m].memory
                        or boxes[m].mem_load + boxes[m].host_demand(n) <= boxes[m].memory},
                       f"{s} needs {boxes_need_text(n)} of host memory free")
            if n.cpus:
                narrow({m for m in domain if not boxes[m].cpus
                        or boxes[m].cpu_load + n.cpus <= boxes[m].cpus},
                       f"{s} needs {n.cpus / 1000:g} CPUs free")
            for other in sorted(avoid[s]):
                if other in fixed:
                    narrow(set(domain) - {p.machine for p in fixed[other]},
                           f"{s} has anti-affinity with {other}")
                elif other in group:
                    why.append(f"{s} has anti-affinity with {other}, but they must share a "
                               "machine (affinity or group)")
                    domain.clear()
            for port in n.ports:
                used = fixed_ports.get(port[:2], {})
                taken = {m for m in domain if m in used
                         and any(_clash(port, (*port[:2], bind)) for bind in used[m])}
                if taken:
                    narrow(set(domain) - taken, f"{s} publishes host port {port[0]}, taken by "
                           f"fixed services there")
        if not domain:
            _unplaceable(fleet, names, why)
        items.append(_Item(names, domain, why))
    return items


def boxes_need_text(n: Need) -> str:
    return f"{(n.memory + n.gpu_memory * n.gpus) / GiB:.1f} GiB" if n.gpu_memory \
        else f"{n.memory / GiB:.1f} GiB"


def _unplaceable(fleet: Fleet, names: list[str], why: list[str]) -> None:
    where = fleet.where("services", names[0])
    who = ", ".join(names)
    raise PlacementError(
        f"service{'s' if len(names) > 1 else ''} {who} can run on no machine: "
        + "; ".join(why),
        where=where,
        fix="lower the budgets, relax `machine:`/affinity/anti_affinity/group, or add a machine "
            "that has room")


@dataclass
class _Model:
    model: cp_model.CpModel
    x: dict[tuple[int, str], Any]
    y: dict[tuple[str, str, int], Any]
    placed: list[Any]
    peak: Any
    links: list[Any]  # one 0/1 term per depends_on link that may cross machines
    cross: list[tuple[str, str, Any]]  # (a, b, "a and b on different machines")


def _build(items: list[_Item], needs: dict[str, Need], boxes: dict[str, _Box],
           avoid: dict[str, set[str]], deps: list[tuple[str, str, set[str]]] | None = None,
           *, optimise: bool, peak_max: int = SCALE) -> _Model:
    """The CP-SAT model; `deps`: (unfixed a, b, b's machines when fixed) per depends_on link."""
    cp_model = cp_model_module()

    model = cp_model.CpModel()
    x: dict[tuple[int, str], Any] = {}
    y: dict[tuple[str, str, int], Any] = {}
    placed = []
    on_machine: dict[str, list[tuple[int, Any]]] = defaultdict(list)
    gpu_terms: dict[tuple[str, int], list[tuple[int, Any]]] = defaultdict(list)
    for i, item in enumerate(items):
        here = []
        for m in item.domain:
            var = model.new_bool_var("")
            x[(i, m)] = var
            here.append(var)
            on_machine[m].append((i, var))
            for s in item.names:
                n = needs[s]
                if not n.gpus:
                    continue
                options = boxes[m].gpu_options(n)
                ys = []
                for g in options:
                    yv = model.new_bool_var("")
                    y[(s, m, g)] = yv
                    ys.append(yv)
                    gpu_terms[(m, g)].append((_mib(n.gpu_memory), yv))
                model.add(sum(ys) == n.gpus * var)
        flag = model.new_bool_var("")
        placed.append(flag)
        model.add(sum(here) == flag)

    # Anti-affinity and host ports between unfixed services.
    index = {s: i for i, item in enumerate(items) for s in item.names}
    for i, item in enumerate(items):
        for s in item.names:
            for other in sorted(avoid[s] & index.keys()):
                j = index[other]
                if j <= i:
                    continue
                for m in set(item.domain) & set(items[j].domain):
                    model.add_at_most_one([x[(i, m)], x[(j, m)]])
    by_port: dict[tuple[int, str], list[tuple[str, int]]] = defaultdict(list)
    for i, item in enumerate(items):
        for s in item.names:
            for port in needs[s].ports:
                by_port[port[:2]].append((port[2], i))
    for _, users in sorted(by_port.items()):
        if len({i for _, i in users}) < 2:
            continue
        binds = sorted({b for b, _ in users if b not in WILDCARD}) or ["*"]
        for bind in binds:
            group = sorted({i for b, i in users if b == bind or b in WILDCARD})
            if len(group) < 2:
                continue
            for m in sorted({m for i in group for m in items[i].domain}):
                model.add_at_most_one([x[(i, m)] for i in group if (i, m) in x])

    # Capacities, net of what the fixed services take.
    for m, terms in sorted(on_machine.items()):
        box = boxes[m]
        mem = [(sum(box.host_demand(needs[s]) for s in items[i].names), v) for i, v in terms]
        if box.memory and any(c for c, _ in mem):
            model.add(sum(_mib(c) * v for c, v in mem) <= (box.memory - box.mem_load) // MiB)
        cpu = [(sum(needs[s].cpus for s in items[i].names), v) for i, v in terms]
        if box.cpus and any(c for c, _ in cpu):
            model.add(sum(c * v for c, v in cpu) <= box.cpus - box.cpu_load)
    links: list[Any] = []
    crossings: list[tuple[str, str, Any]] = []
    if optimise:
        for a, b, where_b in deps or []:
            i = index[a]
            if b in index:
                j = index[b]
                if i == j:
                    continue
                cross = model.new_bool_var("")
                crossings.append((a, b, cross))
                for m in sorted(set(items[i].domain) | set(items[j].domain)):
                    model.add(x.get((i, m), 0) - x.get((j, m), 0) <= cross)
                links.append(cross)
            else:  # b is fixed on `where_b`
                links.append(1 - sum(x[(i, m)] for m in items[i].domain if m in where_b))
    peak: Any = 0
    if optimise:
        peak = model.new_int_var(0, peak_max, "peak")
    for (m, g), gterms in sorted(gpu_terms.items()):
        box = boxes[m]
        if not box.gpu_caps[g]:
            continue
        free = (box.gpu_caps[g] - box.gpu_load[g]) // MiB
        model.add(sum(c * v for c, v in gterms) <= free)
        if optimise:
            cap = box.gpu_caps[g] // MiB
            load = box.gpu_load[g] // MiB
            model.add(SCALE * (load + sum(c * v for c, v in gterms)) <= peak * cap)
    return _Model(model, x, y, placed, peak, links, crossings)


def _solver(workers: int = 1, limit: float = TIME_LIMIT) -> cp_model.CpSolver:
    solver: cp_model.CpSolver = cp_model_module().CpSolver()
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = 0
    solver.parameters.max_deterministic_time = limit
    # Measured on generated fleets (benchmarks/scale.py): symmetry detection and probing cost
    # more presolve time than they save on these assignment models.
    solver.parameters.symmetry_level = 0
    solver.parameters.cp_model_probing_level = 0
    solver.parameters.max_time_in_seconds = 4 * limit  # a wall-clock backstop only
    return solver


def placed_machines(fixed: dict[str, tuple[Placement, ...]], name: str) -> list[str]:
    return [p.machine for p in fixed.get(name, ())]


def _solve(fleet: Fleet, items: list[_Item], needs: dict[str, Need], boxes: dict[str, _Box],
           fixed: dict[str, tuple[Placement, ...]]
           ) -> tuple[dict[str, tuple[Placement, ...]], PlacementReport]:
    cp_model = cp_model_module()

    avoid = _avoid(fleet)
    index = {s: i for i, item in enumerate(items) for s in item.names}
    deps: list[tuple[str, str, set[str]]] = []
    for name, svc in sorted(fleet.spec.services.items()):
        for dep in sorted(svc.depends_on):
            a, b = (name, dep) if name in index else (dep, name)
            if a in index and dep in fleet.spec.services:
                deps.append((a, b, set() if b in index else set(placed_machines(fixed, b))))
    # Phase 1, on a relaxation: only the groups with a GPU service, only GPU memory, and
    # interchangeable services counted instead of named. Leaving services and constraints out
    # can only lower the best peak, so its optimum is a lower bound for the whole fleet.
    gpu_items = [it for it in items if any(needs[s].gpus for s in it.names)]
    peak, peak_bound, proven, work = 0, 0, True, 0.0
    hint: dict[str, tuple[str, tuple[int, ...]]] = {}
    if gpu_items:
        status, peak, peak_bound, hint, work = _peak_relaxation(gpu_items, needs, boxes)
        if status == cp_model.INFEASIBLE:
            _explain(fleet, gpu_items, needs, boxes, avoid)
        _answered(fleet, status, gpu_items)
        proven = status == cp_model.OPTIMAL
    # Phase 2, everything, the peak held at phase 1's: as few cross-machine links as possible.
    _greedy_hint(items, needs, boxes, deps, hint)
    built = _build(items, needs, boxes, avoid, deps, optimise=True, peak_max=peak)
    _place_all(built)
    for i, it in enumerate(items):
        if it.names[0] not in hint:
            continue
        machine = hint[it.names[0]][0]
        for m in it.domain:
            built.model.add_hint(built.x[(i, m)], m == machine)
    for (name, m, g), var in built.y.items():
        if name in hint:
            built.model.add_hint(var, m == hint[name][0] and g in hint[name][1])
    for a, b, var in built.cross:
        if a in hint and b in hint:
            built.model.add_hint(var, hint[a][0] != hint[b][0])
    for flag in built.placed:
        built.model.add_hint(flag, True)
    if built.links:
        built.model.minimize(sum(built.links))
    chosen = _solver()
    status = chosen.solve(built.model)
    work += chosen.deterministic_time
    if status == cp_model.INFEASIBLE:
        # The rest does not fit beside phase 1's GPU answer: solve it all at once.
        built = _build(items, needs, boxes, avoid, deps, optimise=True)
        _place_all(built)
        weight = len(built.links) + 1
        built.model.minimize(built.peak * weight + sum(built.links))
        status = chosen.solve(built.model)
        work += chosen.deterministic_time
        if status == cp_model.INFEASIBLE:
            _explain(fleet, items, needs, boxes, avoid)
        _answered(fleet, status, items)
        value, bound = round(chosen.objective_value), round(chosen.best_objective_bound)
        (peak, links), (peak_bound, links_bound) = divmod(value, weight), divmod(bound, weight)
        proven = status == cp_model.OPTIMAL
    else:
        _answered(fleet, status, items)
        links = round(chosen.objective_value) if built.links else 0
        links_bound = round(chosen.best_objective_bound) if built.links else 0
        proven = proven and status == cp_model.OPTIMAL
    if peak_bound < peak:
        links_bound = 0
    placed: dict[str, tuple[Placement, ...]] = {}
    for i, item in enumerate(items):
        m = next(m for m in item.domain if chosen.boolean_value(built.x[(i, m)]))
        for s in item.names:
            gpus = tuple(g for g in range(len(boxes[m].gpu_caps))
                         if (s, m, g) in built.y and chosen.boolean_value(built.y[(s, m, g)]))
            placed[s] = (Placement(m, gpus),)
    gap = max((peak - peak_bound) / max(peak, 1), (links - links_bound) / max(links, 1))
    return placed, PlacementReport(
        "OPTIMAL" if proven else "FEASIBLE", peak_permille=peak * (1000 // SCALE),
        cross_links=links, bound_permille=peak_bound * (1000 // SCALE),
        bound_links=links_bound, gap=0.0 if proven else gap, work=work)


def _peak_relaxation(items: list[_Item], needs: dict[str, Need], boxes: dict[str, _Box]
                     ) -> tuple[Any, int, int, dict[str, tuple[str, tuple[int, ...]]], float]:
    """Minimise the peak over GPU memory alone: (status, peak, bound, a placement to hint,
    the solver's deterministic time).

    A group of one service on one GPU with no device written is interchangeable with every
    other such service of the same budget and machines: those are counted per GPU (an integer
    per kind and GPU) instead of one yes/no per service and GPU, which removes the symmetry
    that made the proof slow.
    """
    cp_model = cp_model_module()

    model = cp_model.CpModel()
    peak = model.new_int_var(0, SCALE, "peak")
    terms: dict[tuple[str, int], list[Any]] = defaultdict(list)
    kinds: dict[tuple[int, tuple[str, ...]], list[str]] = defaultdict(list)
    single: list[tuple[_Item, dict[str, Any], dict[tuple[str, str, int], Any]]] = []
    for item in items:
        n = needs[item.names[0]]
        if len(item.names) == 1 and n.gpus == 1 and n.device is None:
            kinds[(_mib(n.gpu_memory), tuple(item.domain))].append(item.names[0])
            continue
        x = {m: model.new_bool_var("") for m in item.domain}
        model.add_exactly_one(x.values())
        y: dict[tuple[str, str, int], Any] = {}
        for m in item.domain:
            for s in item.names:
                ns = needs[s]
                if not ns.gpus:
                    continue
                ys = []
                for g in boxes[m].gpu_options(ns):
                    y[(s, m, g)] = var = model.new_bool_var("")
                    ys.append(var)
                    terms[(m, g)].append(_mib(ns.gpu_memory) * var)
                model.add(sum(ys) == ns.gpus * x[m])
        single.append((item, x, y))
    counts: dict[tuple[int, tuple[str, ...]], dict[tuple[str, int], Any]] = {}
    for (mib, domain), names in sorted(kinds.items()):
        n = needs[names[0]]
        slots = {(m, g): model.new_int_var(0, len(names), "")
                 for m in domain for g in boxes[m].gpu_options(n)}
        model.add(sum(slots.values()) == len(names))
        for (m, g), var in slots.items():
            terms[(m, g)].append(mib * var)
        counts[(mib, domain)] = slots
    for (m, g), gterms in sorted(terms.items()):
        box = boxes[m]
        if box.gpu_caps[g]:
            model.add(sum(gterms) <= (box.gpu_caps[g] - box.gpu_load[g]) // MiB)
            model.add(SCALE * (box.gpu_load[g] // MiB + sum(gterms))
                      <= peak * (box.gpu_caps[g] // MiB))
    model.minimize(peak)
    solver = _solver()
    status = solver.solve(model)
    hint: dict[str, tuple[str, tuple[int, ...]]] = {}
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return status, 0, 0, hint, solver.deterministic_time
    for key, slots in counts.items():
        queue = iter(kinds[key])
        for (m, g), var in slots.items():
            for _ in range(solver.value(var)):
                hint[next(queue)] = (m, (g,))
    for item, x, y in single:
        m = next(m for m, var in x.items() if solver.boolean_value(var))
        for s in item.names:
            hint[s] = (m, tuple(g for (s_, m_, g), var in y.items()
                                if s_ == s and m_ == m and solver.boolean_value(var)))
    return (status, round(solver.objective_value), round(solver.best_objective_bound), hint,
            solver.deterministic_time)


def _greedy_hint(items: list[_Item], needs: dict[str, Need], boxes: dict[str, _Box],
                 deps: list[tuple[str, str, set[str]]],
                 hint: dict[str, tuple[str, tuple[int, ...]]]) -> None:
    """A starting point (only a hint: the solver checks and repairs it) for the groups phase 1
    did not place: beside a service they are linked to, else where the most memory is free."""
    partners: dict[str, list[str]] = defaultdict(list)
    for a, b, where_b in deps:
        partners[a] += sorted(where_b) or [b]
        partners[b].append(a)
    free_mem = {m: (b.memory - b.mem_load) if b.memory else 1 << 60 for m, b in boxes.items()}
    free_cpu = {m: (b.cpus - b.cpu_load) if b.cpus else 1 << 60 for m, b in boxes.items()}
    for item in items:
        if item.names[0] in hint:
            m = hint[item.names[0]][0]
            free_mem[m] -= sum(boxes[m].host_demand(needs[s]) for s in item.names)
            free_cpu[m] -= sum(needs[s].cpus for s in item.names)
    for item in items:
        if item.names[0] in hint:
            continue
        mem = sum(needs[s].memory for s in item.names)
        cpu = sum(needs[s].cpus for s in item.names)
        near = [hint[p][0] if p in hint else p for s in item.names for p in partners[s]]
        fits = [m for m in item.domain if free_mem[m] >= mem and free_cpu[m] >= cpu]
        if not fits:
            continue
        m = next((m for m in near if m in fits), None) or max(fits, key=lambda m: free_mem[m])
        free_mem[m] -= mem
        free_cpu[m] -= cpu
        for s in item.names:
            hint[s] = (m, ())


def _place_all(built: _Model) -> None:
    for flag in built.placed:
        built.model.add(flag == 1)


def _answered(fleet: Fleet, status: Any, items: list[_Item]) -> None:
    cp_model = cp_model_module()

    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise PlacementError(
            f"placement found no answer within the solver's limit ({TIME_LIMIT:g} s) for "
            f"{sum(len(i.names) for i in items)} services",
            where=fleet.where("services"),
            fix="write `machine:` for some services to make the problem smaller")


EXPLAIN_BUDGET = 10.0  # deterministic seconds for narrowing an infeasible set down


def _explain(fleet: Fleet, items: list[_Item], needs: dict[str, Need],
             boxes: dict[str, _Box], avoid: dict[str, set[str]]) -> None:
    """Raise naming a smallest set of services that cannot be placed together.

    First the cheap, exact argument: services whose budgets add up to more than all the
    GPUs (or machines) they may use have free, the largest first, so the set is as small as
    that argument allows. Otherwise the solver's core over "group i is placed" assumptions,
    shrunk by dropping each group whose removal keeps it infeasible (within EXPLAIN_BUDGET).
    """
    overflow = _aggregate_overflow(items, needs, boxes)
    if overflow is not None:
        names, text = overflow
        _raise_core(fleet, names, needs, text, proven=True)
    cp_model = cp_model_module()

    built = _build(items, needs, boxes, avoid, optimise=False)
    model = built.model
    core = list(range(len(items)))
    model.add_assumptions(built.placed)
    solver = _solver()
    if solver.solve(model) == cp_model.INFEASIBLE:
        found = set(solver.sufficient_assumptions_for_infeasibility())
        core = [i for i, flag in enumerate(built.placed) if flag.index in found] or core
    spent, proven = solver.deterministic_time, True
    for i in list(core):  # shrink: drop each group whose removal keeps it infeasible
        if spent > EXPLAIN_BUDGET:
            proven = False
            break
        trial = [j for j in core if j != i]
        if not trial:  # one group alone cannot be placed: that is the smallest set
            break
        model.clear_assumptions()
        model.add_assumptions([built.placed[j] for j in trial])
        step = _solver(limit=1.0)
        if step.solve(model) == cp_model.INFEASIBLE:
            core = trial
        spent += step.deterministic_time
    names = [s for i in core for s in items[i].names]
    _raise_core(fleet, names, needs, "no assignment of them to machines and GPUs respects "
                "every budget, port and (anti-)affinity", proven=proven)


def _aggregate_overflow(items: list[_Item], needs: dict[str, Need], boxes: dict[str, _Box]
                        ) -> tuple[list[str], str] | None:
    """Services whose summed GPU memory, host memory or CPUs exceed what is free for them."""
    services = [s for item in items for s in item.names]
    domain = {s: item.domain for item in items for s in item.names}
    def gpu_need(s: str) -> int:
        return needs[s].gpu_memory * needs[s].gpus

    def gpu_free(ms: list[str]) -> int | None:
        gpus = [(boxes[m], g) for m in ms for g in range(len(boxes[m].gpu_caps))]
        if any(not b.gpu_caps[g] for b, g in gpus):
            return None
        return sum(max(0, b.gpu_caps[g] - b.gpu_load[g]) for b, g in gpus)

    def mem_need(s: str) -> int:
        return max(boxes[m].host_demand(needs[s]) for m in domain[s])

    def mem_free(ms: list[str]) -> int | None:
        if any(not boxes[m].memory for m in ms):
            return None
        return sum(max(0, boxes[m].memory - boxes[m].mem_load) for m in ms)

    def cpu_need(s: str) -> int:
        return needs[s].cpus

    def cpu_free(ms: list[str]) -> int | None:
        if any(not boxes[m].cpus for m in ms):
            return None
        return sum(max(0, boxes[m].cpus - boxes[m].cpu_load) for m in ms)

    checks: list[tuple[str, Callable[[str], int], Callable[[list[str]], int | None], str]] = [
        ("GPU memory", gpu_need, gpu_free, "GiB"),
        ("host memory", mem_need, mem_free, "GiB"),
        ("CPUs", cpu_need, cpu_free, "CPUs"),
    ]
    for what, demand, free_on, unit in checks:
        users = sorted((s for s in services if demand(s)), key=lambda s: (-demand(s), s))
        machines = sorted({m for s in users for m in domain[s]})
        free = free_on(machines)
        if free is None or sum(demand(s) for s in users) <= free:
            continue
        chosen, total = [], 0
        for s in users:
            chosen.append(s)
            total += demand(s)
            if total > free:
                break
        scale = GiB if unit == "GiB" else 1000
        text = (f"together they need {total / scale:.1f} {unit} of {what}, and the "
                f"{'GPUs' if what == 'GPU memory' else 'machines'} they may use "
                f"({', '.join(machines)}) have {free / scale:.1f} {unit} free")
        return sorted(chosen), text
    return None


def _raise_core(fleet: Fleet, names: list[str], needs: dict[str, Need], why: str, *,
                proven: bool) -> None:
    shown = names[:12]
    where = ", ".join(f"{s} ({fleet.where('services', s)}: {_describe(needs[s])})"
                      for s in shown) + (f" and {len(names) - 12} more" if len(names) > 12
                                         else "")
    raise PlacementError(
        f"services {', '.join(names)} cannot be placed together: {why}"
        + ("" if proven else " (the solver ran out of time to narrow this set further)")
        + f"; {where}",
        where=fleet.where("services", names[0]),
        fix="lower one of their budgets, relax `machine:`/affinity/anti_affinity/group among "
            "them, or add a machine with room")


def _describe(n: Need) -> str:
    parts = []
    if n.gpus:
        parts.append(f"{n.gpus} GPU x {n.gpu_memory / GiB:.1f} GiB")
    if n.memory:
        parts.append(f"{n.memory / GiB:.1f} GiB RAM")
    if n.cpus:
        parts.append(f"{n.cpus / 1000:g} CPUs")
    if n.ports:
        parts.append("host port " + ", ".join(str(p[0]) for p in n.ports))
    return ", ".join(parts) or "no budget"


@dataclass(frozen=True)
class Use:
    """How much of one resource a plan takes: a GPU's memory, a machine's memory or CPUs."""

    machine: str
    resource: str  # "gpu", "memory" or "cpus"
    index: int | None  # the GPU's index; None for the machine's own resources
    label: str
    used: float  # bytes, or CPUs
    capacity: float  # 0: unknown
    services: tuple[str, ...]

    @property
    def share(self) -> float | None:
        return self.used / self.capacity if self.capacity else None

    def as_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "resource": self.resource, "index": self.index,
                "label": self.label, "used": self.used, "capacity": self.capacity,
                "share": self.share, "services": list(self.services)}


def usage(fleet: Fleet, plan: Plan) -> list[Use]:
    """Each GPU's memory and each machine's memory and CPUs against what the plan puts there."""
    rows: list[Use] = []
    for m, spec in sorted(fleet.spec.machines.items()):
        here = [sp for sp in plan.services.values() if m in sp.machines]
        unified = any(g.unified for g in spec.gpus)
        for g, gpu in enumerate(spec.gpus):
            users = sorted(sp.name for sp in here if g in sp.gpus_on(m))
            used = sum(plan.services[n].gpu_memory for n in users)
            cap = gpu.memory or (spec.memory if gpu.unified else 0)
            rows.append(Use(m, "gpu", g, f"GPU {g}" + (f" {gpu.model}" if gpu.model else ""),
                            used, cap, tuple(users)))
        mem_users = sorted(sp.name for sp in here if sp.spec.memory
                           or (unified and sp.gpus_on(m) and sp.gpu_memory))
        mem = sum(plan.services[n].spec.memory + (plan.services[n].gpu_memory
                  * len(plan.services[n].gpus_on(m)) if unified else 0) for n in mem_users)
        rows.append(Use(m, "memory", None, "memory" + (" (shared with GPU)" if unified else ""),
                        mem, spec.memory, tuple(mem_users)))
        cpu_users = sorted(sp.name for sp in here if sp.spec.cpus)
        rows.append(Use(m, "cpus", None, "CPUs",
                        sum(plan.services[n].spec.cpus for n in cpu_users), spec.cpus,
                        tuple(cpu_users)))
    return rows

"""`dockyard up --target swarm` and `down --target swarm`: one stack on a swarm made of the
fleet's machines (ops/swarm.py decides; this module asks the engines and acts).

up: form the swarm (the first machine by name inits it, the others join as workers, each
advertising its `host:`; a machine already in it is left alone), label each node with its
machine (the stack's placement constraints select `node.labels.dockyard.machine`), ship the
images each node's services run when there is no registry (engine/ship.py), then deploy the
rendered stack one start level at a time, waiting for each level's services to converge
(healthy, or completed for a one-shot) before the next level is in the file. Every stack,
service and node command goes to the manager's engine."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.engine.connection import Engine
from dockyard.engine.run import run
from dockyard.engine.ship import ShipReport, ship_fleet
from dockyard.engine.target import Target
from dockyard.errors import EngineError, ManifestError, UnhealthyError
from dockyard.events import HealthWaiting, LevelHealthy, LevelStarted, Progress, Sink
from dockyard.manifest.load import Fleet
from dockyard.ops.swarm import (
    ENDED,
    START_GRACE,
    NodeFacts,
    ServiceFacts,
    Verdict,
    forming,
    judge,
    levels_up_to,
)
from dockyard.plan.model import Plan
from dockyard.render.compose import LABEL
from dockyard.render.swarm import MACHINE_LABEL, render_swarm

STACK_LABEL = "com.docker.stack.namespace"
POLL = 0.5  # seconds between looks at a level's tasks
SWARM_PORT = 2377


@dataclass
class SwarmUp:
    """What `up --target swarm` did: the manager, each machine's node, each level's services
    with the seconds they took, the node each Swarm service's task runs on, the shipping."""

    stack: str
    manager: str
    nodes: dict[str, str] = field(default_factory=dict)  # machine -> node ID
    levels: list[list[tuple[str, float]]] = field(default_factory=list)
    placed: dict[str, str] = field(default_factory=dict)  # Swarm service -> machine
    shipped: ShipReport = field(default_factory=ShipReport)
    checklist: list[str] = field(default_factory=list)
    seconds: float = 0.0


def engines(fleet: Fleet) -> dict[str, Engine]:
    """Every machine's engine: each machine of the fleet is a node of its swarm."""
    return {m: Engine.for_machine(fleet, m) for m in sorted(fleet.spec.machines)}


def _address(fleet: Fleet, machine: str) -> str:
    host = fleet.spec.machines[machine].host.strip()
    if not host:
        raise ManifestError(
            f"machine {machine} has no `host:`, and the swarm's nodes reach each other there "
            f"(it is {machine}'s address in `docker swarm init/join --advertise-addr`)",
            where=fleet.where("machines", machine),
            fix=f"add `host: <address of {machine}>` under machines.{machine}")
    return host


def node_facts(found: Mapping[str, Engine]) -> dict[str, NodeFacts]:
    """Each machine's swarm state, asked in parallel (one `docker info` each)."""
    def ask(machine: str) -> NodeFacts:
        return NodeFacts.from_info(machine, found[machine].client.info())

    with ThreadPoolExecutor(max_workers=min(8, len(found))) as pool:
        return dict(zip(found, pool.map(ask, found), strict=True))


def form(fleet: Fleet, found: Mapping[str, Engine], *, emit: Sink) -> tuple[str, dict[str, str]]:
    """Make the fleet's machines one swarm (idempotent); the manager and machine -> node ID."""
    machines = sorted(found)
    facts = node_facts(found)
    first = forming(machines, facts)
    members: set[str] = set()
    if not first.init:
        members = {str(n["ID"]) for n in found[first.manager].client.api.nodes()}
    plan = forming(machines, facts, members)
    if plan.problems:
        machine, why = plan.problems[0]
        raise EngineError(f"machine {machine} cannot be a node of fleet {fleet.spec.fleet}'s "
                          f"swarm: {why}", fix="then run `dockyard up --target swarm` again")
    multi = len(machines) > 1
    manager = found[plan.manager]
    if plan.init:
        argv = ["swarm", "init"]
        if multi:
            argv += ["--advertise-addr", _address(fleet, plan.manager)]
        emit(Progress(f"making a swarm: {plan.manager} is its manager"))
        run(manager.docker_argv(*argv), timeout=120)
    if plan.join:
        token = run(manager.docker_argv("swarm", "join-token", "-q", "worker")).stdout.strip()
        at = f"{_address(fleet, plan.manager)}:{SWARM_PORT}"

        def join(machine: str) -> None:
            emit(Progress(f"{machine} joins the swarm as a worker"))
            run(found[machine].docker_argv("swarm", "join", "--token", token,
                                           "--advertise-addr", _address(fleet, machine), at),
                timeout=120)

        with ThreadPoolExecutor(max_workers=min(8, len(plan.join))) as pool:
            list(pool.map(join, plan.join))
        facts = {**facts, **node_facts({m: found[m] for m in (plan.manager, *plan.join)})}
    elif plan.init:
        facts = {**facts, **node_facts({plan.manager: manager})}
    nodes = {m: facts[m].node_id for m in machines}
    _label(manager, nodes)
    return plan.manager, nodes


def _label(manager: Engine, nodes: Mapping[str, str]) -> None:
    """Each node carries `dockyard.machine=<its machine>` (changed only where it differs)."""
    api = manager.client.api
    for machine, node_id in nodes.items():
        node = api.inspect_node(node_id)
        spec = node["Spec"]
        labels = dict(spec.get("Labels") or {})
        if labels.get(MACHINE_LABEL) == machine:
            continue
        labels[MACHINE_LABEL] = machine
        api.update_node(node_id, int(node["Version"]["Index"]), {**spec, "Labels": labels})


def stack_folder(state: Path, fleet: Fleet) -> Path:
    return state / "swarm" / fleet.spec.fleet


def up(fleet: Fleet, plan: Plan, state: Path, *, emit: Sink, profiles: Sequence[str] = (),
       build_missing: bool = True) -> SwarmUp:
    """Form the swarm, ship the images, deploy the stack level by level; UnhealthyError
    naming the Swarm service (and its task errors) when one does not converge."""
    t0 = time.monotonic()
    found = engines(fleet)
    manager_name, nodes = form(fleet, found, emit=emit)
    manager = found[manager_name]
    folder = stack_folder(state, fleet)
    folder.mkdir(parents=True, exist_ok=True)
    rendered = render_swarm(fleet, plan, profiles,
                            os.path.relpath(fleet.root.resolve(), folder.resolve()))
    for rel, text in rendered.files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text, encoding="utf-8")
    result = SwarmUp(plan.fleet, manager_name, nodes,
                     checklist=[c for c in rendered.checklist
                                if not c.startswith(("swarm:", "images:"))])
    if result.checklist:
        emit(Progress(f"each node needs (also in {folder / 'nodes.sh'}):"))
        for line in result.checklist:
            emit(Progress(f"  {line}"))
    targets = [Target(fleet, plan, state, m, plan.fleet, tuple(profiles)) for m in found]
    result.shipped = ship_fleet(targets, emit=emit, build_missing=build_missing)
    doc = _load_stack(folder / "stack.yaml")
    by_node = {node: machine for machine, node in nodes.items()}
    for index, level in enumerate(rendered.levels):
        names = [f"{plan.fleet}_{key}" for key in level]
        api = manager.client.api
        before = {str(t["ID"]) for t in _tasks(api, fleet, names)}
        templates = _templates(api, fleet)
        path = folder / f"stack.level-{index}.yaml"
        keep = set(levels_up_to(rendered.levels, index))
        # JSON is YAML: the level's file is the stack with the services of levels 0..index.
        path.write_text(json.dumps({**doc, "services": {k: v for k, v in doc["services"].items()
                                                        if k in keep}}, indent=1))
        emit(LevelStarted(tuple(names)))
        _deploy(manager, fleet, path)
        changed = {n for n, t in _templates(api, fleet).items() if templates.get(n) != t}
        took = _wait(manager, fleet, plan, names, before, changed, emit=emit,
                     later=[f"{plan.fleet}_{k}" for lv in rendered.levels[index + 1:] for k in lv])
        result.levels.append(took)
        emit(LevelHealthy(tuple(took)))
        ids = {str(s["ID"]): str(s["Spec"]["Name"]) for s in _services(api, fleet)}
        for task in _tasks(api, fleet, names):
            if task.get("NodeID") in by_node and (task.get("Status") or {}).get("State") in (
                    "running", "complete"):
                result.placed[ids[str(task["ServiceID"])]] = by_node[str(task["NodeID"])]
    result.seconds = time.monotonic() - t0
    return result


def _load_stack(path: Path) -> dict[str, Any]:
    from ruamel.yaml import YAML

    loaded = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    return dict(loaded)


def _deploy(manager: Engine, fleet: Fleet, path: Path) -> None:
    argv = ["stack", "deploy", "-c", path.name]
    argv += ["--with-registry-auth"] if fleet.spec.registry else ["--resolve-image", "never"]
    try:
        run(manager.docker_argv(*argv, fleet.spec.fleet), cwd=path.parent, timeout=600,
            env=dict(fleet.compose_env))
    except EngineError:
        if not manager.answers():
            raise manager.unavailable() from None
        raise


def _services(api: Any, fleet: Fleet) -> list[dict[str, Any]]:
    return list(api.services(filters={"label": f"{STACK_LABEL}={fleet.spec.fleet}"}))


def _tasks(api: Any, fleet: Fleet, names: Sequence[str]) -> list[dict[str, Any]]:
    """The tasks of those of `names` that exist (the API answers 404 for a name it lacks)."""
    ids = [str(s["ID"]) for s in _services(api, fleet) if s["Spec"]["Name"] in names]
    return list(api.tasks(filters={"service": ids})) if ids else []


def _deadlines(plan: Plan, services: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    out = {}
    for s in services:
        spec = s.get("Spec") or {}
        name = (spec.get("Labels") or {}).get(f"{LABEL}.service", "")
        sp = plan.services.get(name)
        health = sp.spec.health if sp else None
        out[str(spec.get("Name"))] = START_GRACE + (health.deadline if health else 0.0)
    return out


def _templates(api: Any, fleet: Fleet) -> dict[str, str]:
    """Swarm service -> what its tasks run (TaskTemplate, replicas), to tell a deploy that
    changed it (new tasks replace the old) from one that did not."""
    return {str(s["Spec"]["Name"]): json.dumps([s["Spec"].get("TaskTemplate"),
                                                 s["Spec"].get("Mode")], sort_keys=True)
            for s in _services(api, fleet)}


def _wait(manager: Engine, fleet: Fleet, plan: Plan, names: list[str], before: set[str],
          changed: set[str], *, emit: Sink, later: list[str]) -> list[tuple[str, float]]:
    """Wait until every service of `names` converged; (service, seconds) in order."""
    api = manager.client.api
    t0 = time.monotonic()
    took: dict[str, float] = {}
    while True:
        waited = time.monotonic() - t0
        services = {str(s["Spec"]["Name"]): s for s in _services(api, fleet)}
        deadlines = _deadlines(plan, list(services.values()))
        tasks = _tasks(api, fleet, names)
        by_service: dict[str, list[Mapping[str, Any]]] = {}
        ids = {str(s["ID"]): n for n, s in services.items()}
        for task in tasks:
            by_service.setdefault(ids.get(str(task.get("ServiceID")), ""), []).append(task)
        verdicts: list[Verdict] = []
        for name in names:
            if name not in services:
                verdicts.append(Verdict(name, "waiting", "not created yet"))
                continue
            facts = ServiceFacts.from_api(services[name], by_service.get(name, []))
            verdicts.append(judge(facts, before=before, changed=name in changed,
                                  waited=waited,
                                  deadline=deadlines.get(name, START_GRACE)))
        for v in verdicts:
            if v.done and v.service not in took:
                took[v.service] = waited
        failed = [v for v in verdicts if v.failed]
        if failed:
            raise _not_converged(manager, fleet, failed, later)
        if all(v.done for v in verdicts):
            return [(n, took[n]) for n in names]
        emit(HealthWaiting(tuple((v.service, deadlines.get(v.service, START_GRACE) - waited)
                                 for v in verdicts if not v.done), waited))
        time.sleep(POLL)


def _not_converged(manager: Engine, fleet: Fleet, failed: list[Verdict],
                   later: list[str]) -> UnhealthyError:
    parts = []
    for v in failed:
        logs = run(manager.docker_argv("service", "logs", "--raw", "--tail", "3", v.service),
                   check=False, timeout=20)
        tail = [ln.strip() for ln in (logs.stdout + logs.stderr).splitlines() if ln.strip()
                and "no such task or service" not in ln]
        parts.append(f"{v.service}: {v.why}" + (f" (its log ends: {tail[-1][:200]})"
                                                if tail else ""))
    rest = f"; not deployed yet: {', '.join(later)}" if later else ""
    first = failed[0].service
    return UnhealthyError(
        f"swarm stack {fleet.spec.fleet}: {len(failed)} service(s) did not converge: "
        + "; ".join(parts) + rest,
        fix=f"`docker service ps --no-trunc {first}` on the manager shows every task; fix the "
            "service, then run `dockyard up --target swarm` again")


def down(fleet: Fleet, *, emit: Sink, volumes: bool = False, timeout: float = 60) -> bool:
    """Remove the fleet's stack from its swarm (and, with `volumes`, its named volumes on every
    node); False when no machine of the fleet manages a swarm. The swarm itself stays."""
    found = engines(fleet)
    facts = node_facts(found)
    managers = [m for m in sorted(found) if facts[m].state == "active" and facts[m].manager]
    if not managers:
        return False
    manager = found[managers[0]]
    stack = fleet.spec.fleet
    run(manager.docker_argv("stack", "rm", stack), timeout=120)
    api = manager.client.api
    deadline = time.monotonic() + timeout
    # `stack rm` returns at once: its tasks' containers stop, then its networks can go.
    while time.monotonic() < deadline:
        tasks = [t for t in api.tasks(filters={"label": f"{STACK_LABEL}={stack}"})
                 if (t.get("Status") or {}).get("State") not in ENDED]  # a container still up
        networks = api.networks(filters={"label": f"{STACK_LABEL}={stack}"})
        if not tasks and not networks:
            break
        for net in networks if not tasks else ():
            run(manager.docker_argv("network", "rm", str(net["Id"])), check=False)
        time.sleep(POLL)
    if volumes:
        for machine, engine in found.items():
            for volume in engine.client.volumes.list(filters={"label": f"{STACK_LABEL}={stack}"}):
                emit(Progress(f"removing volume {volume.name} on {machine}"))
                _remove_volume(volume, time.monotonic() + timeout)
    return True


def _remove_volume(volume: Any, deadline: float) -> None:
    from docker.errors import APIError

    while True:
        try:
            volume.remove()
            return
        except APIError:  # still in use by a container that is going away
            if time.monotonic() > deadline:
                raise
            time.sleep(POLL)

"""Pure decisions of `dockyard up --target swarm` (engine/swarm.py gathers the facts and acts).

- **Forming the swarm.** From each machine's `docker info` (Swarm: state, node ID, manager or
  not) and the manager's node list: which machine inits a swarm (the first machine, by name,
  when none of them is a manager), which join as workers, and which cannot be used (in
  another swarm, or in a state a join would not fix). A machine already in the swarm is
  left as it is: forming is idempotent.
- **Convergence.** Swarm has no dependency order and `docker stack deploy` returns before
  anything runs (and exits 0 after a rollback: docker/cli#6752). dockyard deploys one start
  level at a time and judges each service of the level from its tasks: converged when as
  many tasks run as it has replicas (a task with a health check is `running` only once its
  container is healthy: the engine's Swarm executor waits for that) and no update is under
  way; a one-shot when a task completed with exit 0; failed at the first task of this deploy
  that failed or was rejected (as compose's up fails a service whose container exits), when
  an update paused or rolled back, or when the deadline passed (a task still pending, e.g.
  "no suitable node", says why)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# A task's states (swarmkit api/types.proto), in order; a task never goes back.
ENDED = ("complete", "shutdown", "failed", "rejected", "remove", "orphaned")
FAILED = ("failed", "rejected")
START_GRACE = 60.0  # seconds to pull/start a task, on top of its health deadline


@dataclass(frozen=True)
class NodeFacts:
    """One machine's engine as a swarm node (`docker info`'s Swarm part)."""

    machine: str
    state: str  # LocalNodeState: inactive, pending, active, error, locked
    node_id: str = ""
    manager: bool = False  # ControlAvailable

    @classmethod
    def from_info(cls, machine: str, info: Mapping[str, Any]) -> NodeFacts:
        swarm = info.get("Swarm") or {}
        return cls(machine, str(swarm.get("LocalNodeState") or "inactive"),
                   str(swarm.get("NodeID") or ""), bool(swarm.get("ControlAvailable")))


@dataclass(frozen=True)
class Forming:
    """How the fleet's machines become one swarm."""

    manager: str  # the machine every stack command goes to
    init: bool = False  # the manager must `docker swarm init` first
    join: tuple[str, ...] = ()  # machines that join as workers
    problems: tuple[tuple[str, str], ...] = ()  # (machine, why it cannot be a node)


def forming(machines: Sequence[str], facts: Mapping[str, NodeFacts],
            members: Iterable[str] = ()) -> Forming:
    """Which machine manages, inits or joins. `members` are the node IDs the manager's swarm
    lists (empty when there is no manager yet)."""
    ordered = sorted(machines)
    managers = [m for m in ordered if facts[m].state == "active" and facts[m].manager]
    manager = managers[0] if managers else ordered[0]
    known = set(members)
    join, problems = [], []
    for m in ordered:
        node = facts[m]
        if m == manager:
            if node.state == "active" and not managers:
                problems.append((m, _orphan))
            elif node.state not in ("active", "inactive"):
                problems.append((m, _state_problem(node)))
            continue
        if node.state == "inactive":
            join.append(m)
        elif node.state == "active":
            if managers and node.node_id not in known:
                problems.append((m, "it is a node of another swarm than the one "
                                    f"{manager} manages; run `docker swarm leave` on it "
                                    "(its tasks of that swarm stop) or take it out of the fleet"))
            elif not managers:
                problems.append((m, _orphan))
        else:
            problems.append((m, _state_problem(node)))
    return Forming(manager, init=not managers, join=tuple(join), problems=tuple(problems))


_orphan = ("it is a worker of a swarm that none of the fleet's machines manages; run "
           "`docker swarm leave` on it")


def _state_problem(node: NodeFacts) -> str:
    return (f"its swarm state is {node.state}; `docker info` on it says why "
            "(`docker swarm leave --force` resets it)")


@dataclass(frozen=True)
class TaskFacts:
    """One task of a Swarm service (`docker service ps`), as the manager reports it."""

    id: str
    node_id: str
    state: str  # Status.State
    desired: str  # DesiredState
    error: str = ""  # Status.Err
    message: str = ""  # Status.Message
    exit_code: int | None = None

    @classmethod
    def from_api(cls, task: Mapping[str, Any]) -> TaskFacts:
        status = task.get("Status") or {}
        container = status.get("ContainerStatus") or {}
        code = container.get("ExitCode")
        return cls(str(task.get("ID") or ""), str(task.get("NodeID") or ""),
                   str(status.get("State") or ""), str(task.get("DesiredState") or ""),
                   str(status.get("Err") or ""), str(status.get("Message") or ""),
                   int(code) if code is not None and status.get("State") in ENDED else None)


@dataclass(frozen=True)
class ServiceFacts:
    """One Swarm service and its tasks, as the manager reports them now."""

    name: str  # <stack>_<key>
    replicas: int
    one_shot: bool  # restart_policy none: it runs to an end
    update: str = ""  # UpdateStatus.State ("" when it never updated)
    update_message: str = ""
    tasks: tuple[TaskFacts, ...] = ()

    @classmethod
    def from_api(cls, service: Mapping[str, Any], tasks: Iterable[Mapping[str, Any]]
                 ) -> ServiceFacts:
        spec = service.get("Spec") or {}
        mode = spec.get("Mode") or {}
        replicas = int((mode.get("Replicated") or {}).get("Replicas", 1))
        policy = ((spec.get("TaskTemplate") or {}).get("RestartPolicy") or {})
        update = service.get("UpdateStatus") or {}
        return cls(str(spec.get("Name") or ""), replicas, policy.get("Condition") == "none",
                   str(update.get("State") or ""), str(update.get("Message") or ""),
                   tuple(TaskFacts.from_api(t) for t in tasks))


@dataclass(frozen=True)
class Verdict:
    """Where one service stands: done, still waiting (and on what), or failed (and why)."""

    service: str
    state: str  # converged, waiting, failed
    why: str = ""
    tasks: tuple[TaskFacts, ...] = field(default=(), repr=False)

    @property
    def done(self) -> bool:
        return self.state == "converged"

    @property
    def failed(self) -> bool:
        return self.state == "failed"


def judge(service: ServiceFacts, *, before: Iterable[str] = (), changed: bool = False,
          waited: float = 0.0, deadline: float = START_GRACE) -> Verdict:
    """The service's verdict after `waited` seconds of its level's deploy; tasks whose IDs
    are in `before` existed before this deploy and cannot fail it. `changed`: the deploy
    changed what its tasks run (their template), so only new tasks count as running (the
    old one runs on until the update replaces it, and the update may not have begun yet)."""
    old = set(before)
    name = service.name
    if service.update in ("paused", "rollback_started", "rollback_paused",
                          "rollback_completed"):
        return Verdict(name, "failed", f"its update {service.update.replace('_', ' ')}"
                       + (f": {service.update_message}" if service.update_message else ""),
                       service.tasks)
    new = [t for t in service.tasks if t.id not in old]
    broken = [t for t in new if t.state in FAILED
              or (t.state == "complete" and not service.one_shot)
              or (t.state == "complete" and t.exit_code not in (None, 0))]
    if broken:
        return Verdict(name, "failed", task_error(broken[-1]), tuple(broken))
    if service.replicas == 0:
        return Verdict(name, "converged", "scaled to 0")
    if service.one_shot:
        done = [t for t in service.tasks if t.state == "complete" and t.exit_code in (None, 0)]
        if len(done) >= service.replicas:
            return Verdict(name, "converged", "completed")
    running = [t for t in service.tasks if t.state == "running" and t.desired == "running"
               and not (changed and t.id in old)]
    updating = service.update in ("updating",)
    if len(running) >= service.replicas and not updating and not service.one_shot:
        return Verdict(name, "converged", f"{len(running)}/{service.replicas} running")
    live = [t for t in service.tasks if t.desired in ("running", "ready", "accepted")
            and t.state not in ENDED]
    why = ("waiting for " + ", ".join(sorted({_waiting_on(t) for t in live}))) if live else \
        "no task yet"
    if waited >= deadline:
        return Verdict(name, "failed", f"not converged after {waited:.0f} s: {why}",
                       tuple(live))
    return Verdict(name, "waiting", why, tuple(live))


def _waiting_on(task: TaskFacts) -> str:
    if task.state == "starting":
        return "a task starting (its health check)"
    detail = task.error or task.message
    return f"a task {task.state}" + (f" ({detail})" if detail and task.state != "running"
                                     else "")


def task_error(task: TaskFacts) -> str:
    """One task's failure as a user reads it: state, the engine's error, the exit code."""
    parts = [f"a task {task.state}"]
    if task.error:
        parts.append(task.error)
    elif task.message:
        parts.append(task.message)
    if task.exit_code not in (None, 0) and f"({task.exit_code})" not in task.error:
        parts.append(f"exit code {task.exit_code}")
    return ": ".join(parts)


def levels_up_to(levels: Sequence[Sequence[str]], index: int) -> list[str]:
    """The stack's services in levels 0..index: what the level's deploy file holds (a deploy
    without --prune leaves the earlier levels' services as they are)."""
    return [key for level in levels[:index + 1] for key in level]

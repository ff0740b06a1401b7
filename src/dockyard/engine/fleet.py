"""A command on several machines at once: `up`, `down`, `status` and `logs` over the fleet.

Each machine is one Target (one compose project on its own engine). What does not depend on
another machine runs in parallel, one thread per machine: connecting (engine/ssh.py: one
SSH connection each, an unreachable one said within 5 s), building or pulling images,
observing, creating containers, stopping. `up` then walks the plan's dependency levels
across the whole fleet: a level starts on every machine at once, and a service whose
dependency runs on another machine starts once that one is healthy there (probes of a
remote machine run inside its containers, see Engine.probe).

A machine that cannot be reached, or stops answering in the middle, does not stop the
others: what does not depend on it carries on, what does is not started, and the command
ends non-zero naming the machine, why, and what it left. Nothing already running is
stopped; `up` again converges (it is idempotent, machine by machine)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass, field
from typing import TypeVar

from dockyard.engine.apply import (
    TICK,
    UpReport,
    deadline_of,
    failure_message,
    start_level,
    wait_level,
)
from dockyard.engine.build import write_render
from dockyard.engine.deploy import ServiceStatus, prepare_up, record_images, status
from dockyard.engine.deployed import record
from dockyard.engine.probe import ProbeResult
from dockyard.engine.target import Target, compose
from dockyard.errors import (
    DockyardError,
    EngineUnavailable,
    Interrupted,
    MachineUnreachable,
    UnhealthyError,
)
from dockyard.events import HealthWaiting, LevelHealthy, LevelStarted, Sink
from dockyard.ops.fleet import ready_now, up_outcome
from dockyard.ops.reconcile import Step, one_shots, to_create, to_start, unchanged
from dockyard.plan.model import ServicePlan

T = TypeVar("T")


def each(targets: Sequence[Target], work: Callable[[Target], T]
         ) -> dict[str, T | DockyardError]:
    """`work(target)` on every target at once (daemon threads, so Ctrl-C leaves at once):
    machine -> its result, or the DockyardError it raised (a machine that stopped answering
    becomes MachineUnreachable)."""
    answers: queue.Queue[tuple[str, T | DockyardError | BaseException]] = queue.Queue()

    def one(t: Target) -> None:
        try:
            answers.put((t.machine, work(t)))
        except DockyardError as exc:
            answers.put((t.machine, exc))
        except Exception as exc:  # an SDK or socket error: is the machine still there?
            answers.put((t.machine, _gone(t) or exc))

    for t in targets:
        threading.Thread(target=one, args=(t,), daemon=True,
                         name=f"dockyard-{t.machine}").start()
    out: dict[str, T | DockyardError] = {}
    while len(out) < len(targets):
        machine, got = answers.get()
        if isinstance(got, BaseException) and not isinstance(got, DockyardError):
            raise got
        out[machine] = got
    return out


def _gone(t: Target) -> MachineUnreachable | None:
    """The machine stopped answering (why what it was doing failed), or None."""
    why = t.engine.alive()
    if not why:
        return None
    return MachineUnreachable(f"machine {t.machine} stopped answering: {why}",
                              machine=t.machine, where=t.engine.endpoint.where,
                              fix=f"bring {t.machine} back, then run the command again")


def reach(targets: Sequence[Target]) -> dict[str, EngineUnavailable]:
    """Connect to every target's engine at once: machine -> why it cannot be reached."""

    def connect(t: Target) -> None:
        t.engine.client  # noqa: B018 - connecting is the question

    return {m: r for m, r in each(targets, connect).items()
            if isinstance(r, EngineUnavailable)}


# -- up ------------------------------------------------------------------------------------


@dataclass
class FleetUpReport:
    """What `up` did on each machine, and what it could not do."""

    changed: bool
    seconds: float = 0.0
    machines: dict[str, UpReport] = field(default_factory=dict)
    results: list[ProbeResult] = field(default_factory=list)
    level_seconds: list[float] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)  # machine -> why
    not_up: dict[str, str] = field(default_factory=dict)  # service -> why not


def up_fleet(targets: Sequence[Target], *, emit: Sink, build_missing: bool = True,
             accept_stale: bool = False, tick: float = TICK) -> FleetUpReport:
    """Bring every target up, level by level across the machines (`accept_stale`: older
    images run as they are, as rollback runs them). Raises at the end (after
    doing what could be done): UnhealthyError when a service failed, MachineUnreachable when
    a machine could not be reached or died; each names the machines and what was left."""
    t0 = time.monotonic()
    first = targets[0]
    write_render(first.fleet, first.plan, first.state)
    report = FleetUpReport(changed=False)
    live = [t for t in targets if t.services()]
    errors: dict[str, DockyardError] = dict(reach(live))

    def prepare(t: Target) -> list[Step]:
        return prepare_up(t, emit=emit, build_missing=build_missing,
                          accept_stale=accept_stale)

    steps: dict[str, list[Step]] = {}
    for machine, got in each([t for t in live if t.machine not in errors], prepare).items():
        if isinstance(got, DockyardError):
            errors[machine] = got
        else:
            steps[machine] = got
    going = [t for t in live if t.machine in steps]
    failures: list[str] = []
    if any(not unchanged(steps[t.machine]) for t in going):
        report.changed = True
        failures = _apply(going, steps, errors, report, emit=emit, tick=tick)
    for t in going:  # what each machine left healthy runs now (one at a time: one file)
        if t.machine in errors or any(sp.name in report.not_up for sp in t.services()):
            continue
        if unchanged(steps[t.machine]):
            record(t.state, t.machine, t.compose_file.read_text())
        record_images(t)
    for t in live:
        if t.machine in errors:
            report.unreachable[t.machine] = errors[t.machine].message
            for sp in t.services():
                report.not_up.setdefault(sp.name, f"machine {t.machine}: "
                                                  f"{_short(errors[t.machine])}")
    report.seconds = time.monotonic() - t0
    if failures or errors:
        raise _outcome(targets, report, failures, errors)
    return report


def _apply(going: list[Target], steps: dict[str, list[Step]],
           errors: dict[str, DockyardError], report: FleetUpReport, *, emit: Sink,
           tick: float) -> list[str]:
    """Create on every machine at once, then start and wait level by level across the
    fleet; returns the failure texts (health output and logs) of services that failed."""
    plan = going[0].plan
    once = one_shots(plan.services)

    def create(t: Target) -> None:
        made = to_create(steps[t.machine])
        if made:
            compose(t, "up", "--no-start", "--no-build", "--remove-orphans", *made)
            record(t.state, t.machine, t.compose_file.read_text())

    for machine, made in each(going, create).items():
        if isinstance(made, DockyardError):
            errors[machine] = made
    bad: dict[str, str] = {}  # service -> why it is not up
    for m in errors:
        for sp in plan.on(m):
            bad[sp.name] = f"machine {m} is unreachable"
    failures: list[str] = []
    for level in plan.levels:
        parts: dict[str, list[ServicePlan]] = {}
        for t in going:
            if t.machine in errors:
                continue
            stepped = {s.service for s in steps[t.machine]}
            ready, waiting = ready_now([sp for sp in t.services()
                                        if sp.name in level and sp.name in stepped], bad)
            bad.update(waiting)
            if ready:
                parts[t.machine] = ready
        if not parts:
            continue
        t_level = time.monotonic()
        names = tuple(sp.name for m in sorted(parts) for sp in parts[m])
        emit(LevelStarted(names))
        by_machine = {t.machine: t for t in going}
        results = _level(by_machine, parts, steps, once, emit=emit, tick=tick)
        report.level_seconds.append(time.monotonic() - t_level)
        healthy: list[ProbeResult] = []
        for machine, got in sorted(results.items()):
            if isinstance(got, DockyardError):
                errors[machine] = got
                for sp in plan.on(machine):
                    bad.setdefault(sp.name, f"machine {machine} stopped answering")
                continue
            done, said = got
            report.results.extend(done)
            healthy.extend(r for r in done if r.healthy)
            for r in done:
                if not r.healthy:
                    bad[r.service] = "did not become healthy"
            if said:
                failures.append(said)
        if healthy:
            emit(LevelHealthy(tuple((r.service, r.seconds) for r in healthy)))
    report.not_up.update(bad)
    return failures


def _level(by_machine: dict[str, Target], parts: dict[str, list[ServicePlan]],
           steps: dict[str, list[Step]], once: Set[str], *, emit: Sink, tick: float
           ) -> dict[str, tuple[list[ProbeResult], str] | DockyardError]:
    """Start one level's services on each machine and wait for them, all machines at once;
    one HealthWaiting line for the whole level (not one per machine)."""
    quiet: Sink = lambda event: None if isinstance(event, HealthWaiting) else emit(event)  # noqa: E731
    deadlines = {sp.name: deadline_of(sp, sp.name in once) for m in parts for sp in parts[m]}

    def go(t: Target) -> tuple[list[ProbeResult], str]:
        level = parts[t.machine]
        starting = to_start(steps[t.machine])
        start_level(t, [sp.name for sp in level if sp.name in starting])
        results = wait_level(t, level, once, emit=quiet, tick=tick)
        failed = [r for r in results if not r.healthy]
        if not failed:
            return results, ""
        # A container that "exited" as its engine shut down: the machine died, say that
        # (asked again a moment later: the engine stops its containers before its socket).
        gone = _gone(t)
        if gone is None and any(r.state in ("exited", "dead") for r in failed):
            time.sleep(1.0)
            gone = _gone(t)
        if gone is not None:
            raise gone
        return results, failure_message(t, failed, once)

    answers: queue.Queue[dict[str, tuple[list[ProbeResult], str] | DockyardError]] = \
        queue.Queue()
    threading.Thread(target=lambda: answers.put(each([by_machine[m] for m in parts], go)),
                     daemon=True, name="dockyard-level").start()
    started = time.monotonic()
    try:
        while True:
            try:
                return answers.get(timeout=tick)
            except queue.Empty:
                now = time.monotonic() - started
                emit(HealthWaiting(tuple((n, d - now) for n, d in deadlines.items()), now))
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted while waiting for {', '.join(sorted(deadlines))}",
                          fix="`dockyard up` again carries on from here; `dockyard down` "
                              "stops it all") from None


def _short(exc: DockyardError) -> str:
    return exc.message.split(": ", 1)[-1] if exc.message.startswith("machine ") else exc.message


def _outcome(targets: Sequence[Target], report: FleetUpReport, failures: list[str],
             errors: dict[str, DockyardError]) -> DockyardError:
    """One error for everything `up` could not do, naming machines and services."""
    up_on = [t.machine for t in targets if t.services() and t.machine not in errors
             and not any(sp.name in report.not_up for sp in t.services())]
    message = up_outcome(failures, {m: e.message for m, e in errors.items()}, report.not_up,
                         up_on)
    if failures:
        return UnhealthyError(message, fix="see the health output and logs above; "
                                           "`dockyard up` again once it is fixed")
    machine = sorted(errors)[0]
    first = errors[machine]
    fix = first.fix or "bring the machine back, then `dockyard up` again converges"
    if isinstance(first, EngineUnavailable):
        return MachineUnreachable(message, machine=machine, fix=fix)
    return DockyardError(message, fix=fix)


# -- status, down, logs ----------------------------------------------------------------------


def status_fleet(targets: Sequence[Target]) -> tuple[list[ServiceStatus], dict[str, str]]:
    """Every target's service rows, probed now, all machines at once; a machine that cannot
    be reached gives `unreachable` rows and its reason (machine -> why)."""
    got = each(targets, status)
    rows: list[ServiceStatus] = []
    unreachable: dict[str, str] = {}
    for t in targets:
        answer = got[t.machine]
        if isinstance(answer, DockyardError):
            unreachable[t.machine] = answer.message
            rows += [ServiceStatus(sp.name, t.machine, sp.level, sp.image, "unreachable", "-",
                                   "", _short(answer)) for sp in t.services()]
        else:
            rows += answer
    return sorted(rows, key=lambda r: (r.level, r.machine, r.service)), unreachable


def on_each(targets: Sequence[Target], work: Callable[[Target], object]
            ) -> dict[str, DockyardError]:
    """Run `work` on every target at once; machine -> why it failed (none: all done)."""
    return {m: r for m, r in each(targets, work).items() if isinstance(r, DockyardError)}


def machines_failed(failed: dict[str, DockyardError], doing: str) -> DockyardError:
    """The error for a command that could not act on some machines: exit 3 when one could
    not be reached."""
    lines = "; ".join(failed[m].message for m in sorted(failed))
    machine = sorted(failed)[0]
    message = f"{doing} did not succeed on every machine: {lines}"
    fix = (failed[machine].fix or "bring the machine back and run the command again") + \
        f" (`-m {machine}` acts on it alone)"
    unreachable = [m for m in sorted(failed) if isinstance(failed[m], EngineUnavailable)]
    if unreachable:
        return MachineUnreachable(message, machine=unreachable[0], fix=fix)
    return DockyardError(message, fix=fix)

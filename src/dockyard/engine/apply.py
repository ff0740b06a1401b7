"""Carry out `up`'s steps (ops/reconcile.py decided them): no decision is made here.

Every container to create or recreate is made by one `docker compose up --no-start`, so a
level later pays only for the engine's `start`, not for compose loading the project and
creating containers while the level's dependencies are healthy and waiting. Then each level
is started through the engine API and probed; the next starts once it is healthy.

The waits run in daemon threads and the main thread only waits for their answers, so Ctrl-C
stops `up` at once (the probes are abandoned, not joined) and it says what it left; while it
waits it emits, every `tick` seconds, a HealthWaiting event: whom it waits for and how long
each has left (the CLI keeps it as a live line on a terminal, a line every few seconds
elsewhere)."""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Iterable, Sequence, Set
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dockyard.engine.deployed import record
from dockyard.engine.observe import container_state
from dockyard.engine.probe import ProbeResult, wait_healthy
from dockyard.engine.target import Target, compose, containers
from dockyard.errors import EngineError, Interrupted, UnhealthyError
from dockyard.events import HealthWaiting, LevelHealthy, LevelStarted, Sink
from dockyard.ops.outcome import left_behind
from dockyard.ops.reconcile import Step, one_shots, to_create, to_start
from dockyard.plan.model import ServicePlan

DEFAULT_DEADLINE = 10.0  # a service without a health check: running counts, soon
ONE_SHOT_DEADLINE = 300.0  # a one-shot without a health check: how long it may run
TICK = 1.0  # seconds between HealthWaiting events


@dataclass
class UpReport:
    changed: bool
    results: list[ProbeResult] = field(default_factory=list)
    level_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0
    steps: list[Step] = field(default_factory=list)


def apply(target: Target, steps: Sequence[Step], *, emit: Sink, tick: float = TICK) -> UpReport:
    """Create/recreate in one compose call, then start and probe level by level; raise
    UnhealthyError (naming each failed service, its health output and logs, and what is
    left) at the first level that does not become healthy, Interrupted on Ctrl-C."""
    report = UpReport(changed=True, steps=list(steps))
    made = to_create(steps)
    once = one_shots(target.plan.services)
    waiting: list[str] = []
    try:
        if made:
            compose(target, "up", "--no-start", "--no-build", "--remove-orphans", *made)
            record(target.state, target.machine, target.compose_file.read_text())
        starting = to_start(steps)
        stepped = {s.service for s in steps}
        for whole in target.levels():
            level = [sp for sp in whole if sp.name in stepped]
            if not level:
                continue
            t_level = time.monotonic()
            names = [sp.name for sp in level]
            waiting = names
            emit(LevelStarted(tuple(names)))
            start_level(target, [n for n in names if n in starting])
            results = wait_level(target, level, once, emit=emit, tick=tick)
            report.results.extend(results)
            report.level_seconds.append(time.monotonic() - t_level)
            failed = [r for r in results if not r.healthy]
            if failed:
                raise UnhealthyError(failure_message(target, failed, once),
                                     fix="see the health output and logs above; "
                                         f"`dockyard logs {failed[0].service}` shows more")
            emit(LevelHealthy(tuple((r.service, r.seconds) for r in results)))
        waiting = []
    except KeyboardInterrupt:
        doing = (f"while waiting for {', '.join(waiting)}" if waiting
                 else "while creating containers")
        raise Interrupted(f"interrupted {doing}; " + _left(target, once, waiting=set(waiting)),
                          fix="`dockyard up` again carries on from here; `dockyard down` "
                              "stops it all") from None
    return report


_PORT_TAKEN = re.compile(r"(?:Bind for |listen \w+ )(\S+):(\d+)(?: failed)?: "
                         r"(?:bind: )?(port is already allocated|address already in use)")


def start_level(target: Target, names: list[str]) -> None:
    """Start the level's containers (created by `up --no-start`) through the engine API."""
    if not names:
        return
    found = containers(target.engine, target.project)
    missing = [n for n in names if n not in found]
    if missing:  # not created: let compose say why, in its own words
        compose(target, "up", "--detach", "--no-deps", "--no-build", *missing)
    waiting = [(n, found[n]) for n in names if n in found and found[n].status != "running"]
    if waiting:
        with ThreadPoolExecutor(max_workers=len(waiting)) as pool:
            list(pool.map(lambda nc: _start(target.machine, *nc), waiting))


def port_taken(said: str) -> tuple[str, str] | None:
    """(address, port) when the engine's start error says a host port is taken."""
    found = _PORT_TAKEN.search(said)
    return (found[1], found[2]) if found else None


def _start(machine: str, name: str, container: Any) -> None:
    """Start one container; a host port taken since the preflight is one sentence."""
    from docker.errors import APIError

    try:
        container.start()
    except APIError as exc:
        said = str(exc.explanation or exc)
        taken = port_taken(said)
        if taken is None:
            raise EngineError(f"service {name} did not start: {said}") from None
        address, port = taken
        raise EngineError(
            f"service {name} did not start: host port {port} ({address}) is already in use "
            "on this machine", stderr=said,
            fix=f"stop what holds port {port} (`dockyard -m {machine} check` "
                "names it), or give the service another host port (`host:`)") from None


def wait_level(target: Target, level: list[ServicePlan], once: Set[str], *, emit: Sink,
                tick: float) -> list[ProbeResult]:
    """Wait for each service of the level in a daemon thread; the main thread only takes
    their answers, emits who it still waits for every `tick` seconds, and on Ctrl-C stops
    them and leaves at once."""
    engine = target.engine
    stop = threading.Event()
    answers: queue.Queue[ProbeResult | Exception] = queue.Queue()
    deadlines = {sp.name: deadline_of(sp, sp.name in once) for sp in level}

    def wait(sp: ServicePlan) -> None:
        def get() -> Any:
            return containers(engine, target.project).get(sp.name)

        try:
            answers.put(wait_healthy(sp.name, sp.spec, get, deadline=deadlines[sp.name],
                                     probe=engine.probe, one_shot=sp.name in once,
                                     stop=stop))
        except Exception as exc:  # raised again by the main thread
            answers.put(exc)

    for sp in level:
        threading.Thread(target=wait, args=(sp,), name=f"dockyard-wait-{sp.name}",
                         daemon=True).start()
    started = time.monotonic()
    results: dict[str, ProbeResult] = {}
    next_tick = started + tick
    try:
        while len(results) < len(level):
            try:
                r = answers.get(timeout=max(0.01, min(0.5, next_tick - time.monotonic())))
                if isinstance(r, Exception):
                    raise r
                results[r.service] = r
            except queue.Empty:
                pass
            now = time.monotonic()
            if now >= next_tick and len(results) < len(level):
                emit(HealthWaiting(tuple((n, d - (now - started)) for n, d in deadlines.items()
                                         if n not in results), now - started))
                next_tick = now + tick
    finally:
        stop.set()
    return [results[sp.name] for sp in level]


def deadline_of(sp: ServicePlan, one_shot: bool) -> float:
    if sp.spec.health:
        return sp.spec.health.deadline
    return ONE_SHOT_DEADLINE if one_shot else DEFAULT_DEADLINE


def _left(target: Target, once: Set[str], *, failed: Set[str] = frozenset(),
          waiting: Set[str] = frozenset()) -> str:
    """What the machine's services are left as (one container list)."""
    found = {name: container_state(c)
             for name, c in containers(target.engine, target.project).items()}
    return left_behind([sp.name for sp in target.services()], found, failed=failed,
                       waiting=waiting, one_shot=once)


def failure_message(target: Target, failed: Iterable[ProbeResult], once: Set[str]) -> str:
    parts = []
    running = containers(target.engine, target.project)
    names = set()
    for r in failed:
        names.add(r.service)
        c = running.get(r.service)
        logs = c.logs(tail=20).decode(errors="replace").rstrip() if c is not None else ""
        parts.append(f"{what_failed(r, r.service in once)}\n"
                     f"--- last 20 log lines of {r.service} ---\n{logs or '(no output)'}")
    found = {name: container_state(c) for name, c in running.items()}
    parts.append(left_behind([sp.name for sp in target.services()], found, failed=names,
                             one_shot=once))
    return "\n".join(parts)


def what_failed(r: ProbeResult, one_shot: bool) -> str:
    """One line for a service that failed: still running and not healthy (with its last
    health output), exited, crash-looping, or a one-shot that did not end with exit 0."""
    ended = r.state in ("exited", "dead") or r.state == "restarting" \
        or "restart policy" in r.output
    if one_shot:
        if ended:
            return f"service {r.service}, a one-shot others wait for, failed: {r.output}"
        return (f"service {r.service}, a one-shot others wait for, did not finish within "
                f"{r.seconds:.0f} s (state: {r.state})")
    if r.state in ("exited", "dead"):
        return f"service {r.service} exited before it became healthy: {r.output}"
    if ended:
        return f"service {r.service} is crash-looping: {r.output}"
    return (f"service {r.service} did not become healthy within {r.seconds:.0f} s "
            f"(state: {r.state}); last health output: {r.output}")

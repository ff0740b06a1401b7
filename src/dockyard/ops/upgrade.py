"""`dockyard upgrade`'s decisions: which services change and in which order, the journal's
steps, what a resume or a rollback still has to do, and what an interrupted one left.

Pure: no engine, no clock (times come in as strings). engine/upgrade.py carries the steps
out and writes the journal (fsync) before each one.

The set: every service whose container `up` would create or recreate (ops/reconcile.py: no
container, config changed, image changed), or only those named, plus, transitively, the
dependents that declare `restart: true` on one of them (compose's depends_on.restart).
Order: start levels, then name; a rollback goes back in the same order.

The journal is a list of steps, each with a kind, a service and a status. A kind is one
entry in `forward_steps` / `rollback_steps` here and one runner in engine/upgrade.py
(`RUNNERS`); how one service's old container gives way to its new one is that service's
strategy (`strategy_of`, one runner per strategy in engine/upgrade.py's `REPLACE`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from dockyard.manifest.models import ServiceSpec
from dockyard.ops.reconcile import Create, Recreate, Step
from dockyard.plan.model import ServicePlan

VERSION = 1
STOP_FIRST = "stop-first"


class Phase(StrEnum):
    FORWARD = "forward"  # recreating the set on the new images
    ROLLBACK = "rollback"  # a service failed (or `dockyard rollback`): going back
    DONE = "done"  # every service of the set new and healthy
    ROLLED_BACK = "rolled back"  # every service of the set old and healthy again
    ROLLBACK_FAILED = "rollback failed"  # going back failed: the journal stays
    ABORTED = "aborted"  # a step failed before anything changed (a pre-upgrade backup)


class Status(StrEnum):
    PENDING = "pending"
    STARTED = "started"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # a forward step never begun when the upgrade turned back


class Kind(StrEnum):
    RECREATE = "recreate"  # forward: the service onto its new image and config, gated
    REVERT = "revert"  # back: the service onto its old image ID and config, gated
    # back: the service's pre-upgrade backup into fresh volumes, then (a service of the
    # set) its old image and config, gated (`backup: {restore_on_rollback: true}`)
    RESTORE = "restore"


class Record(BaseModel):
    """Lenient like every model read back from disk; mutable: the journal's steps change."""

    model_config = ConfigDict(extra="ignore")


class ServiceChange(Record):
    """One service of the set: what it runs before the upgrade, and what it will run."""

    service: str
    level: int
    reason: str  # why it is in the set: "image changed: ...", "restart: true on db", ...
    strategy: str = STOP_FIRST
    old_image: str = ""  # the image ID its container runs now ("": it has none yet)
    old_ref: str = ""  # the image ref that container was made from
    old_config: str = ""  # the compose file (in the journal's folder) it was made from
    old_hash: str = ""  # its compose config hash
    new_image: str = ""  # the image ID `ref` names at the start of the upgrade
    ref: str = ""  # the image ref the new configuration names
    new_hash: str = ""
    deadline: float = 0.0  # seconds its health gate waits (start_period + interval x retries)
    one_shot: bool = False  # others wait for it with `condition: completed`: gated on exit 0
    force: bool = False  # neither image nor config changes (restart: true): recreate anyway


class JournalStep(Record):
    kind: str
    service: str = ""
    phase: str = Phase.FORWARD
    status: str = Status.PENDING
    at: str = ""  # when the status last changed (ISO 8601, UTC)
    detail: str = ""


class Failure(Record):
    """The service that failed, its last health output and its last log lines."""

    service: str
    output: str  # its last health output (the last few lines)
    logs: str = ""  # its last 20 log lines
    summary: str = ""  # one sentence: never healthy by its deadline, exited, crash-looping


def last_lines(text: str, count: int = 5) -> str:
    """A long health output (a Python traceback) as its last `count` lines."""
    lines = text.strip().splitlines()
    return "\n".join(lines[-count:]) if len(lines) > count else text.strip()


class Journal(Record):
    version: int = VERSION
    id: str
    pid: int
    machine: str
    project: str
    started: str
    phase: str = Phase.FORWARD
    new_config: str = "new.yaml"  # in the journal's folder
    services: list[ServiceChange]
    steps: list[JournalStep]
    failure: Failure | None = None
    backup_run: str = ""  # the pre-upgrade backup run's id ("": none was needed)
    restore: list[str] = []  # services a rollback restores it into, in start order

    def change(self, service: str) -> ServiceChange:
        """The set's entry of `service` (a step of the whole set has service "")."""
        return next(c for c in self.services if c.service == service)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Journal:
        return cls.model_validate_json(text)

    @property
    def finished(self) -> bool:
        return self.phase in (Phase.DONE, Phase.ROLLED_BACK, Phase.ABORTED)


NANOSECONDS = 1e9


def gate_deadline(spec: ServiceSpec, image_check: Mapping[str, Any] | None
                  ) -> float | None:
    """How long the health gate waits for the service: its `health:`'s start_period +
    interval x retries, else its image's own HEALTHCHECK's (the engine's defaults, 30 s x 3,
    where it sets none); None when it has no health check (the gate refuses it)."""
    if spec.health is not None:
        return spec.health.deadline
    test = list(image_check.get("Test") or []) if image_check and spec.image_health else []
    if not test or test[0] == "NONE":
        return None

    def seconds(key: str, default: float) -> float:
        value = image_check.get(key) if image_check else None
        return float(value) / NANOSECONDS if isinstance(value, int | float) and value \
            else default

    retries = image_check.get("Retries") if image_check else None
    count = int(retries) if isinstance(retries, int) and retries > 0 else 3
    return seconds("StartPeriod", 0.0) + seconds("Interval", 30.0) * count


def strategy_of(spec: ServiceSpec) -> str:
    """How a service's old container gives way to the new one. Today every service stops
    first, then starts (a start-first strategy is one more entry here and in REPLACE)."""
    return STOP_FIRST


def changed_set(services: Sequence[ServicePlan], steps: Sequence[Step],
                requested: Sequence[str] = ()) -> list[tuple[ServicePlan, str]]:
    """(service, why) for every service the upgrade changes, in dependency order.

    `steps` are reconcile's for the machine's services; `requested` (names) keeps only those
    of them that changed, before their `restart: true` dependents are added."""
    by_name = {sp.name: sp for sp in services}
    why: dict[str, str] = {}
    for step in steps:
        if isinstance(step, (Create, Recreate)) and (not requested or step.service in requested):
            why[step.service] = f"{step.reason}: {step.detail}" if step.detail \
                else str(step.reason)
    for name, reason in restart_dependents(by_name, set(why)).items():
        why.setdefault(name, reason)
    chosen = [by_name[n] for n in why]
    return [(sp, why[sp.name]) for sp in sorted(chosen, key=lambda sp: (sp.level, sp.name))]


def restart_dependents(services: Mapping[str, ServicePlan], changed: set[str]) -> dict[str, str]:
    """Services not in `changed` that declare `restart: true` on one that is (transitively,
    in a stable order): name -> "restart: true on <dependency>"."""
    found: dict[str, str] = {}
    frontier = sorted(changed)
    while frontier:
        nxt = []
        for name, sp in sorted(services.items()):
            if name in changed or name in found:
                continue
            for dep in frontier:
                spec = sp.spec.depends_on.get(dep)
                if spec is not None and spec.restart:
                    found[name] = f"restart: true on {dep}"
                    nxt.append(name)
                    break
        frontier = nxt
    return found


def forward_steps(changes: Sequence[ServiceChange]) -> list[JournalStep]:
    """The steps of an upgrade going forward (the pre-upgrade backup is taken before the
    journal is first written: a failed one leaves no upgrade behind)."""
    return [JournalStep(kind=Kind.RECREATE, service=c.service) for c in changes]


def rollback_steps(journal: Journal) -> list[JournalStep]:
    """The steps back: every service a forward step touched (started, done or failed), in
    dependency order, onto its old image and config; a service with `restore_on_rollback`
    (journal.restore) gets its pre-upgrade backup back instead, into fresh volumes, before
    its old version starts, and such a service outside the set (a database the new code
    may have migrated) is restored first."""
    touched = {s.service for s in journal.steps
               if s.phase == Phase.FORWARD and s.status != Status.PENDING
               and s.status != Status.SKIPPED}
    # Data the new code may have migrated goes back first, its dependencies before the
    # services of the set that stand on them (those are stopped by the restore).
    members = {c.service for c in journal.services}
    restored = [JournalStep(kind=Kind.RESTORE, service=name, phase=Phase.ROLLBACK)
                for name in journal.restore if name not in members] if touched else []
    return restored + [
        JournalStep(kind=Kind.RESTORE if c.service in journal.restore else Kind.REVERT,
                    service=c.service, phase=Phase.ROLLBACK)
        for c in journal.services if c.service in touched]


def turn_back(journal: Journal, at: str, failure: Failure | None = None) -> Journal:
    """The journal going back: forward steps never begun are skipped, the rollback's steps
    appended (once), the phase is ROLLBACK."""
    out = journal.model_copy(deep=True)
    if failure is not None:
        out.failure = failure
    if out.phase == Phase.FORWARD:
        back = rollback_steps(out)
        for step in out.steps:
            if step.status == Status.PENDING:
                step.status, step.at = Status.SKIPPED, at
        out.steps.extend(back)
    out.phase = Phase.ROLLBACK
    return out


def to_do(journal: Journal) -> list[int]:
    """Indices of the steps of the journal's current phase still to run (a step that had
    started when dockyard died runs again: every runner is idempotent)."""
    phase = Phase.FORWARD if journal.phase == Phase.FORWARD else Phase.ROLLBACK
    return [i for i, s in enumerate(journal.steps)
            if s.phase == phase and s.status in (Status.PENDING, Status.STARTED, Status.FAILED)]


def mixed(journal: Journal, running: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(service, side, image ID) for each service of the set: side is "new", "old",
    "absent" (no container) or "other" (an image neither side names)."""
    rows = []
    for c in journal.services:
        now = running.get(c.service, "")
        side = ("new" if now and now == c.new_image else "old" if now and now == c.old_image
                else "absent" if not now else "other")
        if not now and not c.old_image:
            side = "old"  # a service the upgrade adds: having none is its old state
        rows.append((c.service, side, now))
    return rows


def interrupted(journal: Journal, running: Mapping[str, str]) -> str:
    """What `status` says about an upgrade that did not end: its phase, which service runs
    which image, and how to finish."""
    cut = {s.service for s in journal.steps if s.status == Status.STARTED}
    where = ", ".join(f"{name} {side}" + (f" ({short(image)})" if image else "")
                      + (", not known healthy" if name in cut else "")
                      for name, side, image in mixed(journal, running))
    head = {Phase.FORWARD: "was interrupted", Phase.ROLLBACK: "was interrupted while rolling "
            "back", Phase.ROLLBACK_FAILED: "could not be rolled back"}.get(
        Phase(journal.phase), "did not end")
    if journal.phase == Phase.FORWARD:
        how = ("`dockyard upgrade --resume` finishes it (all new), `dockyard rollback` "
               "takes every service back (all old)")
    else:
        how = "`dockyard rollback` (or `dockyard upgrade --resume`) finishes going back"
    failed = f"; {journal.failure.service} failed" if journal.failure else ""
    return (f"the upgrade started {journal.started} (pid {journal.pid}) {head}{failed}: "
            f"{where}; {how}")


def short(image: str) -> str:
    return image.removeprefix("sha256:")[:12] or "none"

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
from dockyard.plan.ingress import fronted_ports
from dockyard.plan.model import ServicePlan

VERSION = 1
STOP_FIRST = "stop-first"
START_FIRST = "start-first"


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
    # The old container's own health check (the engine's Config.Healthcheck) where the new
    # configuration changes it: going back is judged by that one, not by the new `health:`.
    old_check: dict[str, Any] = {}


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
    # The machines of one upgrade across machines (each has a journal with this id): they
    # go forward together and back together. Empty: this machine's upgrade alone.
    group: list[str] = []

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
    """How a service's old container gives way to the new one: start-first (the new one
    beside the old, the machine's ingress moves its host ports' traffic) for a start-first
    service with published TCP ports; every other service stops first, then starts."""
    return START_FIRST if fronted_ports(spec) else STOP_FIRST


def old_check(old: Mapping[str, Any] | None, new_test: Sequence[str]) -> dict[str, Any]:
    """The old container's health check (its Config.Healthcheck) when the new configuration
    runs another test (`new_test`, as compose renders it), else {}: a rollback gates the
    service on the check its old configuration had."""
    test = list((old or {}).get("Test") or [])
    if not test or test[0] == "NONE" or test == list(new_test):
        return {}
    return dict(old or {})


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


def next_step(journals: Mapping[str, Journal], levels: Mapping[str, int]
              ) -> tuple[str, int] | None:
    """The step an upgrade across machines runs next, (machine, index), None when every
    journal is through its phase: of each journal's next step, the one whose service starts
    first (`levels`: service -> start level), then by service and machine name. A journal
    keeps its own order; across machines the set goes forward (and back) level by level,
    as on one machine."""
    heads = []
    for machine, journal in journals.items():
        todo = to_do(journal)
        if todo:
            service = journal.steps[todo[0]].service
            heads.append((levels.get(service, 0), service, machine, todo[0]))
    if not heads:
        return None
    _, _, machine, index = min(heads)
    return machine, index


def to_turn_back(journals: Mapping[str, Journal]) -> list[str]:
    """The machines whose journal still goes forward while another of the same upgrade goes
    back (a service failed there, or a kill came between writing the journals turned back):
    one upgrade across machines ends all new or all old, so they turn back too."""
    if all(j.phase == Phase.FORWARD for j in journals.values()):
        return []
    return sorted(m for m, j in journals.items() if j.phase == Phase.FORWARD)


def mixed(journal: Journal, running: Mapping[str, str],
          hashes: Mapping[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(service, side, image ID) for each service of the set: side is "new", "old",
    "absent" (no container) or "other" (an image neither side names). A service whose image
    stays the same (its configuration changed) is told by its container's config hash
    (`hashes`: service -> the hash its container was made with), where known."""
    rows = []
    for c in journal.services:
        now = running.get(c.service, "")
        side = ("new" if now and now == c.new_image else "old" if now and now == c.old_image
                else "absent" if not now else "other")
        made = (hashes or {}).get(c.service, "")
        if now and c.old_image == c.new_image and made and c.old_hash != c.new_hash:
            side = "new" if made == c.new_hash else "old" if made == c.old_hash else "other"
        if not now and not c.old_image:
            side = "old"  # a service the upgrade adds: having none is its old state
        rows.append((c.service, side, now))
    return rows


def interrupted(journal: Journal, running: Mapping[str, str],
                hashes: Mapping[str, str] | None = None) -> str:
    """What `status` says about an upgrade that did not end: its phase, which service runs
    which image, and how to finish."""
    cut = {s.service for s in journal.steps if s.status == Status.STARTED}
    where = ", ".join(f"{name} {side}" + (f" ({short(image)})" if image else "")
                      + (", not known healthy" if name in cut else "")
                      for name, side, image in mixed(journal, running, hashes))
    head = {Phase.FORWARD: "was interrupted", Phase.ROLLBACK: "was interrupted while rolling "
            "back", Phase.ROLLBACK_FAILED: "could not be rolled back"}.get(
        Phase(journal.phase), "did not end")
    if journal.phase == Phase.FORWARD:
        how = ("`dockyard upgrade --resume` finishes it (all new), `dockyard rollback` "
               "takes every service back (all old)")
    else:
        how = "`dockyard rollback` (or `dockyard upgrade --resume`) finishes going back"
    failed = f"; {journal.failure.service} failed" if journal.failure else ""
    others = [m for m in journal.group if m != journal.machine]
    across = (f" (one upgrade with {', '.join(others)}: it ends on all of them at once)"
              if others else "")
    return (f"the upgrade started {journal.started} (pid {journal.pid}) {head}{failed}"
            f"{across}: {where}; {how}")


def short(image: str) -> str:
    return image.removeprefix("sha256:")[:12] or "none"

"""`dockyard backup`, `backups` and `restore`: each machine's stateful services saved into a
run folder of its own, the runs listed, and runs put back into fresh volumes
(engine/backup.py). On a fleet of several machines every chosen machine (all, or those
named with -m) acts at once (engine/fleet.py): an unreachable one is said within 5 s, the
others go on, and the command fails at the end naming it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.actions.target import (
    Choice,
    choose_target,
    choose_targets,
    require_machines,
    state_of,
)
from dockyard.errors import BackupError, DockyardError
from dockyard.events import Progress, Sink

if TYPE_CHECKING:
    from dockyard.engine.backup import RestoreReport
    from dockyard.engine.target import Target
    from dockyard.manifest.load import Fleet
    from dockyard.ops.backup import RunRecord
    from dockyard.plan.model import Plan


@dataclass(frozen=True)
class BackupResult:
    """The run written, where, and for which machine."""

    target: Target
    root: Path
    run: RunRecord


@dataclass(frozen=True)
class RestoreResult:
    target: Target
    root: Path
    report: RestoreReport


@dataclass
class FleetBackupResult:
    """One command's runs (machine -> run, in the fleet's machine order), their shared
    batch, and the machines it could not back up (machine -> why)."""

    root: Path
    batch: str
    runs: dict[str, RunRecord] = field(default_factory=dict)
    failed: dict[str, DockyardError] = field(default_factory=dict)


@dataclass
class FleetRestoreResult:
    """What each machine got back (machine -> report), the chosen machines without a run
    to restore, and those it could not restore (machine -> why)."""

    root: Path
    restored: dict[str, RestoreReport] = field(default_factory=dict)
    without: list[str] = field(default_factory=list)
    failed: dict[str, DockyardError] = field(default_factory=dict)


def backup_root(fleet: Fleet) -> Path:
    """Where the fleet's runs are: `backup.target`, else `backups/` in the state folder."""
    from dockyard.engine.backup import backup_root as root_of

    return root_of(fleet, state_of(fleet))


def backup(fleet: Fleet, plan: Plan, services: list[str] | None, choice: Choice, *,
           emit: Sink, reason: str = "backup") -> BackupResult:
    """Back up `services` (none: every stateful one on the chosen machine) into a new run;
    an unwritable target is refused before any engine is asked anything."""
    from dockyard.engine.backup import backup as take
    from dockyard.engine.backup import ensure_writable, root_where

    root = backup_root(fleet)
    ensure_writable(root, root_where(fleet))
    target = choose_target(fleet, plan, choice)
    return BackupResult(target, root, take(target, services or None, emit=emit,
                                           reason=reason, root=root))


def backup_fleet(fleet: Fleet, plan: Plan, services: list[str] | None, choice: Choice, *,
                 emit: Sink, reason: str = "backup") -> FleetBackupResult:
    """Back up `services` (none: every stateful one) on every chosen machine at once, one
    run each, all of one batch; a machine with nothing to save is skipped. An unwritable
    target, or a service that is unknown or on a machine not chosen, is refused before any
    engine is asked anything. Machines that fail are in `failed`; the others' runs stand."""
    from dockyard.engine.backup import backup as take
    from dockyard.engine.backup import ensure_writable, root_where
    from dockyard.engine.fleet import each, reach
    from dockyard.ops.backup import run_id
    from dockyard.plan.backup import backup_share

    root = backup_root(fleet)
    ensure_writable(root, root_where(fleet))
    targets = choose_targets(fleet, plan, choice)
    share = backup_share(fleet.spec, {t.machine: [sp.name for sp in t.services()]
                                      for t in targets}, services,
                         {n: sp.machine for n, sp in plan.services.items()})
    going = [t for t in targets if t.machine in share]
    if not going:
        machines = ", ".join(t.machine for t in targets)
        raise BackupError(f"no service on machine {machines} holds data to back up",
                          fix="give a service named volumes, or `backup: {kind: ...}`")
    result = FleetBackupResult(root, run_id(datetime.now(UTC)))
    result.failed.update(reach(going))
    got = each([t for t in going if t.machine not in result.failed],
               lambda t: take(t, share[t.machine], emit=emit, reason=reason, root=root,
                              batch=result.batch))
    for t in going:
        answer = got.get(t.machine)
        if isinstance(answer, DockyardError):
            result.failed[t.machine] = answer
        elif answer is not None:
            result.runs[t.machine] = answer
    return result


def backups(fleet: Fleet, machines: tuple[str, ...] = ()) -> tuple[Path, list[RunRecord]]:
    """The fleet's complete runs (of `machines`, none: all), oldest first, and where they
    are (no engine needed)."""
    from dockyard.engine.backup import list_runs

    root = backup_root(fleet)
    require_machines(fleet, machines)
    return root, [r for r in list_runs(root) if not machines or r.machine in machines]


def restore(fleet: Fleet, plan: Plan, run: str, services: list[str] | None, choice: Choice,
            *, emit: Sink, replace: bool = False) -> RestoreResult:
    """Run `run`'s data (`latest`: the newest run) of `services` (none: all it holds) into
    fresh volumes, each service started and healthy; files are checked first."""
    from dockyard.engine.backup import restore as put_back

    root = backup_root(fleet)
    target = choose_target(fleet, plan, choice)
    return RestoreResult(target, root, put_back(target, run, services or None, emit=emit,
                                                replace=replace, root=root))


def restore_fleet(fleet: Fleet, plan: Plan, run: str, services: list[str] | None,
                  choice: Choice, *, emit: Sink, replace: bool = False) -> FleetRestoreResult:
    """Restore on every chosen machine at once: `latest` gives each its own newest run, a
    run id its own machine, a batch id each machine its run of that batch. Every run's
    files are checked (sha256) and its volumes looked at on every machine before anything
    is touched on any; a named service must be held by one of the runs."""
    from dockyard.engine.backup import check_restore, list_runs
    from dockyard.engine.backup import restore as put_back
    from dockyard.engine.build import write_render
    from dockyard.engine.fleet import each, reach
    from dockyard.ops.backup import pick_runs
    from dockyard.plan.backup import stateful

    root = backup_root(fleet)
    runs = list_runs(root)
    named = choice.machines or ((choice.machine,) if choice.machine else ())
    targets = {t.machine: t for t in choose_targets(fleet, plan, choice)}
    chosen = list(named) or [m for m, t in targets.items()
                             if stateful(fleet.spec, [sp.name for sp in t.services()])]
    try:
        pick = pick_runs([(r.id, r.machine, r.batch) for r in runs], run, chosen or
                         list(targets), bool(named))
    except LookupError:
        known = ", ".join(r.id for r in runs[-5:]) or "none yet"
        raise BackupError(f"no backup run or batch {run!r} in {root} (latest: {known})",
                          fix="`dockyard backups` lists the runs") from None
    except ValueError as exc:
        raise BackupError(f"{exc} in {root}; nothing was restored",
                          fix="`dockyard backup` makes one" if run == "latest" else
                              "`dockyard backups` lists the runs and their machines") from None
    gone = [m for m in pick.runs if m not in targets]
    if gone:
        raise BackupError(f"backup run {pick.runs[gone[0]]} is of machine {gone[0]}, which "
                          "the fleet no longer has; nothing was restored",
                          where=fleet.where("machines"),
                          fix="restore it with the manifest it was made with")
    records = {m: next(r for r in runs if r.id == rid) for m, rid in pick.runs.items()}
    for name in services or []:
        if not any(r.service(name) for r in records.values()):
            held = sorted({s.service for r in records.values() for s in r.services})
            raise BackupError(f"no backup run restored here holds service {name!r} (they "
                              f"hold: {', '.join(held)}); nothing was restored",
                              fix="`dockyard backups` lists what each run holds")
    going = [targets[m] for m in pick.runs]
    result = FleetRestoreResult(root, without=pick.without)
    for m in pick.without:
        emit(Progress(f"machine {m} has no backup run to restore: skipped"))
    result.failed.update(reach(going))
    going = [t for t in going if t.machine not in result.failed]

    def wanted(t: Target) -> list[str] | None:
        record = records[t.machine]
        return [n for n in services if record.service(n)] if services else None

    checked: dict[str, list[str]] = {}
    for machine, got in each(going, lambda t: check_restore(t, root, records[t.machine],
                                                            wanted(t), replace=replace)
                             ).items():
        if isinstance(got, BackupError):
            raise got  # a file or a volume says no: nothing is touched anywhere
        if isinstance(got, DockyardError):
            result.failed[machine] = got
        else:
            checked[machine] = got
    going = [t for t in going if t.machine in checked]
    if going:
        write_render(fleet, plan, state_of(fleet))
    for machine, done in each(going, lambda t: put_back(
            t, records[t.machine].id, emit=emit, replace=replace, root=root,
            checked=checked[t.machine])).items():
        if isinstance(done, DockyardError):
            result.failed[machine] = done
        else:
            result.restored[machine] = done
    result.restored = {m: result.restored[m] for m in pick.runs if m in result.restored}
    return result

"""`dockyard backup`, `backups` and `restore`: a machine's stateful services saved into a
run folder, the runs listed, and a run put back into fresh volumes (engine/backup.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.actions.target import Choice, choose_target, state_of
from dockyard.events import Sink

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


def backups(fleet: Fleet) -> tuple[Path, list[RunRecord]]:
    """The fleet's complete runs, oldest first, and where they are (no engine needed)."""
    from dockyard.engine.backup import list_runs

    root = backup_root(fleet)
    return root, list_runs(root)


def restore(fleet: Fleet, plan: Plan, run: str, services: list[str] | None, choice: Choice,
            *, emit: Sink, replace: bool = False) -> RestoreResult:
    """Run `run`'s data (`latest`: the newest run) of `services` (none: all it holds) into
    fresh volumes, each service started and healthy; files are checked first."""
    from dockyard.engine.backup import restore as put_back

    root = backup_root(fleet)
    target = choose_target(fleet, plan, choice)
    return RestoreResult(target, root, put_back(target, run, services or None, emit=emit,
                                                replace=replace, root=root))

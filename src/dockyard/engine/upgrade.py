"""`dockyard upgrade` on one machine: the set (ops/upgrade.py decides it) recreated one
service at a time in dependency order, each gated on dockyard's own health probe with its
own deadline; the first that fails turns the whole set back onto its exact previous image
IDs and compose configuration, in the same order, healthy again (volumes kept).

Every step is written to a journal first (`<state>/upgrade/<machine>/journal.json`, fsync'd,
file and folder), so a `kill -9` at any point leaves a record that `status` reports and
that `upgrade --resume` (all new) or `rollback` (all old) finishes; every runner is
idempotent, so the step that was cut runs again. The journal's folder also keeps the
compose files forward (new.yaml, the rendered file at the start) and back (old-N.yaml, the
kept file each old container was made from, engine/deployed.py).

Kill points (engine/interrupts.py, DOCKYARD_KILL_AT=<point>[:<n>]):
    upgrade.begin      the journal written, nothing changed yet
    upgrade.recreate   before the n-th forward step (the step marked started)
    upgrade.gate       the n-th new container started, not yet healthy
    upgrade.rollback   a step failed; the journal turned back, nothing reverted yet
    upgrade.revert     before the n-th rollback step (marked started)
    upgrade.end        every step done, the journal not yet closed

To add a step kind (a pre-upgrade backup, a restore before a revert): a Kind, its place in
ops/upgrade.py's forward_steps / rollback_steps, and one runner in RUNNERS, which gets the
context and the step (service "" for a step of the whole set), is idempotent, and raises
StepFailed (any DockyardError counts as one) or Abort (failed before anything changed: no
rollback, the upgrade stops with that error). Its kill point is `upgrade.<kind>`.
To add a replace strategy (start-first): one entry in ops/upgrade.py's strategy_of and one
function in REPLACE; it gets the context, the change and the compose file, and calls
`ctx.gate(change, get)` (StepFailed when not healthy by the deadline) before traffic moves."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dockyard.engine.apply import what_failed
from dockyard.engine.backup import backup, backup_root, read_run, restore_service
from dockyard.engine.build import CURRENT_TAG, PREV_TAG, repo_of, write_render
from dockyard.engine.deploy import record_images
from dockyard.engine.deployed import record, records
from dockyard.engine.interrupts import reach
from dockyard.engine.observe import observe
from dockyard.engine.private import fsync_dir
from dockyard.engine.probe import ProbeResult, wait_healthy
from dockyard.engine.run import pid_alive, run
from dockyard.engine.target import HASH_LABEL, Target, containers
from dockyard.errors import (
    BackupError,
    DockyardError,
    EngineError,
    Interrupted,
    ManifestError,
    RollbackFailed,
    UpgradePending,
    UpgradeRolledBack,
)
from dockyard.events import Progress, Sink, UpgradePlanned, UpgradeStep
from dockyard.ops.reconcile import decide, one_shots
from dockyard.ops.upgrade import (
    NANOSECONDS,
    START_FIRST,
    STOP_FIRST,
    Failure,
    Journal,
    JournalStep,
    Kind,
    Phase,
    ServiceChange,
    Status,
    changed_set,
    forward_steps,
    gate_deadline,
    interrupted,
    last_lines,
    mixed,
    next_step,
    old_check,
    short,
    strategy_of,
    to_turn_back,
    turn_back,
)
from dockyard.plan.backup import dependencies, pre_upgrade, restore_on_rollback
from dockyard.workspace import upgrade_dir

NO_GATE_DEADLINE = 10.0  # --no-health-gate, no health check: running counts, soon
ONE_SHOT_DEADLINE = 300.0


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class UpgradeReport:
    changed: bool
    journal: Journal | None = None  # the first machine's (by name)
    outcome: str = "unchanged"  # unchanged, done, rolled back
    journals: dict[str, Journal] = dataclasses.field(default_factory=dict)  # per machine


class Abort(Exception):
    """A runner failed before anything changed (a pre-upgrade backup): the upgrade stops
    with `error`, without a rollback, and its journal is closed."""

    def __init__(self, error: DockyardError) -> None:
        super().__init__(error.message)
        self.error = error


class StepFailed(Exception):
    """A runner's service did not become healthy (or could not be made)."""

    def __init__(self, failure: Failure, message: str) -> None:
        super().__init__(message)
        self.failure, self.message = failure, message


# -- the journal on disk ---------------------------------------------------------------------


def write_durable(path: Path, text: str) -> None:
    """Write `text` to `path` so that it survives a power cut once this returns: a temporary
    file fsync'd, renamed over `path`, and the folder fsync'd (0600: the owner's alone)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def journal_path(target: Target) -> Path:
    return upgrade_dir(target.state, target.machine) / "journal.json"


def read_journal(target: Target) -> Journal | None:
    """The machine's upgrade that has not ended (interrupted, or running now), if any."""
    path = journal_path(target)
    if not path.is_file():
        return None
    return Journal.from_json(path.read_text())


def _close(target: Target, journal: Journal) -> None:
    """The journal of an upgrade that ended becomes last.json: no upgrade is pending."""
    path = journal_path(target)
    write_durable(path.with_name("last.json"), journal.to_json())
    path.unlink(missing_ok=True)
    fsync_dir(path.parent)


def running_images(target: Target) -> tuple[dict[str, str], dict[str, str]]:
    """service -> the image ID its container runs, and service -> the config hash it was
    made with (a service without a container is in neither)."""
    found = containers(target.engine, target.project)
    return ({name: str((c.attrs or {}).get("Image") or "") for name, c in found.items()},
            {name: str((c.labels or {}).get(HASH_LABEL, "")) for name, c in found.items()})


def pending_line(target: Target) -> str | None:
    """What `status` says about an upgrade of this machine that did not end, else None."""
    journal = read_journal(target)
    if journal is None:
        return None
    if journal.pid != os.getpid() and pid_alive(journal.pid) and journal.phase in (
            Phase.FORWARD, Phase.ROLLBACK):
        return (f"an upgrade is running now (pid {journal.pid}, since {journal.started}); "
                "`dockyard status` again shows how it ends")
    return interrupted(journal, *running_images(target))


# -- compose with the journal's files --------------------------------------------------------


def _argv(target: Target, file: Path) -> list[str]:
    """`docker compose` on the project with `file` (relative paths as the rendered file's)."""
    argv = target.engine.compose_argv(target.project, [file], target.profiles)
    return [*argv, "--project-directory", str(target.compose_file.parent)]


def _compose(target: Target, file: Path, *args: str) -> None:
    try:
        run([*_argv(target, file), *args], env=dict(target.fleet.compose_env), timeout=900)
    except EngineError:
        if not target.engine.answers():
            raise target.engine.unavailable() from None
        raise


def _config(target: Target, file: Path, *args: str) -> str:
    """What `docker compose config ARGS` says of `file` (no engine asked)."""
    return run([*_argv(target, file), "config", *args], env=dict(target.fleet.compose_env)).stdout


def _hashes(target: Target, file: Path) -> dict[str, str]:
    pairs = (line.split() for line in _config(target, file, "--hash", "*").splitlines()
             if line.strip())
    return {p[0]: p[1] for p in pairs if len(p) == 2}


def _health_tests(target: Target, file: Path) -> dict[str, list[str]]:
    """service -> the health test `file` gives it, as compose renders it (["NONE"]: none)."""
    services = json.loads(_config(target, file, "--format", "json") or "{}").get(
        "services") or {}
    out = {}
    for name, service in services.items():
        check = service.get("healthcheck") or {}
        out[name] = ["NONE"] if check.get("disable") else [str(w) for w in check.get("test")
                                                            or []]
    return out


def pin(target: Target, ref: str, image: str) -> None:
    """Make `ref` name `image` (an ID) again; a `:current` ref that named another image
    leaves that one as `:prev`, as `dockyard rollback` swaps them."""
    if not ref or not image:
        return
    engine = target.engine
    there = engine.image_id(ref)
    if there == image:
        return
    repo, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
    engine.client.images.get(image).tag(repo, tag)
    if there and tag == CURRENT_TAG:
        engine.client.images.get(there).tag(repo_of(ref), PREV_TAG)


# -- the runners -----------------------------------------------------------------------------


@dataclass
class Context:
    target: Target
    journal: Journal
    folder: Path
    emit: Sink

    def container(self, service: str) -> Any:
        return containers(self.target.engine, self.target.project).get(service)

    def reach(self, point: str) -> None:
        reach(point)

    def gate(self, change: ServiceChange,
             get: Callable[[], Any] | None = None, *, back: bool = False) -> ProbeResult:
        """Wait for the service's container (`get`: another one, e.g. a start-first new
        container beside the old) to be healthy by its deadline; StepFailed (with its last
        health output and last 20 log lines) when it is not. `back`: the container runs the
        old configuration, so where that had another health check than the new one, the
        engine's verdict of the old check (and its deadline) decides."""
        spec = self.target.plan.services[change.service].spec
        deadline = change.deadline
        if back and change.old_check:
            spec = spec.model_copy(update={"health": None, "image_health": True})
            interval = (change.old_check.get("Interval") or 30 * NANOSECONDS) / NANOSECONDS
            deadline = (gate_deadline(spec, change.old_check) or deadline) + interval
        get = get or (lambda: self.container(change.service))
        result = wait_healthy(change.service, spec, get, deadline=deadline,
                              probe=self.target.engine.probe, one_shot=change.one_shot)
        if result.healthy:
            return result
        c = get()
        logs = c.logs(tail=20).decode(errors="replace").rstrip() if c is not None else ""
        result = dataclasses.replace(result, output=last_lines(result.output))
        summary = what_failed(result, change.one_shot)
        raise StepFailed(Failure(service=change.service, output=result.output, logs=logs,
                                 summary=summary), summary)


def stop_first(ctx: Context, change: ServiceChange, file: Path) -> None:
    """Today's replacement: compose removes the old container and creates the new one (not
    started), the engine starts it, the gate waits for it."""
    force = ["--force-recreate"] if change.force else []
    _compose(ctx.target, file, "up", "--no-start", "--no-build", "--no-deps", *force,
             change.service)
    c = ctx.container(change.service)
    if c is None:
        raise EngineError(f"compose made no container for service {change.service}")
    if c.status != "running":
        c.start()
    ctx.reach("upgrade.gate")
    ctx.gate(change, back=file.name != ctx.journal.new_config)


def start_first(ctx: Context, change: ServiceChange, file: Path) -> None:
    """The new container beside the old one; the ingress moves the traffic once it is
    healthy and drains the old one (engine/ingress.py). A new one that fails is removed
    and the old one kept every request: StepFailed, and the rollback finds the old one
    already there (`unless`: nothing to replace)."""
    from dockyard.engine.ingress import replace_start_first

    forward = file.name == ctx.journal.new_config
    want = _hashes(ctx.target, file).get(change.service, "")
    image = change.new_image if forward else change.old_image
    # A dependent recreated for `restart: true` is replaced even though nothing changed.
    unless = ("", "") if forward and change.force else (want, image)
    done = replace_start_first(ctx.target, change.service, compose_file=file,
                               deadline=change.deadline, emit=ctx.emit, unless=unless,
                               started=lambda: ctx.reach("upgrade.gate"))
    if not done.healthy:
        raise StepFailed(Failure(service=change.service, output=done.result.output,
                                 logs=done.logs), what_failed(done.result, change.one_shot))


REPLACE: dict[str, Callable[[Context, ServiceChange, Path], None]] = {
    STOP_FIRST: stop_first, START_FIRST: start_first}


def _recreate(ctx: Context, step: JournalStep) -> None:
    change = ctx.journal.change(step.service)
    pin(ctx.target, change.ref, change.new_image)
    REPLACE[change.strategy](ctx, change, ctx.folder / ctx.journal.new_config)


def _revert(ctx: Context, step: JournalStep) -> None:
    change = ctx.journal.change(step.service)
    if not change.old_image:  # the upgrade added it: back means none
        c = ctx.container(change.service)
        if c is not None:
            c.remove(force=True)
        return
    pin(ctx.target, change.old_ref, change.old_image)
    REPLACE[change.strategy](ctx, change, ctx.folder / change.old_config)


def _restore(ctx: Context, step: JournalStep) -> None:
    """The service's pre-upgrade backup into fresh volumes before its old version starts:
    a service of the set is made from its old image and config, one outside it (a database
    under a changed service) from the config it ran. The set's services that stand on it
    are stopped first (their revert follows), so no new code touches the restored data."""
    service, target = step.service, ctx.target
    services = target.fleet.spec.services
    for c in ctx.journal.services:
        if c.service != service and service in dependencies(services, [c.service]):
            above = ctx.container(c.service)
            if above is not None and above.status in ("running", "restarting"):
                above.stop(timeout=10)
    change = next((c for c in ctx.journal.services if c.service == service), None)
    if change is not None:
        pin(target, change.old_ref, change.old_image)
    file = ctx.folder / (change.old_config if change is not None else ctx.journal.new_config)

    def create(name: str) -> None:
        _compose(target, file, "up", "--no-start", "--no-build", "--no-deps",
                 "--force-recreate", name)

    try:
        root = backup_root(target.fleet, target.state)
        restore_service(target, root, read_run(root, ctx.journal.backup_run), service,
                        emit=ctx.emit, create=create)
    except BackupError as exc:
        summary = f"restoring {service}'s pre-upgrade backup failed: {exc.message}"
        raise StepFailed(Failure(service=service, output=exc.message, summary=summary),
                         summary) from None
    if change is not None:
        ctx.gate(change, back=True)


# kind -> runner: it gets the step (its service may be "" for a step of the whole set) and
# raises StepFailed (or any DockyardError / docker error, taken as one) when it fails; Abort
# when it failed before anything changed and the upgrade stops without a rollback.
RUNNERS: dict[str, Callable[[Context, JournalStep], None]] = {
    Kind.RECREATE: _recreate, Kind.REVERT: _revert, Kind.RESTORE: _restore}


def pre_upgrade_backup(target: Target, journal: Journal, *, emit: Sink,
                       batch: str = "") -> None:
    """Back up every stateful service of the set, and every one a service of the set
    depends on (directly or not), that has a container here: the new code may migrate
    their data. The run's id and the services a rollback restores go into the journal.
    A failed backup is a BackupError before anything changed (no journal is written)."""
    spec = target.fleet.spec
    here = containers(target.engine, target.project)
    order = [sp.name for sp in target.services()]
    names = [n for n in pre_upgrade(spec, [c.service for c in journal.services])
             if n in here and n in order]
    if not names:
        return
    emit(Progress(f"upgrade: backing up {', '.join(names)} first"))
    try:
        taken = backup(target, names, emit=emit, reason="pre-upgrade", batch=batch)
    except BackupError as exc:
        raise BackupError(f"the pre-upgrade backup failed, so nothing was changed: "
                          f"{exc.message}", where=exc.where, fix=exc.fix) from None
    journal.backup_run = taken.id
    journal.restore = sorted(restore_on_rollback(spec, names),
                             key=lambda n: (target.plan.services[n].level, n))


# -- planning --------------------------------------------------------------------------------


def _old_configs(target: Target, changes: list[ServiceChange], folder: Path,
                 emit: Sink) -> None:
    """Give each change with a container the kept compose file its container was made from
    (checked by config hash), copied into the journal's folder as old-N.yaml."""
    wanted = {c.service: c for c in changes if c.old_image}
    candidates = [*records(target.state, target.machine), target.compose_file]
    used: dict[Path, str] = {}
    for path in candidates:
        if not wanted:
            break
        try:
            hashes = _hashes(target, path)
        except EngineError:  # a kept file compose no longer reads: not this one
            continue
        for name in [n for n, c in wanted.items() if hashes.get(n) == c.old_hash]:
            used.setdefault(path, f"old-{len(used)}.yaml")
            wanted.pop(name).old_config = used[path]
    if wanted:
        newest = candidates[0]
        emit(Progress(
            f"the configuration {', '.join(sorted(wanted))} run(s) now is not among the kept "
            f"compose files (a variable's value changed since?): going back would use "
            f"{newest.name}, with today's values"))
        used.setdefault(newest, f"old-{len(used)}.yaml")
        for c in wanted.values():
            c.old_config = used[newest]
    for path, name in used.items():
        shutil.copyfile(path, folder / name)


def plan_upgrade(target: Target, services: list[str], *, gate: bool,
                 emit: Sink, render: bool = True) -> Journal | None:
    """Write the rendered files (unless `render` is off: written already), observe, decide
    the set; None when nothing changed. Refuses (before anything changes) a service with no
    health check unless `gate` is off."""
    if render:
        write_render(target.fleet, target.plan, target.state)
    observed = observe(target.engine, target)
    once = one_shots(target.plan.services)
    steps = decide(target.services(), observed, once)
    chosen = changed_set(target.services(), steps, services)
    if not chosen:
        return None
    found = containers(target.engine, target.project)
    tests = _health_tests(target, target.compose_file)
    changes = []
    for sp, why in chosen:
        image = target.engine.image_id(sp.image)
        check = (target.engine.client.images.get(image).attrs.get("Config") or {}).get(
            "Healthcheck") if image else None
        deadline = gate_deadline(sp.spec, check)
        if deadline is None and gate and sp.name not in once:
            raise ManifestError(
                f"service {sp.name} has no health check: `dockyard upgrade` cannot tell "
                "whether its new version works, so it changes nothing",
                where=target.fleet.where("services", sp.name),
                fix=f"give {sp.name} a `health:` (cmd or http), or run `dockyard upgrade "
                    "--no-health-gate` to count running as healthy")
        c = found.get(sp.name)
        attrs = (c.attrs or {}) if c is not None else {}
        changes.append(ServiceChange(
            service=sp.name, level=sp.level, reason=why, strategy=strategy_of(sp.spec),
            old_image=str(attrs.get("Image") or ""),
            old_ref=str((attrs.get("Config") or {}).get("Image") or ""),
            old_hash=str((c.labels or {}).get(HASH_LABEL, "")) if c is not None else "",
            new_image=image, ref=sp.image, new_hash=observed.config_hashes.get(sp.name, ""),
            deadline=deadline if deadline is not None else
            ONE_SHOT_DEADLINE if sp.name in once else NO_GATE_DEADLINE,
            one_shot=sp.name in once,
            old_check=old_check((attrs.get("Config") or {}).get("Healthcheck"),
                                tests.get(sp.name, []))))
        changes[-1].force = (changes[-1].old_image == image
                             and changes[-1].old_hash == changes[-1].new_hash)
    folder = upgrade_dir(target.state, target.machine)
    for old in folder.glob("old-*.yaml") if folder.is_dir() else []:
        old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    _old_configs(target, changes, folder, emit)
    text = target.compose_file.read_text()
    write_durable(folder / "new.yaml", text)
    record(target.state, target.machine, text)  # trusted later only where hashes match
    return Journal(id=uuid.uuid4().hex[:12], pid=os.getpid(), machine=target.machine,
                   project=target.project, started=now(), services=changes,
                   steps=forward_steps(changes))


# -- the loop --------------------------------------------------------------------------------


def refuse_pending(target: Target) -> None:
    """UpgradePending when an upgrade of the machine has not ended: a new upgrade, `up` or
    `rollback --to` would mix the fleet (checked before any build)."""
    line = pending_line(target)
    if line is not None:
        raise UpgradePending(f"this would mix the fleet: {line}", fix="finish that one first")


def upgrade(target: Target, *, emit: Sink, services: list[str] | None = None,
            gate: bool = True, resume: bool = False) -> UpgradeReport:
    """Upgrade the machine's changed services (or finish the interrupted upgrade: `resume`).
    Raises UpgradeRolledBack when a service failed and the set went back, RollbackFailed
    when going back failed too, UpgradePending when another upgrade has not ended."""
    return upgrade_fleet([target], emit=emit, services=services, gate=gate, resume=resume)


def upgrade_fleet(targets: list[Target], *, emit: Sink, services: list[str] | None = None,
                  gate: bool = True, resume: bool = False) -> UpgradeReport:
    """Upgrade the changed services of every target as ONE upgrade (or finish the one that
    was interrupted: `resume`): a journal per machine with one id, the set recreated one
    service at a time in start order across the machines, and the first that fails turns
    every machine's part back. A machine with nothing changed takes no part."""
    if resume:
        ctxs = _group_of(targets, emit)
        if not ctxs:
            raise DockyardError(f"no interrupted upgrade on {', '.join(t.machine for t in targets)}"
                                " to resume", fix="`dockyard upgrade` starts one")
        for c in ctxs.values():
            _refuse_running(c.journal)
        _refuse_cut(ctxs)
        for c in ctxs.values():
            c.journal.pid = os.getpid()
            if c.journal.phase == Phase.ROLLBACK_FAILED:
                c.journal.phase = Phase.ROLLBACK
        return _run_group(ctxs, emit=emit, rolled_back_raises=True)
    for t in targets:
        refuse_pending(t)
    write_render(targets[0].fleet, targets[0].plan, targets[0].state)
    planned: dict[str, Journal] = {}
    for t in targets:  # one after the other: each keeps its compose files in its folder
        named = [n for n in services or [] if n in {sp.name for sp in t.services()}]
        if services and not named:
            continue  # the services named run elsewhere
        journal = plan_upgrade(t, named, gate=gate, emit=emit, render=False)
        if journal is not None:
            planned[t.machine] = journal
    if not planned:
        emit(UpgradePlanned((), now()))
        return UpgradeReport(changed=False)
    by_machine = {t.machine: t for t in targets}
    group = sorted(planned) if len(planned) > 1 else []
    first = planned[sorted(planned)[0]]
    for journal in planned.values():
        journal.id, journal.group = first.id, group
    changes = sorted(((c.level, c.service, m) for m, j in planned.items() for c in j.services))
    reasons = {c.service: c.reason for j in planned.values() for c in j.services}
    emit(UpgradePlanned(tuple((name, f"{reasons[name]}, on {m}" if group else reasons[name])
                              for _, name, m in changes), now()))
    for m, journal in planned.items():  # a failed backup: nothing changed, no journal
        # One batch across machines: `dockyard restore upgrade-<id>` is the fleet before it.
        pre_upgrade_backup(by_machine[m], journal, emit=emit,
                           batch=f"upgrade-{first.id}" if group else "")
    for m, journal in planned.items():
        write_durable(journal_path(by_machine[m]), journal.to_json())
    reach("upgrade.begin")
    ctxs = {m: Context(by_machine[m], j, upgrade_dir(by_machine[m].state, m), emit)
            for m, j in planned.items()}
    return _run_group(ctxs, emit=emit, rolled_back_raises=True)


def _refuse_cut(ctxs: dict[str, Context]) -> None:
    """An upgrade across machines killed while its journals were being written (before
    anything changed: some machines have none) cannot go forward, as the others' part of
    the set is not known: it is closed as aborted, and `dockyard upgrade` starts it again."""
    one = next(iter(ctxs.values())).journal
    missing = [m for m in one.group if m not in ctxs]
    if not missing or any(c.journal.phase != Phase.FORWARD or any(
            s.status != Status.PENDING for s in c.journal.steps) for c in ctxs.values()):
        return
    for c in ctxs.values():
        c.journal.phase = Phase.ABORTED
        _close(c.target, c.journal)
    raise DockyardError(f"the upgrade was cut before it began (no journal on "
                        f"{', '.join(missing)}): nothing was changed, and it is closed",
                        fix="`dockyard upgrade` starts it again")


def _group_of(targets: list[Target], emit: Sink) -> dict[str, Context]:
    """The journals of the upgrade that did not end on `targets`, with those of the other
    machines of the same upgrade (one that spans machines ends on all of them): machine ->
    its context. Journals of different upgrades are refused (one at a time)."""
    by_machine = {t.machine: t for t in targets}
    first = targets[0]
    found: dict[str, Journal] = {}
    todo = list(by_machine)
    while todo:
        machine = todo.pop(0)
        if machine in found:
            continue
        target = by_machine.setdefault(machine, dataclasses.replace(first, machine=machine))
        journal = read_journal(target)
        if journal is None:
            continue
        found[machine] = journal
        todo += [m for m in journal.group if m not in found and m in
                 target.fleet.spec.machines]
    ids = {j.id for j in found.values()}
    if len(ids) > 1:
        raise UpgradePending(
            "upgrades that did not end on " + ", ".join(sorted(found)) + " are different "
            "ones", fix="finish them one machine at a time with -m")
    return {m: Context(by_machine[m], j, upgrade_dir(by_machine[m].state, m), emit)
            for m, j in found.items()}


def rollback_pending_fleet(targets: list[Target], *, emit: Sink) -> UpgradeReport | None:
    """`dockyard rollback` with an upgrade that did not end on any of `targets`: every
    service of it back on its old image and config, on every machine it spans (all old);
    None when there is no such upgrade."""
    ctxs = _group_of(targets, emit)
    if not ctxs:
        return None
    for c in ctxs.values():
        _refuse_running(c.journal)
    for c in ctxs.values():
        c.journal.pid = os.getpid()
        c.journal = turn_back(c.journal, now())
        _save(c)
    return _run_group(ctxs, emit=emit, rolled_back_raises=False)


def _refuse_running(journal: Journal) -> None:
    if journal.pid != os.getpid() and pid_alive(journal.pid) and journal.phase in (
            Phase.FORWARD, Phase.ROLLBACK):
        raise UpgradePending(f"an upgrade is running now (pid {journal.pid}, since "
                             f"{journal.started})", fix="wait for it to end")


def _step(ctx: Context, step: JournalStep) -> None:
    """One runner; what the engine or compose refused (an image gone, a port taken) fails the
    step like an unhealthy service does."""
    from docker.errors import DockerException

    try:
        RUNNERS[step.kind](ctx, step)
    except Abort:
        raise
    except (DockyardError, DockerException) as exc:
        said = str(exc).strip() or type(exc).__name__
        what = f"service {step.service}" if step.service else f"step {step.kind}"
        raise StepFailed(Failure(service=step.service, output=last_lines(said),
                                 summary=f"{what} could not be made: {last_lines(said, 1)}"),
                         f"{what} could not be made: {said}") from None


def _save(ctx: Context) -> None:
    write_durable(journal_path(ctx.target), ctx.journal.to_json())


def _run_group(ctxs: dict[str, Context], *, emit: Sink,
               rolled_back_raises: bool) -> UpgradeReport:
    """Run the journals of one upgrade (one machine, or several going forward and back
    together) to their end: the next step is the one whose service starts first
    (ops/upgrade.py next_step); the first that fails turns every journal back, and a
    journal still going forward beside one going back (killed between the two writes) turns
    back too."""
    plan = next(iter(ctxs.values())).target.plan
    levels = {name: sp.level for name, sp in plan.services.items()}

    def journals() -> dict[str, Journal]:
        return {m: c.journal for m, c in ctxs.items()}

    try:
        while True:
            for machine in to_turn_back(journals()):
                ctxs[machine].journal = turn_back(ctxs[machine].journal, now())
                _save(ctxs[machine])
            found = next_step(journals(), levels)
            if found is None:
                break
            machine, index = found
            ctx = ctxs[machine]
            step = ctx.journal.steps[index]
            step.status, step.at, step.detail = Status.STARTED, now(), ""
            _save(ctx)
            emit(UpgradeStep(step.kind, step.service, step.status, step.at))
            reach(f"upgrade.{step.kind}")
            try:
                _step(ctx, step)
            except Abort as abort:
                step.status, step.at, step.detail = Status.FAILED, now(), abort.error.message
                for c in ctxs.values():
                    c.journal.phase = Phase.ABORTED
                    _close(c.target, c.journal)
                emit(UpgradeStep(step.kind, step.service, step.status, step.at,
                                 abort.error.message[:200]))
                raise abort.error from None
            except StepFailed as failed:
                step.status, step.at, step.detail = Status.FAILED, now(), failed.failure.output
                emit(UpgradeStep(step.kind, step.service, step.status, step.at,
                                 failed.message.splitlines()[0][:200]))
                if ctx.journal.phase != Phase.FORWARD:
                    ctx.journal.phase = Phase.ROLLBACK_FAILED
                    _save(ctx)
                    raise _rollback_failed(ctx, failed) from None
                # The machine that failed first, then the others (to_turn_back finishes
                # the turn when a kill comes in between).
                for c in [ctx, *(c for c in ctxs.values() if c is not ctx)]:
                    c.journal = turn_back(c.journal, now(), failed.failure)
                    _save(c)
                emit(UpgradeStep("rollback", "", Status.STARTED, now(),
                                 f"{step.service} failed"))
                reach("upgrade.rollback")
                continue
            step.status, step.at = Status.DONE, now()
            _save(ctx)
            emit(UpgradeStep(step.kind, step.service, step.status, step.at))
    except KeyboardInterrupt:
        said = "; ".join(f"{m}: " * (len(ctxs) > 1) + interrupted(c.journal,
                                                                *running_images(c.target))
                         for m, c in sorted(ctxs.items()))
        raise Interrupted("upgrade interrupted: " + said,
                          fix="`dockyard upgrade --resume` or `dockyard rollback`") from None
    reach("upgrade.end")
    forward = all(c.journal.phase == Phase.FORWARD for c in ctxs.values())
    for c in ctxs.values():
        c.journal.phase = Phase.DONE if forward else Phase.ROLLED_BACK
        record_images(c.target)  # what runs healthy now: `check`'s one-way data guard (DY607)
        _close(c.target, c.journal)
    outcome = "done" if forward else "rolled back"
    emit(UpgradeStep("upgrade", "", outcome, now()))
    origin = next((c for c in ctxs.values() if c.journal.failure is not None and any(
        s.service == c.journal.failure.service and s.status == Status.FAILED
        for s in c.journal.steps)), None)
    if not forward and rolled_back_raises and origin is not None:
        raise _rolled_back(origin, ctxs)
    first = ctxs[sorted(ctxs)[0]]
    return UpgradeReport(changed=True, journal=first.journal, outcome=outcome,
                         journals={m: c.journal for m, c in ctxs.items()})


def _where(ctx: Context) -> str:
    rows = mixed(ctx.journal, *running_images(ctx.target))
    return ", ".join(f"{name} on {short(image)} ({side})" for name, side, image in rows)


def _rolled_back(ctx: Context, ctxs: dict[str, Context]) -> UpgradeRolledBack:
    failure = ctx.journal.failure
    assert failure is not None
    step = next(s for s in ctx.journal.steps if s.service == failure.service
                and s.status == Status.FAILED)
    where = _where(ctx) if len(ctxs) == 1 else "; ".join(
        f"on {m}: {_where(c)}" for m, c in sorted(ctxs.items()))
    on = f" on {ctx.target.machine}" if len(ctxs) > 1 else ""
    return UpgradeRolledBack(
        f"upgrade rolled back: {_failed_line(ctx, failure)}{on} (at {step.at})\n"
        f"--- last 20 log lines of {failure.service} ---\n{failure.logs or '(no output)'}\n"
        f"every service of the upgrade is back on its previous image and configuration, "
        f"volumes kept: {where}",
        fix=f"fix {failure.service} (see its health output and logs above), then "
            "`dockyard upgrade` again")


def _failed_line(ctx: Context, failure: Failure) -> str:
    return failure.summary or f"service {failure.service} failed: {failure.output}"


def _rollback_failed(ctx: Context, failed: StepFailed) -> RollbackFailed:
    svc = failed.failure.service
    change = next((c for c in ctx.journal.services if c.service == svc), None)
    if change is None:  # a restore of a service outside the set (ops/upgrade.py RESTORE)
        return RollbackFailed(
            f"the rollback failed: {failed.message}\nnow: {_where(ctx)} (the journal "
            f"{journal_path(ctx.target)} is kept)",
            fix=f"fix what stops the restore of {svc}, then `dockyard rollback` again; by "
                f"hand: `dockyard restore --replace {ctx.journal.backup_run} {svc}`, then "
                "`dockyard rollback`")
    old = ctx.folder / change.old_config
    argv = " ".join(ctx.target.engine.compose_argv(ctx.target.project, [old]))
    return RollbackFailed(
        f"the rollback failed: {failed.message}\n"
        f"--- last 20 log lines of {svc} ---\n{failed.failure.logs or '(no output)'}\n"
        f"now: {_where(ctx)} (the journal {journal_path(ctx.target)} is kept)",
        fix=f"fix what stops {svc} on its previous image {short(change.old_image)}, then "
            f"`dockyard rollback` again; by hand: `{argv} --project-directory "
            f"{ctx.target.compose_file.parent} up -d --no-deps {svc}` (with the fleet's "
            "variables set)")

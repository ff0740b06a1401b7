"""`dockyard build` on several machines (ops/builds.py decides who builds what).

The machines whose images are built here (`build: local`, the default) get ONE build on this
host's engine, of their services' images (every image when they are the whole fleet), and
then, without `registry:`, the images they lack, streamed over each one's connection
(engine/ship.py). Each `build: remote` machine builds its own services' images on its own
engine, for that engine's architecture, in a work folder of its own, side by side with the
others and with the build here (engine/build.py: what they share in the state folder is
written by one at a time). With `registry:` nothing is shipped: `dockyard push` publishes
and `up` pulls, as before.

A machine that cannot be reached (engine/fleet.py reach, within 5 s) or fails is left out
and reported; the others go on."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from dockyard.engine.build import BuildReport, build, remote_work
from dockyard.engine.connection import Engine
from dockyard.engine.fleet import each, reach
from dockyard.engine.ship import ShipReport, same_engine, ship
from dockyard.engine.target import Target
from dockyard.errors import DockyardError, MachineUnreachable
from dockyard.events import Event, ImageEvent, Sink
from dockyard.manifest.load import Fleet
from dockyard.ops.builds import BuildSplit, MachineBuilt, split_builds
from dockyard.plan.family import builds_for, with_service_layers
from dockyard.plan.model import Plan


@dataclass
class FleetBuildReport:
    """What `dockyard build` did on each machine, and what it could not do."""

    split: BuildSplit
    here: BuildReport | None = None  # the one build on this host's engine (None: none ran)
    remote: dict[str, BuildReport] = field(default_factory=dict)  # machine -> its own build
    shipped: ShipReport | None = None
    machines: dict[str, MachineBuilt] = field(default_factory=dict)  # in the targets' order
    failed: dict[str, DockyardError] = field(default_factory=dict)  # machine -> why
    seconds: float = 0.0


def _names(plan: Plan, machine: str) -> list[str]:
    """The services dockyard builds that run on `machine` (every profile: a build makes
    them all, as on one machine)."""
    return [sp.name for sp in plan.on(machine) if sp.built]


def _keys(plan: Plan, services: Sequence[str]) -> set[str]:
    """The BuildReport keys (`service-web`, `family-plain`) of the images `services` need."""
    return {f"{s.kind}-{s.name}" for s in builds_for(with_service_layers(plan), services)}


def _tagged(emit: Sink, machine: str) -> Sink:
    """`emit`, with each image event naming the machine whose engine builds it."""
    def say(event: Event) -> None:
        emit(replace(event, machine=machine) if isinstance(event, ImageEvent) else event)
    return say


def build_fleet(fleet: Fleet, plan: Plan, targets: Sequence[Target], *, emit: Sink,
                force: bool = False, arch: str = "", now: datetime | None = None
                ) -> FleetBuildReport:
    """Build (and ship) the images of every target's services: see the module. `arch`: the
    architecture of the build here ("": this host engine's); a remote machine builds its
    engine's own. Never raises for one machine: the report's `failed` names them."""
    t0 = time.monotonic()
    state = targets[0].state
    source = Engine.local()
    by_name = {t.machine: t for t in targets}
    on_host = {t.machine for t in targets if same_engine(t.engine, source)}
    split = split_builds({m: s.build for m, s in fleet.spec.machines.items()},
                         [t.machine for t in targets], on_host, bool(fleet.spec.registry))
    report = FleetBuildReport(split)
    wanted = {m: _names(plan, m) for m in by_name}
    asked = [by_name[m] for m in (*split.ship, *split.remote) if wanted[m]]
    report.failed.update(reach(asked))

    def remote_build(t: Target) -> BuildReport:
        return build(t.engine, fleet, plan, state, emit=_tagged(emit, t.machine), force=force,
                     now=now, services=wanted[t.machine],
                     work=remote_work(state, t.machine))

    remotes = [by_name[m] for m in split.remote if wanted[m] and m not in report.failed]
    answers: dict[str, BuildReport | DockyardError] = {}
    side = threading.Thread(target=lambda: answers.update(each(remotes, remote_build)),
                            daemon=True, name="dockyard-remote-builds")
    side.start()
    here = [m for m in split.here if m not in report.failed]
    if here:  # in this thread: Ctrl-C stops it as a build on one machine
        try:
            report.here = build(source, fleet, plan, state, emit=emit, force=force, arch=arch,
                                now=now, services=None if split.whole else
                                [n for m in here for n in wanted[m]])
        except DockyardError as exc:
            report.failed.update(dict.fromkeys(here, exc))
    sending = [m for m in split.ship if m in here and m not in report.failed and wanted[m]]
    if sending:
        report.shipped = _ship(source, plan, [by_name[m] for m in sending], report, emit=emit)
    side.join()
    for machine, got in answers.items():
        if isinstance(got, DockyardError):
            report.failed[machine] = got
        else:
            report.remote[machine] = got
    for t in targets:
        report.machines[t.machine] = _said(t, plan, report, wanted[t.machine])
    report.seconds = time.monotonic() - t0
    return report


def _ship(source: Engine, plan: Plan, targets: list[Target], report: FleetBuildReport, *,
          emit: Sink) -> ShipReport | None:
    """The images the targets' services run, to each target that lacks them (one archive
    for all). When it fails, the machines that stopped answering are named (else all)."""
    first = targets[0]
    refs = {t.machine: (t.engine, [sp.image for sp in plan.on(t.machine)])
            for t in targets}
    try:
        return ship(source, refs, first.state, emit=emit)
    except DockyardError as exc:
        gone = {t.machine: t.engine.alive() for t in targets}
        dead = {m: why for m, why in gone.items() if why}
        for t in targets:
            if dead and t.machine not in dead:
                continue
            report.failed[t.machine] = MachineUnreachable(
                f"machine {t.machine} stopped answering: {dead[t.machine]}",
                machine=t.machine, where=t.engine.endpoint.where,
                fix=f"bring {t.machine} back, then `dockyard build` again ships what it "
                    "lacks") if t.machine in dead else exc
        return None


def _said(t: Target, plan: Plan, report: FleetBuildReport, services: list[str]
          ) -> MachineBuilt:
    machine = t.machine
    failed = report.failed.get(machine)
    if failed is not None:
        return MachineBuilt(machine, machine in report.split.remote, failed=failed.message)
    remote = machine in report.split.remote
    got = report.remote.get(machine) if remote else report.here
    if got is None or not services:
        return MachineBuilt(machine, remote, idle=True)
    mine = _keys(plan, services) if not remote else set(got.built) | set(got.skipped)
    built = tuple(k.replace("-", " ", 1) for k in got.built if k in mine)
    unchanged = len([k for k in got.skipped if k in mine])
    shipped = machine in report.split.ship
    sent = report.shipped.sent.get(machine, 0) if report.shipped else 0
    images = len(report.shipped.shipments[machine].send) \
        if report.shipped and machine in report.shipped.shipments else 0
    return MachineBuilt(machine, remote, built, unchanged, shipped, sent, images,
                        t.fleet.spec.registry or "")

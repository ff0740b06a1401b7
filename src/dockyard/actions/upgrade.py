"""`dockyard upgrade`: build, then recreate what changed one service at a time, each gated
on its health; the whole set back on its previous images when one fails (engine/upgrade.py);
`--resume` finishes an interrupted one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dockyard.actions.target import Choice, choose_targets, require_services
from dockyard.actions.up import prepare
from dockyard.events import Sink

if TYPE_CHECKING:
    from dockyard.engine.target import Target
    from dockyard.engine.upgrade import UpgradeReport
    from dockyard.manifest.load import Fleet
    from dockyard.plan.model import Plan


@dataclass(frozen=True)
class UpgradeResult:
    targets: list[Target]
    upgrade: UpgradeReport
    seconds: float

    @property
    def target(self) -> Target:
        return self.targets[0]


def upgrade(fleet: Fleet, plan: Plan, choice: Choice, *, emit: Sink,
            services: list[str] | None = None, build: bool = True, gate: bool = True,
            resume: bool = False) -> UpgradeResult:
    """Check the manifest; unless resuming, refuse while another upgrade has not ended,
    build (unless `build` is off: then pull or refuse stale images as `up --no-build` does),
    and upgrade the chosen machine's changed services (or only `services` and their
    `restart: true` dependents)."""
    import time

    from dockyard.actions.build import build as build_all
    from dockyard.engine.deploy import ready_images
    from dockyard.engine.upgrade import refuse_pending
    from dockyard.engine.upgrade import upgrade as engine_upgrade

    t0 = time.monotonic()
    require_services(plan.services, services or [])
    if len(choose_targets(fleet, plan, choice)) > 1:
        return _upgrade_machines(fleet, plan, choice, emit=emit, services=services,
                                 build=build, gate=gate, resume=resume, t0=t0)
    target = prepare(fleet, plan, choice)
    if not resume:
        refuse_pending(target)
        if build:
            build_all(fleet, plan, emit=emit, machine=target.machine)
        ready_images(target, emit=emit, build_missing=False, accept_stale=False)
    report = engine_upgrade(target, emit=emit, services=services, gate=gate, resume=resume)
    return UpgradeResult([target], report, time.monotonic() - t0)


def _upgrade_machines(fleet: Fleet, plan: Plan, choice: Choice, *, emit: Sink,
                      services: list[str] | None, build: bool, gate: bool, resume: bool,
                      t0: float) -> UpgradeResult:
    """The upgrade of several machines as one: every one must answer (an upgrade that
    cannot reach one of its machines could not take it back), their images built and
    shipped, then engine/upgrade.py's upgrade_fleet."""
    import time

    from dockyard.actions.build import build_fleet, raise_failed
    from dockyard.actions.up import prepare_all
    from dockyard.engine.deploy import ready_images
    from dockyard.engine.fleet import machines_failed, reach
    from dockyard.engine.upgrade import refuse_pending, upgrade_fleet

    targets = prepare_all(fleet, plan, choice)
    live = [t for t in targets if t.services()]
    down = reach(live)
    if down:
        raise machines_failed(dict(down), "upgrade (nothing was changed)")
    if not resume:
        for t in live:
            refuse_pending(t)
        if build:  # built where each machine's images are built, shipped where not
            raise_failed(build_fleet(fleet, plan, live, emit=emit))
        for t in live:  # pulled from `registry:`; a stale one is refused (as --no-build)
            ready_images(t, emit=emit, build_missing=False, accept_stale=False)
    report = upgrade_fleet(live, emit=emit, services=services, gate=gate, resume=resume)
    return UpgradeResult(live, report, time.monotonic() - t0)


def pending(target: Target) -> str | None:
    """What `status` says about an upgrade of the machine that did not end, else None."""
    from dockyard.engine.upgrade import pending_line

    return pending_line(target)

"""`dockyard build`, `fetch` and `bootstrap-base`: the checks and steps around the engine's."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dockyard.actions.check import preflight
from dockyard.actions.target import Choice, choose_engine, state_of
from dockyard.events import Sink

if TYPE_CHECKING:
    from dockyard.engine.build import BuildReport
    from dockyard.engine.fleetbuild import FleetBuildReport
    from dockyard.engine.target import Target
    from dockyard.findings import Finding
    from dockyard.manifest.load import Fleet
    from dockyard.plan.model import Plan


def build(fleet: Fleet, plan: Plan, *, emit: Sink, machine: str | None = None,
          force: bool = False, arch: str = "", now: datetime | None = None) -> BuildReport:
    """Check the manifest, then lock, fetch and build every image whose inputs changed, for
    `arch` ("": the engine's own), on the engine of `machine` (see choose_engine)."""
    from dockyard.engine.build import build as build_images

    preflight(fleet, plan)
    return build_images(choose_engine(fleet, machine), fleet, plan, state_of(fleet), emit=emit,
                        force=force, now=now or datetime.now(UTC), arch=arch)


def build_targets(fleet: Fleet, plan: Plan, choice: Choice) -> list[Target]:
    """The machines `dockyard build` acts on: those named with -m, else every one. Unlike
    up's (choose_targets), a machine of several needs no `engine:` here: without one it is
    on this host's engine, where the build happens anyway, and nothing is shipped to it."""
    from dockyard.actions.target import choose_machine
    from dockyard.engine.target import Target

    names = list(dict.fromkeys(choice.machines)) or sorted(fleet.spec.machines)
    return [Target(fleet, plan, state_of(fleet), choose_machine(fleet, m),
                   choice.project or fleet.spec.fleet, choice.profiles) for m in names]


def on_host_alone(fleet: Fleet, targets: list[Target]) -> bool:
    """A fleet of one machine, on this host's engine: `dockyard build` is one build, as it
    always was (its summary line alone)."""
    from dockyard.engine.connection import Engine
    from dockyard.engine.ship import same_engine

    return len(fleet.spec.machines) == 1 and same_engine(targets[0].engine, Engine.local())


def build_fleet(fleet: Fleet, plan: Plan, targets: list[Target], *, emit: Sink,
                force: bool = False, arch: str = "") -> FleetBuildReport:
    """Build the images of the targets' services: once on this host's engine for the
    machines whose images are built here (`build: local`; for `arch`, "": the engine's),
    then shipped, without `registry:`, to those on another engine that lack them; on its
    own engine (its own architecture) for each `build: remote` machine, side by side.
    `targets`: choose_targets' or build_targets'. The manifest is not checked here (build
    and upgrade do that first). A machine that cannot be reached or whose build failed is
    in the report's `failed`; raise_failed turns that into the command's error."""
    from dockyard.engine.fleetbuild import build_fleet as build_all

    return build_all(fleet, plan, targets, emit=emit, force=force, arch=arch)


def raise_failed(report: FleetBuildReport) -> None:
    """The error for the machines the build could not serve: one build's own error when it
    alone failed them all (its exit code and findings), else `machines_failed` (exit 3
    when one was unreachable)."""
    from dockyard.engine.fleet import machines_failed
    from dockyard.errors import EngineUnavailable

    if not report.failed:
        return
    errors = {id(e): e for e in report.failed.values()}
    only = next(iter(errors.values()))
    if len(errors) == 1 and len(report.failed) == len(report.machines) \
            and not isinstance(only, EngineUnavailable):
        raise only
    raise machines_failed(report.failed, "build")


@dataclass(frozen=True)
class FetchResult:
    downloaded: int
    present: int
    findings: list[Finding] = field(default_factory=list)  # a family not locked, a wheel missing


def fetch(fleet: Fleet, plan: Plan, *, emit: Sink,
          platforms: list[str] | None = None) -> FetchResult:
    """Lock what changed, then download every locked wheel into the wheelhouse."""
    from dockyard.engine.lock import lock_all
    from dockyard.engine.wheels import fetch as fetch_wheels

    locked = lock_all(fleet, plan, emit=emit, platforms=platforms)
    report = fetch_wheels(fleet, plan, state_of(fleet), platforms=platforms,
                          skip=locked.missing)
    return FetchResult(report.downloaded, report.present, [*locked.findings, *report.findings])


def bootstrap_base(packages: list[str], arch: str = "") -> tuple[str, str]:
    """Make the Debian bookworm base image for `arch` ("": the engine's own), with
    `packages`, on the engine this host's Docker settings name (there is no manifest);
    return its tag and its architecture."""
    from dockyard.engine.bootstrap import bootstrap_base as make
    from dockyard.engine.bootstrap import require_emulation
    from dockyard.engine.build import engine_arch
    from dockyard.engine.connection import Engine

    engine = Engine.local()
    native = engine_arch(engine)
    arch = arch or native
    require_emulation(arch, native)
    return make(engine, packages, arch), arch

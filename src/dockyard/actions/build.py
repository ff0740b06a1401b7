"""`dockyard build`, `fetch` and `bootstrap-base`: the checks and steps around the engine's."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dockyard.actions.check import preflight
from dockyard.actions.target import choose_engine, state_of
from dockyard.events import Sink

if TYPE_CHECKING:
    from dockyard.engine.build import BuildReport
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

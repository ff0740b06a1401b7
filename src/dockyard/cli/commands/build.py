"""Commands that make images: lock, fetch, build, push, bootstrap-base, adopt."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from dockyard.cli import views
from dockyard.cli.options import load, platform_arch

if TYPE_CHECKING:
    from dockyard.engine.build import BuildReport


def build_cmd(ctx: typer.Context,
              force: bool = typer.Option(False, "--force", help="Rebuild even when unchanged."),
              platform: str = typer.Option(
                  "", "--platform", metavar="amd64|arm64",
                  help="Build for this architecture (default: the engine's). Another one "
                       "runs under QEMU: scripts/install-engine.sh --qemu sets it up; a "
                       "`build: remote` machine builds its own engine's.")
              ) -> None:
    """Lock, fetch, then build the image families and services in dependency order, for every
    machine (or those named with -m): once here for the machines built here, then shipped to
    those on another engine that lack them (no `registry:`); on its own engine for each
    `build: remote` machine."""
    from dockyard.actions.build import (
        build,
        build_fleet,
        build_targets,
        on_host_alone,
        raise_failed,
    )
    from dockyard.actions.check import preflight

    arch = platform_arch(platform)
    fleet, plan = load(ctx.obj)
    targets = build_targets(fleet, plan, ctx.obj.choice())
    if on_host_alone(fleet, targets):
        with views.build_progress() as emit:
            report = build(fleet, plan, emit=emit, machine=targets[0].machine, force=force,
                           arch=arch)
        _summary(report)
        return
    preflight(fleet, plan)
    with views.build_progress() as emit:
        done = build_fleet(fleet, plan, targets, emit=emit, force=force, arch=arch)
    for said in done.machines.values():
        views.line(said.line())
    if done.here is not None:
        _summary(done.here)
    raise_failed(done)


def _summary(report: BuildReport) -> None:
    built = ", ".join(report.built) or "nothing"
    tagged = f" (tagged {report.tag} and current)" if report.built else ""
    views.line(f"built: {built}{tagged}; unchanged: {len(report.skipped)}")


def lock(ctx: typer.Context,
         force: bool = typer.Option(False, "--force", help="Resolve again even when unchanged."),
         platform: list[str] = typer.Option([], "--platform", help="Only this platform "
                                            "(amd64, arm64; repeatable)."),
         ) -> None:
    """Resolve each family's requirements to hash-pinned locks/<family>.<platform>.txt (uv)."""
    from dockyard.engine.lock import lock_all

    fleet, plan = load(ctx.obj)
    report = lock_all(fleet, plan, emit=views.say, force=force, platforms=platform or None)
    for rel in report.made:
        views.line(f"locked  {rel}")
    for rel in report.reused:
        views.line(f"kept    {rel} (inputs unchanged)")
    views.print_findings(report.findings)
    if not report.made and not report.reused and not report.findings:
        views.line("no family has requirements: nothing to lock")
    if report.findings:
        raise typer.Exit(1)


def fetch(ctx: typer.Context,
          platform: list[str] = typer.Option([], "--platform", help="Only this platform "
                                             "(amd64, arm64; repeatable).")) -> None:
    """Download the locked wheels per platform into the wheelhouse; exit 1 if any is missing."""
    from dockyard.actions.build import fetch as fetch_wheels

    fleet, plan = load(ctx.obj)
    report = fetch_wheels(fleet, plan, emit=views.say, platforms=platform or None)
    views.print_findings(report.findings)
    views.line(f"wheels: {report.downloaded} downloaded, {report.present} already there, "
               f"{len(report.findings)} missing")
    if report.findings:
        raise typer.Exit(1)


def push(ctx: typer.Context) -> None:
    """Push every built image (its dated tag, :current, and :prev) to the fleet's `registry:`."""
    from dockyard.actions.target import choose_engine
    from dockyard.engine.registry import push as push_images

    fleet, plan = load(ctx.obj)
    report = push_images(choose_engine(fleet, ctx.obj.machine), fleet, plan, emit=views.say)
    views.line(f"pushed {len(report.pushed)} tag(s) to {fleet.spec.registry}")


def bootstrap_base(packages: list[str] = typer.Argument(None, help="Extra Debian packages."),
                   platform: str = typer.Option(
                       "", "--platform", metavar="amd64|arm64",
                       help="Architecture of the image (default: the engine's).")
                   ) -> None:
    """Make a Debian bookworm base image (python3, tini) with mmdebstrap: no registry needed."""
    from dockyard.actions.build import bootstrap_base as make

    tag, arch = make(packages or [], platform_arch(platform))
    views.line(f"base image ready: {tag} ({arch})")


def adopt(ctx: typer.Context,
          dockerfile: Path = typer.Argument(..., help="The service's own Dockerfile."),
          family: str = typer.Option(..., "--family", help="The family to move it onto."),
          file: Path | None = typer.Option(None, "--file", "-f", help="Manifest (as the global "
                                           "-f)."),
          output: Path | None = typer.Option(None, "--output", "-o", help="Write the new "
                                             "Dockerfile here (default: print it).")) -> None:
    """Rewrite a service Dockerfile onto a family, listing what it could not convert."""
    import dataclasses

    from dockyard.actions.adopt import adopt as adopt_dockerfile
    from dockyard.render.adopt import adopt_report

    fleet, _ = load(dataclasses.replace(ctx.obj, file=file or ctx.obj.file))
    result = adopt_dockerfile(fleet, dockerfile, family)
    for text in adopt_report(result):
        views.err.print(text, highlight=False, markup=False, soft_wrap=True)
    if output is None:
        views.out.print(result.text, end="", highlight=False, markup=False, soft_wrap=True)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(result.text, encoding="utf-8")
    views.err.print(f"wrote {output}: {len(result.changed)} converted, "
                    f"{len(result.unconverted)} to review by hand", highlight=False, markup=False)

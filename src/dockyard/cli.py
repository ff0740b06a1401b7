"""The `dockyard` command: thin commands over load -> check -> plan -> render -> engine."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from dockyard.errors import DockyardError, ExitCode, FindingsError, ManifestError

if TYPE_CHECKING:
    from dockyard.engine.build import ImageEvent
    from dockyard.engine.connection import Engine
    from dockyard.engine.deploy import Target
    from dockyard.manifest.load import Fleet
    from dockyard.plan.model import Plan

app = typer.Typer(
    name="dockyard", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="One manifest for a fleet of AI services: check, plan, render, build and run it.",
)
machine_app = typer.Typer(help="The machines a fleet runs on.", no_args_is_help=True)
app.add_typer(machine_app, name="machine")
out = Console()
err = Console(stderr=True)
EXAMPLE = Path(__file__).parent / "examples" / "quickstart" / "fleet.yaml"


class Format(StrEnum):
    table = "table"
    json = "json"


@dataclass
class Options:
    file: Path | None
    project: str | None
    machine: str | None
    profiles: list[str]


@app.callback()
def _options(
    ctx: typer.Context,
    file: Path | None = typer.Option(None, "--file", "-f", help="Manifest (default: fleet.yaml "
                                     "here or above; else the bundled example fleet)."),
    project: str | None = typer.Option(None, "--project", "-p", envvar="DOCKYARD_PROJECT",
                                       help="Compose project name (default: the fleet's name)."),
    machine: str | None = typer.Option(None, "--machine", "-m", help="Machine to act on "
                                       "(default: the fleet's only machine)."),
    profile: list[str] = typer.Option([], "--profile", help="Also run services of this "
                                      "profile (repeatable)."),
) -> None:
    ctx.obj = Options(file, project, machine, profile)


def _manifest(opts: Options) -> Path:
    if opts.file is not None:
        return opts.file
    from dockyard.manifest.load import find_manifest

    found = find_manifest(Path.cwd())
    if found is None:
        err.print(f"[dim]no fleet.yaml here or above; using the bundled example fleet "
                  f"({EXAMPLE.parent.name})[/dim]")
        return EXAMPLE
    return found


def _load(opts: Options, *, lenient: bool = False) -> tuple[Fleet, Plan]:
    """`lenient`: unset required variables are no error (a command that needs no values)."""
    from dockyard.manifest.load import load
    from dockyard.plan import plan

    fleet = load(_manifest(opts), lenient=lenient)
    return fleet, plan(fleet)


def _state(fleet: Fleet) -> Path:
    """Where dockyard keeps rendered files, build contexts and wheelhouses for this fleet."""
    if os.environ.get("DOCKYARD_STATE"):
        return Path(os.environ["DOCKYARD_STATE"])
    if fleet.path.resolve() != EXAMPLE.resolve() and os.access(fleet.root, os.W_OK):
        return fleet.root / ".dockyard"
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "dockyard" / fleet.spec.fleet


def _machine(opts: Options, fleet: Fleet) -> str:
    machines = sorted(fleet.spec.machines)
    machine = opts.machine or (machines[0] if len(machines) == 1 else "")
    if machine not in fleet.spec.machines:
        raise ManifestError(
            f"choose the machine to act on with --machine ({', '.join(machines)})"
            if not machine else f"unknown machine {machine!r} (known: {', '.join(machines)})",
            where=fleet.where("machines"))
    return machine


def _target(opts: Options, fleet: Fleet, plan: Plan) -> Target:
    from dockyard.engine.deploy import Target

    return Target(fleet, plan, _state(fleet), _machine(opts, fleet),
                  opts.project or fleet.spec.fleet, tuple(opts.profiles))


def _engine(opts: Options, fleet: Fleet) -> Engine:
    """The engine of the machine acted on (--machine, or the only one); without --machine,
    the one engine all the fleet's machines share."""
    from dockyard.engine.connection import Engine

    engines = {m.engine for m in fleet.spec.machines.values()}
    if opts.machine or len(engines) != 1:
        return Engine.for_machine(fleet, _machine(opts, fleet))
    return Engine.for_machine(fleet, sorted(fleet.spec.machines)[0])


def _say(message: str) -> None:
    err.print(f"[cyan]dockyard[/cyan] {message}", highlight=False)


def _gib(n: int) -> str:
    from dockyard.units import format_size

    return format_size(n) if n else "-"


class CheckFormat(StrEnum):
    text = "text"
    table = "table"  # the same as text
    json = "json"
    sarif = "sarif"


@app.command()
def check(ctx: typer.Context,
          fmt: CheckFormat = typer.Option(CheckFormat.text, "--format",
                                          help="text, json or sarif (SARIF 2.1.0)"),
          images: bool = typer.Option(False, "--images",
                                      help="Also look inside the built images present on the "
                                           "engine (health probes' programs, env files and "
                                           "keys).")) -> None:
    """Find defects in the manifest before anything runs. Exit 1 on errors, 2 on bad input."""
    from dockyard import __version__
    from dockyard.checks import check_report
    from dockyard.checks.report import artifact_uri, render_json, render_sarif, render_text
    from dockyard.checks.run import infeasible
    from dockyard.errors import PlacementError
    from dockyard.manifest.load import load
    from dockyard.plan import plan as make_plan

    fleet = load(_manifest(ctx.obj))
    try:
        the_plan = make_plan(fleet)
        engine = _engine(ctx.obj, fleet) if images else None
        report = check_report(
            fleet, the_plan,
            _image_programs(engine, fleet, the_plan) if engine is not None else None,
            _image_secrets(engine, the_plan) if engine is not None else None)
    except PlacementError as exc:  # the other rules need a plan: this one finding says why
        report = infeasible(fleet, exc)
    if fmt is CheckFormat.json:
        text = render_json(report)
    elif fmt is CheckFormat.sarif:
        text = render_sarif(report, version=__version__,
                            uri=artifact_uri(fleet.path, Path.cwd()))
    else:
        text = render_text(report, fleet.path.name)
    sys.stdout.write(text)
    sys.stdout.flush()
    if report.errors:
        raise typer.Exit(1)


@app.command("plan")
def plan_cmd(ctx: typer.Context,
             fmt: Format = typer.Option(Format.table, "--format", help="table or json")) -> None:
    """Show where each service runs, its image, ports, GPU memory and start level, each GPU's
    and machine's use as bars, and how the placement was solved."""
    from dockyard.plan.place import usage

    fleet, plan = _load(ctx.obj)
    rows: list[dict[str, Any]] = []
    for level in plan.levels:
        for name in level:
            sp = plan.services[name]
            ports = ", ".join(f"{p.bind}:{p.host_port}->{p.port}" if p.publish else f"{p.port}"
                              for _, p in sorted(sp.spec.ports.items()))
            gpus = {m: list(sp.gpus_on(m)) for m in sp.machines}
            gpu = ("; ".join(f"{_gib(sp.gpu_memory)} on {m} GPU {','.join(map(str, g))}"
                             for m, g in gpus.items() if g) or "-")
            rows.append({"service": name, "machine": sp.machine, "machines": list(sp.machines),
                         "gpus": gpus, "image": sp.image, "ports": ports,
                         "gpu_memory": sp.gpu_memory, "gpu": gpu, "level": sp.level,
                         "placed_by_solver": name in plan.placement.placed})
    uses = usage(fleet, plan)
    report = plan.placement
    if fmt is Format.json:
        builds = [{"kind": s.kind, "name": s.name, "image": s.image, "base": s.base,
                   "level": s.level} for s in plan.builds]
        placement = {"status": report.status, "placed": list(report.placed),
                     "peak_gpu_permille": report.peak_permille,
                     "cross_machine_links": report.cross_links,
                     "bound_peak_gpu_permille": report.bound_permille,
                     "bound_cross_machine_links": report.bound_links, "gap": report.gap,
                     "seconds": round(report.seconds, 3), "summary": report.line()}
        out.print_json(json.dumps({"fleet": plan.fleet, "services": rows, "builds": builds,
                                   "placement": placement,
                                   "utilisation": [u.as_dict() for u in uses]}))
        return
    table = Table(title=f"fleet {plan.fleet}: start order and placement")
    for col in ("service", "machine", "image", "ports", "GPU memory", "level"):
        table.add_column(col)
    for r in rows:
        where = ", ".join(r["machines"]) + (" *" if r["placed_by_solver"] else "")
        table.add_row(r["service"], where, r["image"], r["ports"] or "-", r["gpu"],
                      str(r["level"]))
    out.print(table)
    _use_bars(uses)
    color = {"OPTIMAL": "green", "FIXED": "green"}.get(report.status, "yellow")
    out.print(f"[{color}]{report.line()}[/{color}]"
              + ("  (* placed by the solver)" if report.placed else ""), highlight=False)


def _use_bars(uses: list[Any], width: int = 20) -> None:
    """One bar per GPU and per machine resource: used against capacity."""
    from dockyard.units import format_size

    table = Table(title="use per GPU and machine", box=None, pad_edge=False)
    for col in ("machine", "resource", "use", "", "services"):
        table.add_column(col, no_wrap=col == "use")
    for u in uses:
        if not u.used and not u.capacity:
            continue
        amount = (f"{u.used:g} / {u.capacity:g}" if u.resource == "cpus" else
                  f"{format_size(int(u.used)) if u.used else '0'} / "
                  f"{format_size(int(u.capacity)) if u.capacity else '?'}")
        share = u.share
        if share is None:
            bar = "[dim]?[/dim]"
            pct = "capacity unknown"
        else:
            filled = min(width, round(share * width))
            color = "red" if share > 1 else "yellow" if share > 0.9 else "green"
            bar = f"[{color}]{'█' * filled}[/{color}][dim]{'░' * (width - filled)}[/dim]"
            pct = f"{share:.0%} ({amount})"
            amount = ""
        table.add_row(u.machine, u.label, bar, pct + amount,
                      ", ".join(u.services[:6]) + (" …" if len(u.services) > 6 else ""))
    out.print(table)


class RenderTarget(StrEnum):
    compose = "compose"
    kubernetes = "kubernetes"
    swarm = "swarm"


@app.command()
def render(ctx: typer.Context,
           output: Path = typer.Option(Path("out"), "--output", "-o", help="Folder to write."),
           render_target: RenderTarget = typer.Option(
               RenderTarget.compose, "--target", help="compose: Dockerfiles, compose files; "
               "kubernetes: manifests in DIR/kubernetes/<fleet>/ (not deployed by dockyard); "
               "swarm: a stack in DIR/swarm/<fleet>/ for docker stack deploy.")
           ) -> None:
    """Write Dockerfiles, compose.<machine>.yaml and .env.example (or Kubernetes manifests)."""
    from dockyard.render.files import render_all

    fleet, plan = _load(ctx.obj)
    text = fleet.path.read_text(encoding="utf-8")
    output.mkdir(parents=True, exist_ok=True)
    if render_target is RenderTarget.kubernetes:
        from dockyard.render.kube import render_kubernetes

        kube = render_kubernetes(fleet, plan, ctx.obj.profiles)
        files = {f"{kube.folder}/{rel}": content for rel, content in kube.files.items()}
        for line in kube.lost:  # what the manifest asks and Kubernetes cannot do
            err.print(f"[yellow]kubernetes:[/yellow] {line}", highlight=False, soft_wrap=True)
    elif render_target is RenderTarget.swarm:
        from dockyard.render.swarm import FOLDER, render_swarm

        folder = output / FOLDER / plan.fleet  # relative binds are rebased onto the fleet's
        stack = render_swarm(fleet, plan, ctx.obj.profiles,
                             os.path.relpath(fleet.root.resolve(), folder.resolve()))
        files = {f"{stack.folder}/{rel}": content for rel, content in stack.files.items()}
        for line in stack.lost:  # what the manifest asks and Swarm cannot do
            err.print(f"[yellow]swarm:[/yellow] {line}", highlight=False, soft_wrap=True)
        out.print(f"before deploying (also in {stack.folder}/nodes.sh):", highlight=False)
        for line in stack.checklist:
            out.print(f"  {line}", highlight=False, soft_wrap=True, markup=False)
    else:
        files = render_all(fleet, plan, text,
                           os.path.relpath(fleet.root.resolve(), output.resolve()))
    for rel, content in files.items():
        target = output / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    out.print(f"wrote {len(files)} files to {output}/", highlight=False)


def _platform(given: str) -> str:
    """--platform's value as amd64 or arm64 ("" when not given)."""
    arch = {"linux/amd64": "amd64", "linux/arm64": "arm64", "x86_64": "amd64",
            "aarch64": "arm64"}.get(given, given)
    if arch not in ("", "amd64", "arm64"):
        raise ManifestError(f"--platform {given}: dockyard builds amd64 and arm64 images",
                            fix="pass --platform amd64 or --platform arm64")
    return arch


@app.command("build")
def build_cmd(ctx: typer.Context,
              force: bool = typer.Option(False, "--force", help="Rebuild even when unchanged."),
              platform: str = typer.Option(
                  "", "--platform", metavar="amd64|arm64",
                  help="Build for this architecture (default: the engine's). Another one "
                       "runs under QEMU: scripts/install-engine.sh --qemu sets it up.")
              ) -> None:
    """Lock, fetch, then build the image families and services in dependency order."""
    from datetime import UTC, datetime

    from dockyard.engine.build import build

    arch = _platform(platform)
    fleet, plan = _load(ctx.obj)
    _preflight(fleet, plan)
    with _image_progress() as progress:
        report = build(_engine(ctx.obj, fleet), fleet, plan, _state(fleet), say=_say,
                       force=force, now=datetime.now(UTC), progress=progress, arch=arch)
    built = ", ".join(report.built) or "nothing"
    tagged = f" (tagged {report.tag} and current)" if report.built else ""
    out.print(f"built: {built}{tagged}; unchanged: {len(report.skipped)}", highlight=False)


@contextmanager
def _image_progress() -> Iterator[Callable[[ImageEvent], None] | None]:
    """A live line per image (spinner while it builds, its time when done) on a terminal;
    elsewhere (logs, tests) None: the build says one plain line per event."""
    if not err.is_terminal:
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    marks = {"built": "[green]built[/green]", "unchanged": "[dim]unchanged[/dim]",
             "failed": "[red]failed[/red]", "building": "[cyan]building[/cyan]"}
    with Progress(SpinnerColumn(finished_text="•"), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=err, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def show(event: ImageEvent) -> None:
            key = f"{event.kind} {event.name}"
            text = f"{key}: {marks.get(event.state, event.state)}"
            if event.state == "building":
                text += f" on {event.base}"
            elif event.state == "built":
                text += f" {event.took()}"
            if key not in tasks:
                tasks[key] = bar.add_task(text, total=1)
            bar.update(tasks[key], description=text,
                       completed=0 if event.state == "building" else 1)

        yield show


@app.command()
def lock(ctx: typer.Context,
         force: bool = typer.Option(False, "--force", help="Resolve again even when unchanged."),
         platform: list[str] = typer.Option([], "--platform", help="Only this platform "
                                            "(amd64, arm64; repeatable)."),
         ) -> None:
    """Resolve each family's requirements to hash-pinned locks/<family>.<platform>.txt (uv)."""
    from dockyard.engine.lock import lock_all

    fleet, plan = _load(ctx.obj)
    report = lock_all(fleet, plan, say=_say, force=force, platforms=platform or None)
    for rel in report.made:
        out.print(f"locked  {rel}", highlight=False)
    for rel in report.reused:
        out.print(f"kept    {rel} (inputs unchanged)", highlight=False)
    _print_findings(report.findings)
    if not report.made and not report.reused and not report.findings:
        out.print("no family has requirements: nothing to lock", highlight=False)
    if report.findings:
        raise typer.Exit(1)


def _print_findings(findings: list[Any]) -> None:
    for f in findings:
        out.print(f"{f.where}: [red]{f.severity}[/red] {f.code}: {f.message}\n    fix: {f.fix}",
                  highlight=False)


@app.command()
def fetch(ctx: typer.Context,
          platform: list[str] = typer.Option([], "--platform", help="Only this platform "
                                             "(amd64, arm64; repeatable).")) -> None:
    """Download the locked wheels per platform into the wheelhouse; exit 1 if any is missing."""
    from dockyard.engine.lock import lock_all
    from dockyard.engine.wheels import fetch as fetch_wheels

    fleet, plan = _load(ctx.obj)
    locked = lock_all(fleet, plan, say=_say, platforms=platform or None)
    report = fetch_wheels(fleet, plan, _state(fleet), platforms=platform or None,
                          skip=locked.missing)
    findings = [*locked.findings, *report.findings]
    _print_findings(findings)
    out.print(f"wheels: {report.downloaded} downloaded, {report.present} already there, "
              f"{len(findings)} missing", highlight=False)
    if findings:
        raise typer.Exit(1)


@app.command()
def rollback(ctx: typer.Context,
             services: list[str] = typer.Argument(None, help="Services (default: every "
                                                  "built one).")) -> None:
    """Put each service's `:prev` image back as `:current` and run `up` again (pulling `:prev`
    from the fleet's `registry:` where it is not here)."""
    from dockyard.engine.build import rollback as swap
    from dockyard.engine.deploy import up as deploy_up

    fleet, plan = _load(ctx.obj)
    unknown = [n for n in services or [] if n not in plan.services]
    if unknown:
        raise ManifestError(f"unknown service {unknown[0]!r}",
                            fix="one of: " + ", ".join(sorted(plan.services)))
    target = _target(ctx.obj, fleet, plan)
    engine = target.engine
    if fleet.spec.registry.strip():  # a machine that never built them: `:prev` is there
        from dockyard.engine.build import PREV_TAG, repo_of
        from dockyard.engine.registry import pull_missing

        names = services or sorted(n for n, sp in plan.services.items() if sp.built)
        refs = {f"{repo_of(plan.services[n].image)}:{PREV_TAG}" for n in names
                if plan.services[n].built}
        pull_missing(engine, fleet, sorted(r for r in refs if not engine.image_id(r)), say=_say)
    for name, old, new in swap(engine, plan, services or None):
        out.print(f"{name}: current is now {new[7:19]} (was {old[7:19] or 'none'})",
                  highlight=False)
    deploy_up(target, say=_say, build_missing=False)
    out.print(f"fleet {fleet.spec.fleet} is up on {target.machine} with the previous images",
              highlight=False)


@app.command()
def push(ctx: typer.Context) -> None:
    """Push every built image (its dated tag, :current, and :prev) to the fleet's `registry:`."""
    from dockyard.engine.registry import push as push_images

    fleet, plan = _load(ctx.obj)
    report = push_images(_engine(ctx.obj, fleet), fleet, plan, say=_say)
    out.print(f"pushed {len(report.pushed)} tag(s) to {fleet.spec.registry}", highlight=False)


@app.command()
def images(ctx: typer.Context,
           fmt: Format = typer.Option(Format.table, "--format", help="table or json")) -> None:
    """Each image's size, the bytes it shares with the fleet's other images, and budgets."""
    from dockyard.engine.images import images as fleet_images
    from dockyard.units import format_size

    fleet, plan = _load(ctx.obj)
    report = fleet_images(_engine(ctx.obj, fleet), fleet, plan)
    if fmt is Format.json:
        out.print_json(json.dumps({**report.sizes.as_dict(), "absent": report.absent,
                                   "findings": [f.as_dict() for f in report.findings]}))
        return
    table = Table(title=f"fleet {fleet.spec.fleet}: images")
    for col in ("image", "kind", "size", "shared", "unique"):
        table.add_column(col, justify="left" if col in ("image", "kind") else "right")
    for i in report.sizes.images:  # "~": layer sizes not aligned exactly (see plan/sizes.py)
        table.add_row(i.ref, i.kind, format_size(i.size) + ("" if i.exact else " ~"),
                      format_size(i.shared), format_size(i.unique))
    for ref in report.absent:
        table.add_row(ref, "absent", "-", "-", "-")
    out.print(table)
    out.print(f"on disk: {_gib(report.sizes.disk)} for the fleet's images (each layer once); "
              f"{_gib(report.sizes.total)} if nothing were shared", highlight=False)
    for f in report.findings:
        out.print(f"{f.where}: [yellow]{f.severity}[/yellow] {f.code}: {f.message}\n"
                  f"    fix: {f.fix}", highlight=False)


@app.command()
def adopt(ctx: typer.Context,
          dockerfile: Path = typer.Argument(..., help="The service's own Dockerfile."),
          family: str = typer.Option(..., "--family", help="The family to move it onto."),
          file: Path | None = typer.Option(None, "--file", "-f", help="Manifest (as the global "
                                           "-f)."),
          output: Path | None = typer.Option(None, "--output", "-o", help="Write the new "
                                             "Dockerfile here (default: print it).")) -> None:
    """Rewrite a service Dockerfile onto a family, listing what it could not convert."""
    import dataclasses
    import difflib

    from dockyard.plan.plan import MOVING_TAG, image_name
    from dockyard.render.adopt import adopt as adopt_dockerfile
    from dockyard.render.adopt import adopt_report, family_facts, wanted_files

    fleet, _ = _load(dataclasses.replace(ctx.obj, file=file or ctx.obj.file))
    if family not in fleet.spec.families:
        close = difflib.get_close_matches(family, list(fleet.spec.families), n=1)
        raise ManifestError(
            f"no family {family!r} in {fleet.path.name}"
            + (f" (did you mean {close[0]!r}?)" if close else ""),
            where=fleet.where("families"),
            fix="one of: " + (", ".join(sorted(fleet.spec.families)) or "(none: add one)"))
    try:
        text = dockerfile.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read {dockerfile}: {getattr(exc, 'strerror', None) or exc}",
                            fix="pass the path of a service's Dockerfile") from None
    files = {}
    for name in wanted_files(text):
        path = dockerfile.parent / name
        if path.is_file():
            files[name] = path.read_text(encoding="utf-8", errors="replace")
    facts = family_facts(fleet.spec, family, f"{image_name(fleet, family, 'family')}:{MOVING_TAG}")
    result = adopt_dockerfile(text, facts, source=str(dockerfile), files=files)
    for line in adopt_report(result):
        err.print(line, highlight=False, markup=False, soft_wrap=True)
    if output is None:
        out.print(result.text, end="", highlight=False, markup=False, soft_wrap=True)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(result.text, encoding="utf-8")
    err.print(f"wrote {output}: {len(result.changed)} converted, {len(result.unconverted)} "
              "to review by hand", highlight=False, markup=False)


def _image_programs(engine: Engine, fleet: Fleet, plan: Plan) -> dict[str, set[str]]:
    """service -> programs its health probes run that its image (when present) has."""
    from dockyard.checks.health import programs_to_look_for
    from dockyard.engine.programs import programs_on_images

    images = {name: sp.image for name, sp in plan.services.items()}
    return programs_on_images(engine, images, programs_to_look_for(fleet, plan))


def _image_secrets(engine: Engine, plan: Plan) -> dict[str, list[str]]:
    """service -> env files and keys in its built image (when present)."""
    from dockyard.engine.programs import secrets_in_images

    return secrets_in_images(engine, {n: sp.image for n, sp in plan.services.items() if sp.built})


def _preflight(fleet: Fleet, plan: Plan, *, images: Engine | None = None) -> None:
    """Errors in the manifest stop engine commands before any container is touched.
    `images`: also judge health probes by the programs found on that engine's images."""
    from dockyard.checks import Severity
    from dockyard.checks import check as run_checks

    programs = _image_programs(images, fleet, plan) if images is not None else None
    errors = [f for f in run_checks(fleet, plan, programs) if f.severity is Severity.ERROR]
    if errors:
        raise FindingsError(errors)


@app.command()
def up(ctx: typer.Context,
       build_missing: bool = typer.Option(True, "--build/--no-build",
                                          help="Build images that are missing."),
       dry_run: bool = typer.Option(False, "--dry-run", help="Print what each service needs "
                                    "(create, recreate, start, wait, keep, and why); change "
                                    "nothing.")) -> None:
    """Start the fleet level by level and wait until every service is healthy."""
    from dockyard.engine.deploy import up as deploy_up

    fleet, plan = _load(ctx.obj)
    target = _target(ctx.obj, fleet, plan)
    _preflight(fleet, plan, images=target.engine)
    if dry_run:
        _dry_run(target)
        return
    report = deploy_up(target, say=_say, build_missing=build_missing)
    if not report.changed:
        out.print(f"fleet {fleet.spec.fleet} on {target.machine} is up to date: nothing changed",
                  highlight=False)
    else:
        out.print(f"fleet {fleet.spec.fleet} is up and healthy on {target.machine} "
                  f"in {report.seconds:.1f} s", highlight=False)
    _status_table(target, Format.table)


def _dry_run(target: Target) -> None:
    """`up --dry-run`: one line per service (level, service, action, reason)."""
    from dockyard.engine.deploy import plan_up

    steps = plan_up(target, say=_say)
    width = max([len("service"), *(len(s.service) for s in steps)])
    out.print(f"{'level':<5} {'service':<{width}}  {'action':<8}  reason", highlight=False)
    for step in steps:
        out.print(step.line(width), highlight=False, markup=False)
    _say(f"dry run: nothing was changed (the rendered files are in {target.state / 'render'})")


@app.command()
def down(ctx: typer.Context,
         volumes: bool = typer.Option(False, "--volumes", help="Also delete named volumes "
                                      "(their data is lost).")) -> None:
    """Stop and remove the fleet's containers; volumes are kept unless --volumes."""
    from dockyard.engine.deploy import down as deploy_down

    fleet, plan = _load(ctx.obj, lenient=True)  # stopping needs no secrets: .env may be gone
    target = _target(ctx.obj, fleet, plan)
    deploy_down(target, volumes=volumes)
    kept = "volumes deleted" if volumes else "volumes kept"
    out.print(f"fleet {fleet.spec.fleet} is down on {target.machine} ({kept})", highlight=False)


def _status_table(target: Target, fmt: Format) -> None:
    from dockyard.engine.deploy import status as deploy_status

    rows = deploy_status(target)
    if fmt is Format.json:
        out.print_json(json.dumps([r.as_dict() for r in rows]))
        return
    table = Table(title=f"fleet {target.fleet.spec.fleet} on {target.machine} "
                        f"(project {target.project})")
    for col in ("service", "level", "state", "health", "ports", "image"):
        table.add_column(col)
    for r in rows:
        color = "green" if r.health == "healthy" else "red"
        table.add_row(r.service, str(r.level), r.state, f"[{color}]{r.health}[/{color}]",
                      r.ports or "-", r.image)
    out.print(table)


@app.command()
def ps(ctx: typer.Context,
       fmt: Format = typer.Option(Format.table, "--format", help="table or json")) -> None:
    """Each service's container state and health, probed now."""
    fleet, plan = _load(ctx.obj)
    _status_table(_target(ctx.obj, fleet, plan), fmt)


@app.command()
def status(ctx: typer.Context,
           fmt: Format = typer.Option(Format.table, "--format", help="table or json")) -> None:
    """Same as `ps`."""
    ps(ctx, fmt)


@app.command()
def logs(ctx: typer.Context, service: str | None = typer.Argument(None),
         follow: bool = typer.Option(False, "--follow", "-f"),
         tail: int | None = typer.Option(None, "--tail", help="Lines from the end.")) -> None:
    """Show (or follow) the logs of one service or all."""
    from dockyard.engine.deploy import logs as deploy_logs

    fleet, plan = _load(ctx.obj)
    if service and service not in fleet.spec.services:
        raise ManifestError(f"unknown service {service!r}",
                            fix="one of: " + ", ".join(sorted(fleet.spec.services)))
    deploy_logs(_target(ctx.obj, fleet, plan), service, follow=follow, tail=tail)


@app.command("import")
def import_(
    files: list[Path] = typer.Argument(None, help="Compose files; later ones override earlier "
                                       "ones (default: the compose.yaml here)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Manifest to write "
                                       "(default: fleet.yaml beside the first compose file; "
                                       "- for stdout)."),
    fleet_name: str | None = typer.Option(None, "--fleet", help="Fleet name (default: the "
                                          "compose project's name)."),
    machine: str = typer.Option("local", "--machine", help="Name of the fleet's one machine."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing manifest."),
) -> None:
    """Turn a compose project (and the Dockerfiles it builds) into a fleet manifest, and list
    what could not be mapped."""
    import re

    from dockyard.errors import DockyardError as Failed
    from dockyard.manifest.importer import find_compose, import_compose, read_project
    from dockyard.manifest.load import loads

    paths = list(files or [])
    if not paths:
        found = find_compose(Path.cwd())
        if found is None:
            raise ManifestError("no compose.yaml in this folder",
                                fix="name the compose files: dockyard import compose.yaml")
        paths = [found]
    project = read_project(paths)
    target = output if output is not None else project.directory / "fleet.yaml"
    to_stdout = str(target) == "-"
    if not to_stdout and target.exists() and not force:
        raise ManifestError(f"{target} already exists",
                            fix="pass --force to overwrite it, or -o another file")
    result = import_compose(project, out_dir=Path.cwd() if to_stdout else target.parent,
                            fleet=fleet_name, machine=machine)
    text = result.text()
    report = err if to_stdout else out
    if to_stdout:
        sys.stdout.write(text)
    else:
        target.write_text(text, encoding="utf-8")
    for item in result.unmapped:
        report.print(f"not mapped: {item}", highlight=False, markup=False, emoji=False)
    # Variables the environment lacks are not the import's fault: any value will do here.
    lenient = {name: project.environ.get(name, "1")
               for name in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text)}
    try:
        loads(text, name=target.name, path=None if to_stdout else target, environ=lenient)
    except ManifestError as exc:
        raise Failed(f"the imported manifest does not load: {exc}",
                     fix="if `docker compose config` accepts the compose files, this is a "
                         "dockyard bug: please report it with them") from None
    where = "stdout" if to_stdout else str(target)
    report.print(f"wrote {where}: {len(result.manifest['services'])} service(s), "
                 f"{len(result.unmapped)} thing(s) not mapped", highlight=False, markup=False,
                 emoji=False)


@app.command("bootstrap-base")
def bootstrap_base(packages: list[str] = typer.Argument(None, help="Extra Debian packages."),
                   platform: str = typer.Option(
                       "", "--platform", metavar="amd64|arm64",
                       help="Architecture of the image (default: the engine's).")
                   ) -> None:
    """Make a Debian bookworm base image (python3, tini) with mmdebstrap: no registry needed."""
    from dockyard.engine.bootstrap import bootstrap_base as make
    from dockyard.engine.bootstrap import require_emulation
    from dockyard.engine.build import engine_arch
    from dockyard.engine.connection import Engine

    engine = Engine.local()  # no manifest: the engine this host's Docker settings name
    native = engine_arch(engine)
    arch = _platform(platform) or native
    require_emulation(arch, native)
    tag = make(engine, packages or [], arch)
    out.print(f"base image ready: {tag} ({arch})", highlight=False)


class SchemaFormat(StrEnum):
    json = "json"
    markdown = "markdown"


@app.command()
def schema(fmt: SchemaFormat = typer.Option(SchemaFormat.json, "--format",
                                            help="json (JSON Schema) or markdown (reference)")
           ) -> None:
    """Print the manifest's JSON Schema (for editors) or its key reference (docs/manifest.md)."""
    from dockyard.manifest.schema import reference_markdown, schema_text

    sys.stdout.write(schema_text() if fmt is SchemaFormat.json else reference_markdown())


@machine_app.command("detect")
def machine_detect(name: str | None = typer.Option(None, "--name", help="Machine name.")
                   ) -> None:
    """Print this machine as a manifest entry: arch, CPUs, memory, GPUs, driver, CUDA."""
    import socket

    from dockyard.engine.machine import detect, machine_name, render_machine_yaml

    out.print(render_machine_yaml(name or machine_name(socket.gethostname()), detect()),
              end="", highlight=False, markup=False)


def main() -> None:
    """Entry point: one clear message per problem and the exit code errors.EXIT_CODES lists
    for it, no traceback."""
    from rich.markup import escape

    try:
        app()  # standalone: typer prints usage errors itself and exits 2
    except DockyardError as exc:
        # Escaped, no emoji: a message quotes the user's text (`[/x]` is not markup) and
        # locations (`fleet.yaml:100:3` is not the :100: emoji).
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, emoji=False)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        err.print("interrupted: what already started was left as it is; `dockyard ps` shows it")
        sys.exit(int(ExitCode.INTERRUPTED))
    except Exception as exc:
        if os.environ.get("DOCKYARD_DEBUG"):
            raise
        err.print(f"[red]internal error:[/red] {escape(f'{type(exc).__name__}: {exc}')} "
                  "(a dockyard bug: rerun with DOCKYARD_DEBUG=1 and report the traceback)",
                  highlight=False, emoji=False)
        sys.exit(int(ExitCode.INTERNAL))

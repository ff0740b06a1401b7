"""Commands that read the manifest (and the images present) and change nothing:
check, plan, render, images, schema."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from dockyard.cli import views
from dockyard.cli.options import CheckFormat, Format, RenderTarget, SchemaFormat, load, manifest


def check(ctx: typer.Context,
          fmt: CheckFormat = typer.Option(CheckFormat.text, "--format",
                                          help="text, json or sarif (SARIF 2.1.0)"),
          images: bool = typer.Option(False, "--images",
                                      help="Also look inside the built images present on the "
                                           "engine (health probes' programs, env files and "
                                           "keys).")) -> None:
    """Find defects in the manifest before anything runs. Exit 1 on errors, 2 on bad input."""
    from dockyard import __version__
    from dockyard.actions.check import check_fleet
    from dockyard.checks.report import artifact_uri, render_json, render_sarif, render_text
    from dockyard.manifest.load import load as load_fleet

    fleet = load_fleet(manifest(ctx.obj))
    found = check_fleet(fleet, images=images, choice=ctx.obj.choice())
    if fmt is CheckFormat.json:
        text = render_json(found)
    elif fmt is CheckFormat.sarif:
        text = render_sarif(found, version=__version__, uri=artifact_uri(fleet.path, Path.cwd()))
    else:
        text = render_text(found, fleet.path.name)
    sys.stdout.write(text)
    sys.stdout.flush()
    if found.errors:
        raise typer.Exit(1)


def plan_cmd(ctx: typer.Context,
             fmt: Format = typer.Option(Format.table, "--format", help="table or json")) -> None:
    """Show where each service runs, its image, ports, GPU memory and start level, each GPU's
    and machine's use as bars, and how the placement was solved."""
    from dockyard.plan.place import usage

    fleet, plan = load(ctx.obj)
    uses = usage(fleet, plan)
    if fmt is Format.json:
        views.plan_json(plan, uses)
    else:
        views.plan_table(plan, uses)


def render(ctx: typer.Context,
           output: Path = typer.Option(Path("out"), "--output", "-o", help="Folder to write."),
           render_target: RenderTarget = typer.Option(
               RenderTarget.compose, "--target", help="compose: Dockerfiles, compose files; "
               "kubernetes: manifests in DIR/kubernetes/<fleet>/ (not deployed by dockyard); "
               "swarm: a stack in DIR/swarm/<fleet>/ for docker stack deploy.")
           ) -> None:
    """Write Dockerfiles, compose.<machine>.yaml and .env.example (or Kubernetes manifests)."""
    from dockyard.render.files import render_all

    fleet, plan = load(ctx.obj)
    text = fleet.path.read_text(encoding="utf-8")
    output.mkdir(parents=True, exist_ok=True)
    if render_target is RenderTarget.kubernetes:
        from dockyard.render.kube import render_kubernetes

        kube = render_kubernetes(fleet, plan, ctx.obj.profiles)
        files = {f"{kube.folder}/{rel}": content for rel, content in kube.files.items()}
        for lost in kube.lost:  # what the manifest asks and Kubernetes cannot do
            views.err.print(f"[yellow]kubernetes:[/yellow] {lost}", highlight=False,
                            soft_wrap=True)
    elif render_target is RenderTarget.swarm:
        from dockyard.render.swarm import FOLDER, render_swarm

        folder = output / FOLDER / plan.fleet  # relative binds are rebased onto the fleet's
        stack = render_swarm(fleet, plan, ctx.obj.profiles,
                             os.path.relpath(fleet.root.resolve(), folder.resolve()))
        files = {f"{stack.folder}/{rel}": content for rel, content in stack.files.items()}
        for lost in stack.lost:  # what the manifest asks and Swarm cannot do
            views.err.print(f"[yellow]swarm:[/yellow] {lost}", highlight=False, soft_wrap=True)
        views.line(f"before deploying (also in {stack.folder}/nodes.sh):")
        for step in stack.checklist:
            views.out.print(f"  {step}", highlight=False, soft_wrap=True, markup=False)
    else:
        from dockyard.engine.addresses import machine_addresses
        from dockyard.plan.routes import routes

        addresses = machine_addresses(fleet, plan)
        files = render_all(fleet, plan, text,
                           os.path.relpath(fleet.root.resolve(), output.resolve()), addresses)
        for route in routes(fleet, plan, addresses).lines():  # names across machines
            views.line(f"route: {route}")
    for rel, content in files.items():
        target = output / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    views.line(f"wrote {len(files)} files to {output}/")


def images(ctx: typer.Context,
           fmt: Format = typer.Option(Format.table, "--format", help="table or json"),
           history: bool = typer.Option(False, "--history",
                                        help="The dated tags each built image keeps (newest "
                                             "first; `image_history:` of them, and older ones "
                                             "a container still uses), what `rollback --to` "
                                             "and `image_tag:` take.")) -> None:
    """Each image's size, the bytes it shares with the fleet's other images, and budgets."""
    import json

    from dockyard.actions.target import choose_engine
    from dockyard.engine.images import images as fleet_images

    fleet, plan = load(ctx.obj)
    if history:
        from dockyard.engine.history import history as tag_history

        kept = tag_history(choose_engine(fleet, ctx.obj.machine), plan)
        if fmt is Format.json:
            views.out.print_json(json.dumps({"keep": fleet.spec.image_history,
                                             "images": [h.as_dict() for h in kept]}))
        else:
            views.history_table(fleet, kept)
        return
    report = fleet_images(choose_engine(fleet, ctx.obj.machine), fleet, plan)
    if fmt is Format.json:
        views.out.print_json(json.dumps({**report.sizes.as_dict(), "absent": report.absent,
                                         "findings": [f.as_dict() for f in report.findings]}))
        return
    views.images_table(fleet, report)


def schema(fmt: SchemaFormat = typer.Option(SchemaFormat.json, "--format",
                                            help="json (JSON Schema) or markdown (reference)")
           ) -> None:
    """Print the manifest's JSON Schema (for editors) or its key reference (docs/manifest.md)."""
    from dockyard.manifest.schema import reference_markdown, schema_text

    sys.stdout.write(schema_text() if fmt is SchemaFormat.json else reference_markdown())

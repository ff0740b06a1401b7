"""How the CLI shows things: the two consoles, event lines, tables, bars, build progress."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dockyard.events import Event, HealthWaiting, ImageEvent, ShipProgress, Sink

if TYPE_CHECKING:
    from dockyard.engine.deploy import ServiceStatus, Target
    from dockyard.engine.history import ImageHistory
    from dockyard.engine.images import ImagesReport
    from dockyard.findings import Finding
    from dockyard.manifest.load import Fleet
    from dockyard.ops.reconcile import Step
    from dockyard.plan.model import Plan
    from dockyard.plan.place import Use

# Wide enough for any table dockyard prints: without a terminal, nothing is cut or wrapped.
NO_TTY_WIDTH = 10_000
WAIT_LINE_EVERY = 5.0  # seconds between "waiting for health" lines without a terminal


def console(*, stderr: bool = False) -> Console:
    """On a terminal, rich's own console (its width; long lines wrap). Elsewhere (a pipe, a
    log, CI) one message per line, never wrapped at 80 columns, and tables printed whole
    (COLUMNS is not a terminal's width there)."""
    found = Console(stderr=stderr)
    if found.is_terminal:
        return found
    return Console(stderr=stderr, soft_wrap=True, width=NO_TTY_WIDTH)


out = console()
err = console(stderr=True)


class _Waiting:
    """The health wait as it is shown: a live line on a terminal (rich's status), replaced
    by each HealthWaiting and gone at the next other event; elsewhere a line every
    WAIT_LINE_EVERY seconds of a level's wait."""

    def __init__(self) -> None:
        self.live: Any = None
        self.said_at = 0.0

    def show(self, event: HealthWaiting | ShipProgress) -> None:
        text = f"[cyan]dockyard[/cyan] {escape(event.line())}"
        if err.is_terminal:
            if self.live is None:
                self.live = err.status(text)
                self.live.start()
            else:
                self.live.update(text)
        elif event.seconds >= self.said_at + WAIT_LINE_EVERY:
            self.said_at = event.seconds
            err.print(text, highlight=False)

    def end(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        self.said_at = 0.0


_waiting = _Waiting()


def say(event: Event) -> None:
    """The sink of every command: one `dockyard <line>` on stderr per event (the health
    wait: see _Waiting)."""
    if isinstance(event, HealthWaiting | ShipProgress):
        _waiting.show(event)
        return
    _waiting.end()
    err.print(f"[cyan]dockyard[/cyan] {event.line()}", highlight=False)


def warn(text: str) -> None:
    """Something the user must not miss (an interrupted upgrade), on stderr."""
    _waiting.end()
    err.print(f"[yellow]dockyard[/yellow] {escape(text)}", highlight=False)


def json_event(event: Event) -> None:
    """`--format json`'s sink: one JSON object per event on stdout, `event` its type and
    `line` its text beside its fields (the health wait's ticks are left out)."""
    import dataclasses

    if isinstance(event, HealthWaiting):
        return
    body = {"event": type(event).__name__, **dataclasses.asdict(event), "line": event.line()}
    print(json.dumps(body), flush=True)


def line(text: str) -> None:
    """A result line on stdout, as written (no highlighting)."""
    out.print(text, highlight=False)


def size(n: int) -> str:
    from dockyard.units import format_size

    return format_size(n) if n else "-"


def print_findings(findings: list[Finding], color: str = "red") -> None:
    for f in findings:
        out.print(f"{f.where}: [{color}]{f.severity}[/{color}] {f.code}: {f.message}\n"
                  f"    fix: {f.fix}", highlight=False)


@contextmanager
def build_progress() -> Iterator[Sink]:
    """A sink for a build: on a terminal, a live line per image (spinner while it builds,
    its time when done); elsewhere (logs, tests) one plain line per event, as `say`."""
    if not err.is_terminal:
        yield say
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    marks = {"built": "[green]built[/green]", "unchanged": "[dim]unchanged[/dim]",
             "failed": "[red]failed[/red]", "building": "[cyan]building[/cyan]"}
    with Progress(SpinnerColumn(finished_text="•"), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=err, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def show(event: Event) -> None:
            if not isinstance(event, ImageEvent):
                say(event)
                return
            key = f"{event.kind} {event.name}" + (f" on {event.machine}" if event.machine else "")
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


def plan_rows(plan: Plan) -> list[dict[str, Any]]:
    """One row per service in start order: where it runs, its image, ports, GPU, level."""
    rows: list[dict[str, Any]] = []
    for level in plan.levels:
        for name in level:
            sp = plan.services[name]
            # As the manifest orders them, agents' too: what the rendered compose publishes.
            # A start-first service's host ports are published by the ingress, for it.
            from dockyard.plan.ingress import fronted_ports

            via = {id(p) for _, p in fronted_ports(sp.spec)}
            ports = ", ".join((f"{p.bind}:{p.host_port}->{p.port}" if p.publish else f"{p.port}")
                              + (" (ingress)" if id(p) in via else "") for p in sp.ports)
            gpus = {m: list(sp.gpus_on(m)) for m in sp.machines}
            gpu = ("; ".join(f"{size(sp.gpu_memory)} on {m} GPU {','.join(map(str, g))}"
                             for m, g in gpus.items() if g) or "-")
            rows.append({"service": name, "machine": sp.machine, "machines": list(sp.machines),
                         "gpus": gpus, "image": sp.image, "ports": ports,
                         "gpu_memory": sp.gpu_memory, "gpu": gpu, "level": sp.level,
                         "placed_by_solver": name in plan.placement.placed})
    return rows


def plan_json(plan: Plan, uses: list[Use]) -> None:
    report = plan.placement
    builds = [{"kind": s.kind, "name": s.name, "image": s.image, "base": s.base,
               "level": s.level} for s in plan.builds]
    placement = {"status": report.status, "placed": list(report.placed),
                 "peak_gpu_permille": report.peak_permille,
                 "cross_machine_links": report.cross_links,
                 "bound_peak_gpu_permille": report.bound_permille,
                 "bound_cross_machine_links": report.bound_links, "gap": report.gap,
                 "seconds": round(report.seconds, 3), "summary": report.line()}
    out.print_json(json.dumps({"fleet": plan.fleet, "services": plan_rows(plan),
                               "builds": builds, "placement": placement,
                               "utilisation": [u.as_dict() for u in uses]}))


def plan_table(plan: Plan, uses: list[Use]) -> None:
    """The start order and placement, the use bars, and how the placement was solved."""
    report = plan.placement
    table = Table(title=f"fleet {plan.fleet}: start order and placement")
    for col in ("service", "machine", "image", "ports", "GPU memory", "level"):
        table.add_column(col)
    for r in plan_rows(plan):
        where = ", ".join(r["machines"]) + (" *" if r["placed_by_solver"] else "")
        table.add_row(r["service"], where, r["image"], r["ports"] or "-", r["gpu"],
                      str(r["level"]))
    out.print(table)
    use_bars(uses)
    color = {"OPTIMAL": "green", "FIXED": "green"}.get(report.status, "yellow")
    out.print(f"[{color}]{report.line()}[/{color}]"
              + ("  (* placed by the solver)" if report.placed else ""), highlight=False)


def use_bars(uses: list[Use], width: int = 20) -> None:
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
        table.add_row(u.machine, u.label, bar, f"{pct} ({amount})" if amount else pct,
                      ", ".join(u.services[:6]) + (" …" if len(u.services) > 6 else ""))
    out.print(table)


def images_table(fleet: Fleet, report: ImagesReport) -> None:
    from dockyard.units import format_size

    table = Table(title=f"fleet {fleet.spec.fleet}: images")
    for col in ("image", "kind", "size", "shared", "unique"):
        table.add_column(col, justify="left" if col in ("image", "kind") else "right")
    for i in report.sizes.images:  # "~": layer sizes not aligned exactly (see plan/sizes.py)
        table.add_row(i.ref, i.kind, format_size(i.size) + ("" if i.exact else " ~"),
                      format_size(i.shared), format_size(i.unique))
    for ref in report.absent:
        table.add_row(ref, "absent", "-", "-", "-")
    out.print(table)
    out.print(f"on disk: {size(report.sizes.disk)} for the fleet's images (each layer once); "
              f"{size(report.sizes.total)} if nothing were shared", highlight=False)
    print_findings(report.findings, "yellow")


def history_table(fleet: Fleet, kept: list[ImageHistory]) -> None:
    """`images --history`: per built image, its kept dated tags, newest first, marked."""
    table = Table(title=f"fleet {fleet.spec.fleet}: dated tags kept (the newest "
                        f"{fleet.spec.image_history} per image, and older ones in use)")
    for col in ("image", "tag", "id", "marks"):
        table.add_column(col)
    for h in kept:
        if not h.tags:
            table.add_row(h.repo, "-", "-", "not built yet")
        for i, t in enumerate(h.tags):
            table.add_row(h.repo if i == 0 else "", t.tag, t.image[7:19], ", ".join(t.marks))
    out.print(table)


def status_table(target: Target, rows: list[ServiceStatus],
                 machines: list[str] | None = None) -> None:
    """Each service's container state and health on the target's machine (or on each of
    `machines`, then with a machine column)."""
    machines = machines or [target.machine]
    many = len(machines) > 1
    table = Table(title=f"fleet {target.fleet.spec.fleet} on {', '.join(machines)} "
                        f"(project {target.project})")
    for col in ("service", *(("machine",) if many else ()), "level", "state", "health",
                "ports", "image"):
        table.add_column(col)
    for r in rows:
        color = "green" if r.health == "healthy" else "red"
        table.add_row(r.service, *((r.machine,) if many else ()), str(r.level), r.state,
                      f"[{color}]{r.health}[/{color}]", r.ports or "-", r.image)
    out.print(table)


def steps_table(steps: list[Step]) -> None:
    """`up --dry-run`: one line per service (level, service, action, reason)."""
    width = max([len("service"), *(len(s.service) for s in steps)])
    out.print(f"{'level':<5} {'service':<{width}}  {'action':<8}  reason", highlight=False)
    for step in steps:
        out.print(step.line(width), highlight=False, markup=False)

"""up / down / status / logs for the services placed on one machine.

`up` is observe -> decide -> apply: engine/observe.py takes a snapshot, ops/reconcile.py
turns it and the plan into typed steps, engine/apply.py carries them out. `up --dry-run`
(plan_up) stops after the decision."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from dockyard.engine.apply import UpReport, apply
from dockyard.engine.build import build, remote_work, write_render
from dockyard.engine.connection import Engine
from dockyard.engine.deployed import record
from dockyard.engine.history import record_deployed, unkept_pin
from dockyard.engine.observe import image_states, observe
from dockyard.engine.ship import same_engine, ship_fleet
from dockyard.engine.target import Target, compose, containers
from dockyard.errors import StaleImages
from dockyard.events import Progress, Sink
from dockyard.ops.images import ImageNeeds, image_needs
from dockyard.ops.reconcile import Step, decide, one_shots, unchanged
from dockyard.plan.ingress import fronted_ports, ingress_routes
from dockyard.plan.model import ServicePlan
from dockyard.render.fingerprint import spec_hashes

__all__ = ["ServiceStatus", "Target", "UpReport", "compose", "containers", "down", "logs",
           "plan_up", "prepare_up", "ready_images", "record_images", "status", "up",
           "up_steps"]

def _image_needs(target: Target) -> ImageNeeds:
    """The machine's built services whose image is not here, or is stale."""
    mine = [sp for sp in target.services() if sp.built]
    found = image_states(target.engine, [sp.image for sp in mine])
    return image_needs(mine, found, spec_hashes(target.plan))


def ready_images(target: Target, *, emit: Sink, build_missing: bool,
                 accept_stale: bool) -> None:
    """Pull (from `registry:`) or build the images of this machine's services that are not
    here or that were built from an older manifest entry; refuse to run a stale one when
    building is off (`accept_stale`: rollback runs `:prev` images on purpose)."""
    engine = target.engine
    mine = target.services()
    # Another machine without a registry: built here, then shipped (save | load) to it.
    ship_fleet([target], emit=emit, build_missing=build_missing, accept_stale=accept_stale)
    needs = _image_needs(target)
    if needs.pinned:
        _pinned_here(target, needs.pinned, emit=emit)
        needs = ImageNeeds(needs.missing, needs.stale)
    if accept_stale:
        needs = ImageNeeds(needs.missing)
    missing = needs.missing
    if missing and target.fleet.spec.registry:
        # Pull-through: what the registry has is pulled; only what it lacks is built here.
        from dockyard.engine.registry import pull_missing

        absent = set(pull_missing(engine, target.fleet,
                                  [sp.image for sp in mine if sp.name in missing], emit=emit))
        pulled = [sp for sp in mine if sp.name in missing and sp.image not in absent]
        again = image_needs(pulled, image_states(engine, [sp.image for sp in pulled]),
                            spec_hashes(target.plan)) if pulled else ImageNeeds()
        needs = ImageNeeds([sp.name for sp in mine if sp.name in missing
                            and sp.image in absent],
                           needs.stale + ([] if accept_stale else again.stale))
    if not needs:
        return
    if not build_missing:
        if needs.stale:
            raise StaleImages(needs.line("up does not run them with --no-build"),
                              fix="run `dockyard build`, or `dockyard up` without --no-build")
        return
    emit(Progress(needs.line("building them first")))
    # Only this machine's images (and the families under them); on another machine's engine
    # in a work folder of its own (see engine/build.py).
    build(engine, target.fleet, target.plan, target.state, emit=emit,
          only_missing=not needs.stale, services=[sp.name for sp in mine],
          work=None if same_engine(engine, Engine.local())
          else remote_work(target.state, target.machine))


def _pinned_here(target: Target, names: list[str], *, emit: Sink) -> None:
    """Services pinned (`image_tag:`) to a tag not here: pulled from `registry:` when set;
    no build makes a dated tag, so one still missing stops `up` before anything changes."""
    engine, plan = target.engine, target.plan
    if target.fleet.spec.registry:
        from dockyard.engine.registry import pull_missing

        pull_missing(engine, target.fleet, [plan.services[n].image for n in names], emit=emit)
    for name in names:
        if not engine.image_id(plan.services[name].image):
            raise unkept_pin(engine, target.fleet, plan, name)


def up_steps(target: Target) -> list[Step]:
    """What `up` would do now, service by service (the rendered files must be written)."""
    return decide(target.services(), observe(target.engine, target),
                  one_shots(target.plan.services))


_IMAGES: dict[str, threading.Lock] = {}  # per engine that builds: one build at a time there
_LOCKS = threading.Lock()


def _images_lock(target: Target) -> threading.Lock:
    """The lock of the engine that builds the machine's images: this host's for the machines
    built here (and shipped) or on this host's engine; the machine's own for one that
    builds on its engine (`build: remote`, or a registry's pull-through). Builds on
    different engines have work folders of their own (engine/build.py) and run at once."""
    here = same_engine(target.engine, Engine.local()) or (
        target.fleet.spec.machines[target.machine].build == "local"
        and not target.fleet.spec.registry)
    with _LOCKS:
        return _IMAGES.setdefault("" if here else target.machine, threading.Lock())


def prepare_up(target: Target, *, emit: Sink, build_missing: bool = True,
               accept_stale: bool = False) -> list[Step]:
    """The machine's images made ready (pulled, built; one build at a time per engine that
    builds, see _images_lock), then what `up` must do there. The rendered files must be
    written."""
    with _images_lock(target):
        ready_images(target, emit=emit, build_missing=build_missing,
                      accept_stale=accept_stale)
    return up_steps(target)


def plan_up(target: Target, *, emit: Sink) -> list[Step]:
    """`up --dry-run`: the steps, and nothing changed on the engine. The rendered compose
    file is written into the state folder (its config hashes are what containers are
    compared with); missing images are named, neither pulled nor built."""
    write_render(target.fleet, target.plan, target.state)
    needs = _image_needs(target)
    if needs:
        how = "pull or build" if needs.missing and target.fleet.spec.registry else "build"
        emit(Progress(needs.line(f"up would {how} them first")))
    return up_steps(target)


def up(target: Target, *, emit: Sink, build_missing: bool = True,
       accept_stale: bool = False) -> UpReport:
    """Start the machine's services level by level, each level once the previous is healthy.

    Images not here, or built from an older manifest entry, are built first (pulled first
    from `registry:` when missing); `accept_stale` runs older images as they are (rollback)."""
    t0 = time.monotonic()
    write_render(target.fleet, target.plan, target.state)
    todo = prepare_up(target, emit=emit, build_missing=build_missing, accept_stale=accept_stale)
    if unchanged(todo):  # every container is what the rendered file makes
        record(target.state, target.machine, target.compose_file.read_text())
        record_images(target)
        return UpReport(changed=False, seconds=time.monotonic() - t0, steps=todo)
    report = apply(target, todo, emit=emit)
    if ingress_routes(target.plan, target.machine):
        # A fronted service recreated behind the ingress has a new address.
        from dockyard.engine.ingress import sync

        sync(target)
    record_images(target)
    report.seconds = time.monotonic() - t0
    return report


def record_images(target: Target) -> None:
    """The images the machine's services now run healthy, for `check`'s one-way data guard
    (DY607): what an image change is judged against."""
    record_deployed(target.state, target.plan,
                    {sp.name: target.engine.image_id(sp.image) for sp in target.services()})


def down(target: Target, *, volumes: bool = False) -> None:
    """Stop and remove the project's containers (and networks; named volumes too when asked).

    By project name alone, without the rendered file: compose then finds what to remove by its
    labels, and needs neither the file nor the secrets it names (`.env` may be gone); a
    compose.yaml it finds near the working directory is not read for that (compose 2.40).
    No engine answering is one sentence naming the endpoint (see compose())."""
    args = ["down", "--remove-orphans"] + (["--volumes"] if volumes else [])
    compose(target, *args, by_name=True, cwd=target.state if target.state.is_dir() else None)


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    machine: str
    level: int
    image: str
    state: str
    health: str
    ports: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


PROBES_AT_ONCE = 4  # per machine: a remote one's probes are execs over its one connection


def engine_verdict(container: Any) -> tuple[bool, str] | None:
    """The engine's own health check's last verdict on the container (None: it has none,
    or has not judged yet)."""
    state = (container.attrs.get("State") or {}).get("Health") or {}
    if state.get("Status") not in ("healthy", "unhealthy"):
        return None
    log = state.get("Log") or [{}]
    return state["Status"] == "healthy", str(log[-1].get("Output") or "").strip()[:200]


def status(target: Target) -> list[ServiceStatus]:
    """Each of the machine's services: its container's state and health. On this host a
    probe now (up to PROBES_AT_ONCE at a time); on another machine the engine's own health
    check's last verdict where there is one (a probe there is an exec over SSH, and the
    engine runs the same check every `interval`), else a probe."""
    from concurrent.futures import ThreadPoolExecutor

    engine = target.engine
    running = containers(engine, target.project)

    def row(sp: ServicePlan) -> ServiceStatus:
        c = running.get(sp.name)
        via = {n for n, _ in fronted_ports(sp.spec)}
        ports = ", ".join(f"{p.bind}:{p.host_port}->{p.port}" + (" (ingress)" if n in via else "")
                          for n, p in sp.published)
        if c is None:
            return ServiceStatus(sp.name, target.machine, sp.level, sp.image, "absent", "-",
                                 ports, "")
        state = str(c.status)
        judged = None if engine.is_local or state != "running" else engine_verdict(c)
        if judged is not None:
            healthy, output = judged
        else:
            healthy, output = engine.probe(c, sp.spec) if state == "running" else (False, "")
        health = ("healthy" if healthy else "unhealthy") if state == "running" else "-"
        return ServiceStatus(sp.name, target.machine, sp.level, sp.image, state, health,
                             ports, output.splitlines()[0][:80] if output else "")

    mine = target.services()
    if len(mine) <= 1:
        return [row(sp) for sp in mine]
    with ThreadPoolExecutor(max_workers=min(PROBES_AT_ONCE, len(mine))) as pool:
        return list(pool.map(row, mine))


def logs(target: Target, service: str | None, *, follow: bool, tail: int | None) -> None:
    target.engine.client  # noqa: B018 - no engine: one sentence, before compose says its own
    args = ["logs", "--no-color"]
    if follow:
        args.append("--follow")
    if tail is not None:
        args += ["--tail", str(tail)]
    if service:
        args.append(service)
    compose(target, *args, capture=False, timeout=10**9)

"""Build the image DAG: lock, fetch, then families in `from` order and services on them.

Each image builds as soon as its parent has (independent ones in parallel, bounded by the
cores), under a tag of this run; only when every image built do the tags move: the image that
was `:current` becomes `:prev`, the new one `:current` and `:<YYYYMMDD>-<HHMMSS>-<gitsha>`
(UTC; sortable, one per build). A failed or interrupted build leaves `:current` and `:prev`
as they were.

The moves are one step: written first to a journal (<state>/build/tags.json), done with
Ctrl-C held (engine/interrupts.py), and the journal removed after. A run killed in the
middle (kill -9, a power cut) leaves the journal, and the next build finishes its moves
before anything else; it also removes the run tags (`:dy-build-*`) of runs that died, which
each run records in <state>/build/runs/ with its process id.

A machine that builds its own images (`build: remote`) builds them on its engine in a work
folder of its own (<state>/remote-build/<machine>/build: contexts, runs, journal, kept tags),
so builds on different engines run side by side; what they share in the state folder (the
rendered files, the locks, the wheelhouse) is written by one build at a time (_SHARED)."""

from __future__ import annotations

import contextlib
import graphlib
import hashlib
import heapq
import json
import os
import threading
import time
import uuid
from collections.abc import Collection, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dockyard.engine import bootstrap
from dockyard.engine.composebuild import compose_build
from dockyard.engine.connection import Engine
from dockyard.engine.context import stage_context
from dockyard.engine.history import TagSwap, collect
from dockyard.engine.interrupts import held, reach
from dockyard.engine.lock import lock_all, where_of, written_platforms
from dockyard.engine.pip import Indexes
from dockyard.engine.private import private_folder, write_private
from dockyard.engine.run import pid_alive, run
from dockyard.engine.wheels import fetch, stage_family
from dockyard.errors import (
    BuildError,
    DockyardError,
    FindingsError,
    Interrupted,
    ManifestError,
)
from dockyard.events import ImageEvent, Progress, Sink
from dockyard.manifest.load import Fleet
from dockyard.ops.history import CURRENT_TAG as CURRENT_TAG
from dockyard.ops.history import PREV_TAG as PREV_TAG
from dockyard.ops.history import repo_of as repo_of
from dockyard.plan.family import (
    builds_for,
    cuda_stack_problem,
    own_requirements,
    with_service_layers,
)
from dockyard.plan.model import BuildStep, Plan
from dockyard.platforms import PLATFORMS, arch_of
from dockyard.render.dockerfile import LOCK_FILE, render_family_dockerfile
from dockyard.render.files import render_all
from dockyard.render.fingerprint import SPEC_LABEL, spec_hashes

INPUTS_LABEL = "dev.dockyard.inputs"
_SHARED = threading.Lock()  # the state folder's shared files: rendered files, locks, wheels
_SKIP_DIRS = {".git", ".dockyard", "__pycache__", ".venv", "node_modules", ".mypy_cache"}

@dataclass
class BuildReport:
    built: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    substituted: dict[str, str] = field(default_factory=dict)  # external base -> bootstrap
    tag: str = ""  # the dated tag this run gave the images it built
    seconds: dict[str, float] = field(default_factory=dict)  # per image built
    locks_made: list[str] = field(default_factory=list)
    wheels_downloaded: int = 0
    removed: list[str] = field(default_factory=list)  # dated tags GC removed after it


def write_render(fleet: Fleet, plan: Plan, state: Path, resolve: bool = True) -> Path:
    """Write every rendered file under state/render (only files whose bytes changed). The
    compose files are the owner's alone (0600, in a 0700 folder): they name no secret's value,
    but may hold what the manifest writes literally. `resolve`: look up the `host:` names
    the cross-machine routes need (up); a build leaves those routes out (`up` writes them)."""
    out = state / "render"
    private_folder(out)
    text = fleet.path.read_text(encoding="utf-8") if fleet.path.is_file() else ""
    root = os.path.relpath(fleet.root.resolve(), out.resolve())
    from dockyard.engine.addresses import machine_addresses

    addresses = machine_addresses(fleet, plan) if resolve else {}  # routes take addresses
    for rel, content in render_all(fleet, plan, text, root, addresses,
                                   unresolved=not resolve).items():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel.startswith("compose."):
            write_private(target, content)
        elif not target.is_file() or target.read_text(encoding="utf-8") != content:
            target.write_text(content, encoding="utf-8")
    return out


def image_labels(engine: Engine, ref: str) -> dict[str, str]:
    from docker.errors import ImageNotFound

    try:
        labels = engine.client.images.get(ref).labels
    except ImageNotFound:
        return {}
    return dict(labels or {})


def resolve_bases(engine: Engine, plan: Plan, *, emit: Sink, arch: str = "amd64",
                  foreign: bool = False) -> dict[str, str]:
    """External base -> the image to build on: itself when present or pullable, else a
    bookworm base bootstrapped with mmdebstrap (and we say so, once per registry)."""
    roots = [s for s in plan.builds if s.kind == "family" and not s.parent]
    missing: dict[str, str] = {}
    for step in roots:
        # Present for this architecture, or pulled for it (a pull for another architecture
        # than the engine's moves the local tag to that variant, as `docker pull` does).
        if step.base in missing or bootstrap.image_exists(engine, step.base, arch):
            continue
        reason = bootstrap.try_pull(engine, step.base, arch)
        if reason:
            missing[step.base] = reason
    if not missing:
        return {}
    packages: set[str] = set()
    for step in roots:
        if step.base in missing:
            if not bootstrap.can_stand_in(step.base):
                raise BuildError(
                    f"family {step.name}: base image {step.base} is not here and cannot be "
                    f"pulled ({missing[step.base]})",
                    fix="`docker load` it, set `registry:`, or base the family on python:3.11-slim "
                        "or debian:bookworm-slim, which dockyard can bootstrap offline")
            packages.update(plan.families[step.name].apt)
    tag = bootstrap.bootstrap_tag(packages, arch)
    for line in bootstrap.substitution_lines(missing, tag):
        emit(Progress(line))
    if not bootstrap.image_exists(engine, tag):
        emit(Progress(f"bootstrapping {tag} with mmdebstrap for {arch} "
                      f"({'a few minutes under QEMU' if foreign else 'about a minute'}, once)"))
        bootstrap.bootstrap_base(engine, packages, arch)
    return dict.fromkeys(missing, tag)


def _hash_tree(root: Path) -> Iterator[bytes]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in sorted(files):
            path = Path(folder) / name
            yield str(path.relative_to(root)).encode()
            yield hashlib.sha256(path.read_bytes()).digest()


def inputs_hash(dockerfile: str, base_id: str, inputs: Path) -> str:
    """What an image is made of: Dockerfile, base image (its ID, i.e. digest of its config),
    and its input files (a folder, or one file such as a family's locked delta). Same hash,
    same image."""
    h = hashlib.sha256()
    for part in (dockerfile.encode(), base_id.encode()):
        h.update(part)
        h.update(b"\0")
    if inputs.is_dir():
        for chunk in _hash_tree(inputs):
            h.update(chunk)
    elif inputs.is_file():
        h.update(inputs.read_bytes())
    return h.hexdigest()


def engine_arch(engine: Engine) -> str:
    """The platform the engine builds for natively (amd64 or arm64)."""
    machine = str(engine.client.info().get("Architecture", "x86_64"))
    arch = arch_of(machine)
    if arch is None:
        raise BuildError(f"the engine runs on {machine}; dockyard builds for amd64 and arm64",
                         fix="build on an amd64 or arm64 machine")
    return arch


def git_revision(root: Path) -> str:
    """The short commit of the manifest's repository, or "nogit"."""
    try:
        result = run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], check=False,
                     timeout=30)
    except DockyardError:
        return "nogit"
    sha = result.stdout.strip()
    return sha if result.returncode == 0 and sha else "nogit"


def _source(root: Path) -> str:
    try:
        result = run(["git", "-C", str(root), "config", "--get", "remote.origin.url"],
                     check=False, timeout=30)
    except DockyardError:
        return root.resolve().as_uri()
    return result.stdout.strip() or root.resolve().as_uri()


@dataclass
class _Job:
    step: BuildStep
    target: str
    context: Path
    dockerfile: Path
    inputs: str = ""
    ref: str = ""  # what children build on: the run's tag if built now, else `:current`


class _Builder:
    def __init__(self, engine: Engine, fleet: Fleet, plan: Plan, state: Path, *, emit: Sink,
                 now: datetime, substitutes: dict[str, str], arch: str, force: bool,
                 only_missing: bool, specs: dict[str, str], work: Path) -> None:
        self.engine = engine
        self.fleet, self.plan, self.state, self.emit = fleet, plan, state, emit
        self.substitutes, self.arch = substitutes, arch
        self.force, self.only_missing = force, only_missing
        self.specs = specs  # image ref -> what the manifest says it is made of
        self.work = work
        self.rendered = state / "render"
        self.run_tag = f"dy-build-{uuid.uuid4().hex[:10]}"
        self.revision = git_revision(fleet.root)
        self.stamp = dated_tag(now, self.revision)
        self.stopping = False  # Ctrl-C came: start nothing more, retry nothing
        manifest = fleet.path.read_bytes() if fleet.path.is_file() else b""
        self.labels = {
            "org.opencontainers.image.source": _source(fleet.root),
            "org.opencontainers.image.revision": self.revision,
            "org.opencontainers.image.created": now.astimezone(UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"),
            "dev.dockyard.fleet": plan.fleet,
            "dev.dockyard.manifest-hash": "sha256:" + hashlib.sha256(manifest).hexdigest(),
        }
        self.jobs: dict[str, _Job] = {}
        self.built: list[_Job] = []

    def key(self, kind: str, name: str) -> str:
        return f"{kind}-{name}"

    def prepare(self, step: BuildStep) -> _Job:
        target = self.key(step.kind, step.name)
        if step.kind == "family":
            context = self.work / "families" / step.name
            context.mkdir(parents=True, exist_ok=True)
            text = render_family_dockerfile(self.plan, step)
            dockerfile = context / "Dockerfile"
            if not dockerfile.is_file() or dockerfile.read_text() != text:
                dockerfile.write_text(text)
            return _Job(step, target, context, dockerfile)
        svc = self.plan.services[step.name].spec
        source = (self.fleet.root / svc.build).resolve() if svc.build else None
        if source is not None and not source.is_dir():
            raise BuildError(
                f"{self.fleet.where('services', step.name, 'build')}: service {step.name}: "
                f"build context {svc.build} is not a folder",
                fix="create it or correct `build:`")
        # Only what the image may hold is sent (and hashed): no .env, state or git.
        context = self.work / "services" / step.name
        stage_context(source, context, manifest=self.fleet.path)
        dockerfile = ((source / svc.dockerfile) if source is not None and svc.dockerfile
                      else self.rendered / "services" / f"{step.name}.Dockerfile")
        return _Job(step, target, context, dockerfile)

    def base_ref(self, step: BuildStep) -> str:
        if step.parent:
            return self.jobs[self.key("family", step.parent)].ref
        return self.substitutes.get(step.base, step.base)

    def decide(self, job: _Job) -> bool:
        """Fill in the job's inputs hash; True when it must be built."""
        step = job.step
        hashed = job.context
        if step.kind == "family":
            if own_requirements(self.plan.families[step.name]):
                stage_family(self.fleet, self.plan, self.state, step.name, self.arch,
                             job.context)
                hashed = job.context / LOCK_FILE
            else:
                hashed = job.context / "no-inputs"
        # An own Dockerfile's build args are inputs too: a changed one rebuilds.
        args = "".join(f"\nARG {k}={v}" for k, v in sorted(self.build_args(step).items()))
        job.inputs = inputs_hash(job.dockerfile.read_text() + args,
                                 self.engine.image_id(self.base_ref(step)), hashed)
        current = image_labels(self.engine, step.image)
        if (self.only_missing and current) or (
                not self.force and current.get(INPUTS_LABEL) == job.inputs
                and current.get(SPEC_LABEL) == self.specs.get(step.image)):
            job.ref = step.image
            return False
        return True

    def new_ref(self, step: BuildStep) -> str:
        """The tag this run builds `step`'s image under (retagged once every image built)."""
        return f"{repo_of(step.image)}:{self.run_tag}"

    def build_args(self, step: BuildStep) -> dict[str, str]:
        """The manifest's `build_args:` of a service with its own Dockerfile."""
        return dict(self.plan.services[step.name].spec.build_args) if step.kind == "service" \
            else {}

    def compose_service(self, job: _Job) -> dict[str, Any]:
        """The compose `build:` entry that makes `job`'s image under this run's tag."""
        step = job.step
        family = (step.name if step.kind == "family"
                  else self.plan.services[step.name].spec.family)
        return {
            "image": self.new_ref(step),
            "platform": PLATFORMS[self.arch].docker,
            "build": {
                "context": str(job.context),
                "dockerfile": str(job.dockerfile),
                "args": {"BASE_IMAGE": self.base_ref(step), **self.build_args(step)},
                # Host networking lets an apt step reach the mirror when the base lacks a
                # package; wheels never need it (they come from the wheelhouse).
                "network": "host",
                "labels": {
                    **self.labels,
                    INPUTS_LABEL: job.inputs,
                    SPEC_LABEL: self.specs.get(step.image, ""),
                    f"dev.dockyard.{step.kind}": step.name,
                    "dev.dockyard.family": family,
                    "org.opencontainers.image.title": step.name,
                },
            },
        }

    def build_batch(self, jobs: list[_Job]) -> float:
        """Build `jobs` in one `docker compose build` (one BuildKit session; compose runs
        them side by side). Thin service images on one family take ~0.2 s of build each and
        as much again of compose start-up when built one by one. When the batch fails, each
        is built alone so that the error names the one that fails (the others come from the
        cache)."""
        started = time.monotonic()
        if len(jobs) == 1:
            self.build_alone(jobs[0])
        else:
            name = f"batch-{jobs[0].target}"
            try:
                compose_build(self.engine, self.work, f"{self.plan.fleet}-{name}", name,
                               {job.target: self.compose_service(job) for job in jobs})
            except BuildError as exc:
                if self.stopping or exc.returncode in INTERRUPTED_CODES:
                    raise  # compose got Ctrl-C too: building again would ignore it
                for job in jobs:
                    self.build_alone(job)
        for job in jobs:
            job.ref = self.new_ref(job.step)
        return time.monotonic() - started

    def build_alone(self, job: _Job) -> None:
        compose_build(self.engine, self.work, f"{self.plan.fleet}-{job.target}", job.target,
                      {job.target: self.compose_service(job)})

    def moves(self) -> list[TagMove]:
        """What promote does, image by image (read before anything moves)."""
        images = self.engine.client.images
        return [TagMove(repo_of(job.step.image), str(images.get(job.ref).id),
                        self.engine.image_id(job.step.image), job.ref) for job in self.built]

    def promote(self) -> None:
        """Every image built: move `:current` (old one to `:prev`) and add the dated tag, for
        every image or (Ctrl-C before it began) for none."""
        if not self.built:
            return
        with held():
            moves = self.moves()
            journal = Journal(self.work)
            journal.write(self.stamp, moves)
            for i, move in enumerate(moves):
                if i:
                    reach("build.promote")
                move.apply(self.engine, self.stamp)
            for move in moves:
                move.drop_run_tag(self.engine)
            journal.remove()

    def discard(self) -> None:
        """A build failed: drop this run's tags; `:current` and `:prev` stay as they were."""
        from docker.errors import APIError

        for job in self.jobs.values():
            if job.ref.endswith(":" + self.run_tag):
                with contextlib.suppress(APIError):
                    self.engine.client.images.remove(job.ref)


INTERRUPTED_CODES = (130, -2)  # a child that SIGINT ended (shell convention, or signal 2)


def dated_tag(now: datetime, revision: str) -> str:
    """`20261201-093015-1a2b3c4d5e6f`: the build's UTC time to the second, then the commit;
    sortable, and a new one for every build (the day alone was shared by a day's builds)."""
    return f"{now.astimezone(UTC):%Y%m%d-%H%M%S}-{revision}"


@dataclass(frozen=True)
class TagMove:
    """One image's tag moves: `new` becomes `:current` and the dated tag, `old` (the image
    that was `:current`, "" when none) `:prev`; `run_ref` is the tag it was built under."""

    repo: str
    new: str
    old: str
    run_ref: str

    def apply(self, engine: Engine, stamp: str) -> None:
        """Idempotent: a journal replayed after a kill moves the same tags again."""
        images = engine.client.images
        new = images.get(self.new)
        if self.old and self.old != self.new:
            images.get(self.old).tag(self.repo, PREV_TAG)
        new.tag(self.repo, CURRENT_TAG)
        new.tag(self.repo, stamp)

    def drop_run_tag(self, engine: Engine) -> None:
        from docker.errors import ImageNotFound

        with contextlib.suppress(ImageNotFound):
            engine.client.images.remove(self.run_ref, noprune=True)


class Journal:
    """The tag moves of one build, written before they start (see the module)."""

    def __init__(self, work: Path) -> None:
        self.path = work / "tags.json"

    def write(self, stamp: str, moves: list[TagMove]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"stamp": stamp, "moves": [m.__dict__ for m in moves]}, indent=1)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def finish(self, engine: Engine, emit: Sink) -> None:
        """A build died while moving tags: finish its moves (every image it built is still
        there under its run tag), so no repository is left half-moved."""
        from docker.errors import ImageNotFound

        if not self.path.is_file():
            return
        data = json.loads(self.path.read_text(encoding="utf-8"))
        moves = [TagMove(**m) for m in data["moves"]]
        done = []
        with held():
            for move in moves:
                try:
                    move.apply(engine, data["stamp"])
                except ImageNotFound:
                    continue  # its image was removed since: nothing to move to
                done.append(move.repo)
            for move in moves:
                move.drop_run_tag(engine)
            self.remove()
        emit(Progress(f"finished the tag moves of a build that was stopped while making "
                      f"them: {', '.join(done) or 'nothing left to move'} (tagged "
                      f"{data['stamp']})"))


class Runs:
    """The builds of one state folder: each records its run tag and process id while it runs,
    so the next one can remove the run tags of those that died (and never a live one's)."""

    def __init__(self, work: Path) -> None:
        self.folder = work / "runs"

    def start(self, run_tag: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        record = self.folder / run_tag
        record.write_text(str(os.getpid()), encoding="utf-8")
        return record

    def clean(self, engine: Engine, repos: list[str], emit: Sink) -> None:
        from docker.errors import APIError

        dead = []
        for record in sorted(self.folder.glob("dy-build-*")) if self.folder.is_dir() else []:
            text = record.read_text(encoding="utf-8").strip()
            if text.isdigit() and pid_alive(int(text)):
                continue
            for repo in repos:
                with contextlib.suppress(APIError):
                    engine.client.images.remove(f"{repo}:{record.name}", noprune=True)
            record.unlink(missing_ok=True)
            dead.append(record.name)
        if dead:
            emit(Progress(f"removed the tags of {len(dead)} build(s) that were stopped before "
                          f"they ended ({', '.join(dead)})"))


def remote_work(state: Path, machine: str) -> Path:
    """The build work folder of a machine that builds on its own engine (`build: remote`)."""
    return state / "remote-build" / machine / "build"


def build(engine: Engine, fleet: Fleet, plan: Plan, state: Path, *, emit: Sink,
          only_missing: bool = False, force: bool = False, arch: str = "",
          now: datetime | None = None, indexes: Indexes | None = None,
          jobs: int = 0, services: Collection[str] | None = None,
          work: Path | None = None) -> BuildReport:
    """Lock, fetch and build on `engine` every image in the plan whose inputs changed (or that
    is missing); with `services`, only their images and the families under them.

    Nothing is built when a family cannot be locked or a wheel is missing for `arch`.
    `emit` gets an ImageEvent for each image as it starts, and ends or fails. `work`: the
    folder of contexts, runs and the tag journal (default <state>/build, this host's; see
    remote_work); the kept tags are recorded beside it."""
    report = BuildReport()
    if services is not None:
        plan = replace(plan, builds=builds_for(with_service_layers(plan), services))
    if not plan.builds:
        return report
    for name in plan.families:
        problem = cuda_stack_problem(plan.families, name)
        if problem:
            raise ManifestError(problem, where=fleet.where("families", name, "from"),
                                fix="base the family on a plain image such as "
                                    "debian:bookworm-slim; the torch wheels bring CUDA with them")
    with _SHARED:
        write_render(fleet, plan, state, resolve=False)  # images need no routes
    specs = spec_hashes(plan)
    native = engine_arch(engine)
    arch = arch or native
    bootstrap.require_emulation(arch, native)
    plan = with_service_layers(plan)  # a service's own requirements: a thin family under it
    work = work or state / "build"
    Journal(work).finish(engine, emit)  # a build killed while moving tags: finish it first
    Runs(work).clean(engine, sorted({repo_of(s.image) for s in plan.builds}), emit)
    for name in dict.fromkeys(s.name for s in plan.builds if s.kind == "family"):
        wanted = written_platforms(plan, name)
        if wanted and arch not in wanted:
            raise ManifestError(
                f"family {name} is for {', '.join(wanted)}, and this engine builds {arch} "
                "images", where=where_of(fleet, plan, name, "platforms"),
                fix=f"add {arch} to its `platforms:`, or build on an {wanted[0]} machine")
    indexes = indexes or Indexes.from_host()
    machines = sorted({m.arch for m in fleet.spec.machines.values()})
    if arch not in machines:
        emit(Progress(f"building {arch} images; the fleet's machines are {', '.join(machines)}: "
                      f"these images do not run there (`dockyard build --platform "
                      f"{machines[0]}` makes theirs)"))
    with _SHARED:  # locks/ and the wheelhouse: one build at a time writes them
        locked = lock_all(fleet, plan, indexes=indexes, emit=emit, platforms=[arch], also=arch)
        report.locks_made = locked.made
        findings = list(locked.findings)
        if not findings:
            fetched = fetch(fleet, plan, state, indexes=indexes, platforms=[arch], also=arch)
            report.wheels_downloaded = fetched.downloaded
            findings = fetched.findings
    if findings:
        raise FindingsError(findings, stopped="nothing was built")
    report.substituted = resolve_bases(engine, plan, emit=emit, arch=arch,
                                       foreign=arch != native)
    builder = _Builder(engine, fleet, plan, state, emit=emit, now=now or datetime.now(UTC),
                       substitutes=report.substituted, arch=arch, force=force,
                       only_missing=only_missing, specs=specs, work=work)
    report.tag = builder.stamp
    runs = Runs(builder.work)
    record = runs.start(builder.run_tag)
    try:
        _run_dag(builder, plan, report, emit, jobs or max(1, os.cpu_count() or 1))
    except BaseException as exc:
        builder.discard()
        record.unlink(missing_ok=True)
        if isinstance(exc, KeyboardInterrupt):
            raise Interrupted("interrupted while building images: nothing was retagged, "
                              "`:current` and `:prev` are as they were",
                              fix="`dockyard build` again builds what is left") from None
        emit(Progress("nothing was retagged: `:current` and `:prev` are as they were"))
        raise
    try:
        builder.promote()
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted while moving tags: every image built was tagged "
                          f"(:current, :prev and {builder.stamp}), none was left half-moved",
                          fix="nothing to do: the build had ended") from None
    # Only now: a run stopped before this point leaves its record, and the next one removes
    # the run tags it may have left.
    record.unlink(missing_ok=True)
    report.built.sort()
    report.removed = collect(engine, plan, fleet.spec.image_history, work.parent, emit=emit)
    return report


def _priorities(graph: dict[str, set[str]]) -> dict[str, tuple[int, int]]:
    """Per image: (longest chain of images below it, how many images are below it). Builds
    start highest first, so the chain of families that gates most images is never queued
    behind the thin service images of a family already done (list scheduling)."""
    children: dict[str, list[str]] = {key: [] for key in graph}
    for key, parents in graph.items():
        for parent in parents:
            children[parent].append(key)
    memo: dict[str, tuple[int, set[str]]] = {}

    def below(key: str) -> tuple[int, set[str]]:
        if key not in memo:
            height, under = 0, set[str]()
            for child in children[key]:
                h, u = below(child)
                height, under = max(height, h + 1), under | u | {child}
            memo[key] = (height, under)
        return memo[key]

    return {key: (below(key)[0], len(below(key)[1])) for key in graph}


BATCH = 32  # thin service images built by one compose run


def _take(waiting: list[tuple[int, int, str]], steps: dict[str, BuildStep],
          graph: dict[str, set[str]]) -> list[str]:
    """The next images to build together: the first waiting one, and when it is a service,
    up to BATCH - 1 other waiting services on the same family."""
    first = heapq.heappop(waiting)[2]
    if steps[first].kind != "service":
        return [first]
    same = [entry for entry in waiting
            if steps[entry[2]].kind == "service" and graph[entry[2]] == graph[first]]
    same = same[:BATCH - 1]
    if same:
        taken = {entry[2] for entry in same}
        waiting[:] = [entry for entry in waiting if entry[2] not in taken]
        heapq.heapify(waiting)
    return [first] + [entry[2] for entry in same]


def _run_dag(builder: _Builder, plan: Plan, report: BuildReport, emit: Sink,
             workers: int) -> None:
    """Start each image once its parent is done, `workers` at a time, those that gate the most
    images first; raise the first failure after the builds already running have ended."""
    steps = {builder.key(s.kind, s.name): s for s in plan.builds}
    graph = {key: ({builder.key("family", s.parent)} if s.parent else set())
             for key, s in steps.items()}
    rank = _priorities(graph)
    sorter = graphlib.TopologicalSorter(graph)
    sorter.prepare()
    total = len(steps)
    failure: BaseException | None = None
    waiting: list[tuple[int, int, str]] = []  # heap of ready images: (-height, -under, key)

    def event(job: _Job, state: str, seconds: float = 0.0, together: int = 1) -> None:
        emit(ImageEvent(job.step.kind, job.step.name, state,
                        len(report.built) + len(report.skipped), total, seconds,
                        builder.base_ref(job.step), together))

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dockyard-build") as pool:
        running: dict[Future[float], list[_Job]] = {}
        try:
            while failure is None and sorter.is_active():
                for key in sorter.get_ready():
                    heapq.heappush(waiting, (-rank[key][0], -rank[key][1], key))
                while waiting and len(running) < workers:
                    batch: list[_Job] = []
                    for key in _take(waiting, steps, graph):
                        job = builder.prepare(steps[key])
                        builder.jobs[key] = job
                        if builder.decide(job):
                            event(job, "building")
                            batch.append(job)
                        else:
                            report.skipped.append(key)
                            event(job, "unchanged")
                            sorter.done(key)
                    if batch:
                        running[pool.submit(builder.build_batch, batch)] = batch
                if not running:
                    continue
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    batch = running.pop(future)
                    try:
                        seconds = future.result()
                    except BaseException as exc:  # re-raised once the others have ended
                        failure = failure or exc
                        for job in batch:
                            event(job, "failed")
                        continue
                    for job in batch:
                        builder.built.append(job)
                        report.built.append(job.target)
                        report.seconds[job.target] = round(seconds, 1)
                        event(job, "built", seconds, len(batch))
                        sorter.done(job.target)
        except KeyboardInterrupt:
            builder.stopping = True  # the builds running end (compose got it too), no retry
            raise
        finally:
            wait(running)
    if failure is not None:
        raise failure


def rollback_services(plan: Plan, services: list[str] | None = None) -> list[str]:
    """The services a rollback acts on: those named, else every service dockyard builds and
    no `image_tag:` pins."""
    if services is not None:
        return list(services)
    return sorted(n for n, sp in plan.services.items() if sp.built and not sp.spec.image_tag)


def prev_ref(image: str) -> str:
    """quickstart/web:current -> quickstart/web:prev, the image a rollback goes back to."""
    return f"{repo_of(image)}:{PREV_TAG}"


def prev_swaps(engine: Engine, plan: Plan, names: list[str], *, named: bool) -> list[TagSwap]:
    """The `:prev`/`:current` swap of each of `names` that has a `:prev` on the engine;
    nothing moves. A stock or pinned service refuses, and so (`named`) does one without
    `:prev`."""
    swaps: list[TagSwap] = []
    for name in names:
        image = plan.services[name].image
        if not plan.services[name].built:
            raise ManifestError(f"service {name} runs the stock image {image}: nothing to roll "
                                "back", fix="roll back services dockyard builds")
        if plan.services[name].spec.image_tag:
            raise ManifestError(f"service {name} is pinned to {plan.services[name].spec.image_tag}"
                                " by `image_tag:`: rollback does not move it",
                                fix="remove the pin to roll it back, or pin another kept tag")
        repo = repo_of(image)
        current = engine.image_id(f"{repo}:{CURRENT_TAG}")
        prev = engine.image_id(prev_ref(image))
        if not prev and named:
            # Not a bad manifest (exit 2): there is nothing to go back to yet (exit 1).
            raise DockyardError(f"service {name} has no previous image ({repo}:{PREV_TAG}): "
                                "nothing was retagged",
                                fix="`:prev` appears once a build changed the image")
        if prev:
            swaps.append(TagSwap(name, repo, current, prev))
    return swaps


def no_prev() -> DockyardError:
    return DockyardError("no service has a previous image (`:prev`) to go back to: "
                         "nothing was retagged",
                         fix="`:prev` appears once a build changed an image")


def built_images(engine: Engine, plan: Plan) -> dict[str, str]:
    """image -> id for every image the plan builds (empty id: not built yet)."""
    return {s.image: engine.image_id(s.image) for s in plan.builds}


def describe(report: BuildReport) -> str:
    return json.dumps({"built": report.built, "skipped": report.skipped,
                       "substituted": report.substituted, "tag": report.tag})

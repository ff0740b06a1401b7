"""Images to the machines that lack them, without a registry: `docker save` once, then into
each machine's `docker load` over the connection its engine has (SSH for `ssh://`), leaving
out of each machine's stream the images and layers it already holds (ops/ship.py decides).

The archive is written once to the state folder and read once per machine, in parallel:
`docker save` lists manifest.json last, so which layer file is which is only known once the
whole archive is there (and a second machine reuses it instead of saving again). When one
machine alone needs images and has none of their layers (a fresh one), `docker save` streams
straight into its `docker load`, as by hand.

What it cannot avoid: the engine's `docker save` tars every layer of the images it saves,
those left out of the stream too, so shipping one changed thin image on a 1.6 GiB family
still costs the save of 1.6 GiB here (not the transfer): the API has no per-layer export."""

from __future__ import annotations

import json
import shutil
import tarfile
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from dockyard.engine.connection import Engine
from dockyard.engine.images import describe
from dockyard.engine.private import private_folder
from dockyard.engine.run import feed, pipe, run
from dockyard.errors import DockyardError, EngineError
from dockyard.events import Progress, Shipped, Shipping, ShipProgress, Sink
from dockyard.ops.ship import Holding, ImageFacts, Shipment, plan_shipment, skippable
from dockyard.plan.sizes import chain_ids, layer_sizes

if TYPE_CHECKING:
    from dockyard.engine.target import Target

PROGRESS_EVERY = 1.0  # seconds between ShipProgress events of one machine
MAX_PARALLEL = 4  # machines fed at once (each reads the archive from disk)


@dataclass
class ShipReport:
    """What each machine got (by machine), and the seconds the whole shipping took."""

    shipments: dict[str, Shipment] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)  # bytes streamed, archive headers too
    absent: list[str] = field(default_factory=list)  # wanted, but not on the source either
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"machines": {m: {**s.as_dict(), "streamed": self.sent.get(m, 0)}
                             for m, s in sorted(self.shipments.items())},
                "absent": self.absent, "seconds": round(self.seconds, 3)}


def same_engine(a: Engine, b: Engine) -> bool:
    """Whether two machines' engines are one (nothing to ship between them)."""
    return (a.endpoint.context, a.endpoint.url) == (b.endpoint.context, b.endpoint.url)


def ship_fleet(targets: Sequence[Target], *, emit: Sink, build_missing: bool = True,
               accept_stale: bool = False) -> ShipReport:
    """For a fleet without `registry:`: the images that the targets' services run, to each
    target on another engine than this host's. What this host's engine lacks (or has stale)
    of them is built here first, once for all targets (`accept_stale`: older images are
    shipped as they are, as rollback runs them). Nothing at all for targets on this host's
    engine, with a registry (up pulls from it), or whose machine builds its own images
    (`build: remote`: up builds them on its engine)."""
    from dockyard.engine.build import build
    from dockyard.engine.observe import image_states
    from dockyard.ops.images import ImageNeeds, image_needs
    from dockyard.render.fingerprint import spec_hashes

    source = Engine.local()
    remote = [t for t in targets if not t.fleet.spec.registry
              and t.fleet.spec.machines[t.machine].build == "local"
              and not same_engine(t.engine, source)]
    if not remote:
        return ShipReport()
    first = remote[0]
    built = list({sp.name: sp for t in remote for sp in t.services() if sp.built}.values())
    if built and build_missing:
        needs = image_needs(built, image_states(source, [sp.image for sp in built]),
                            spec_hashes(first.plan))
        if accept_stale:
            needs = ImageNeeds(needs.missing)
        if needs:
            emit(Progress(needs.line("building them here, then shipping them")))
            build(source, first.fleet, first.plan, first.state, emit=emit,
                  only_missing=not needs.stale, services=[sp.name for sp in built])
    machines = {t.machine: (t.engine, [sp.image for sp in t.services()]) for t in remote}
    return ship(source, machines, first.state, emit=emit)


def image_facts(engine: Engine, refs: Sequence[str]) -> tuple[list[ImageFacts], list[str]]:
    """The images of `refs` on `engine` (ID, layers and their sizes), and the refs it lacks."""
    found: list[ImageFacts] = []
    absent: list[str] = []
    for ref in dict.fromkeys(refs):
        described = describe(engine, ref, "", "")
        if described is None:
            absent.append(ref)
            continue
        sizes, _ = layer_sizes(described.layers, described.history)
        info = engine.client.api.inspect_image(ref)
        found.append(ImageFacts(ref, str(info["Id"]), described.layers,
                                tuple(s for s, _ in sizes)))
    return found, absent


def holding(engine: Engine, refs: Sequence[str]) -> Holding:
    """What `engine` has: the image each of `refs` names there, every image ID, and the
    chain ID of every layer of its images (one list, one inspect per image)."""
    api = engine.client.api
    tags: dict[str, str] = {}
    ids: set[str] = set()
    chains: set[str] = set()
    for image in api.images():
        image_id = str(image["Id"])
        ids.add(image_id)
        for tag in image.get("RepoTags") or ():
            tags[tag] = image_id
        layers = (api.inspect_image(image_id).get("RootFS") or {}).get("Layers") or []
        chains.update(chain_ids(list(layers)))
    return Holding({ref: tags.get(_full(ref), "") for ref in refs}, frozenset(ids),
                   frozenset(chains))


def _full(ref: str) -> str:
    """A ref as the engine lists it: `name` is `name:latest`."""
    return ref if ":" in ref.rsplit("/", 1)[-1] else f"{ref}:latest"


def ship(source: Engine, machines: Mapping[str, tuple[Engine, Sequence[str]]], state: Path, *,
         emit: Sink) -> ShipReport:
    """Give each machine (name -> its engine and the refs it needs) the images of `source`
    it lacks. Machines on `source`'s own engine are skipped."""
    t0 = time.monotonic()
    report = ShipReport()
    wanted_refs = [r for engine, refs in machines.values() if not same_engine(engine, source)
                   for r in refs]
    if not wanted_refs:
        return report
    facts, report.absent = image_facts(source, wanted_refs)
    by_ref = {f.ref: f for f in facts}
    todo = {m: (engine, [by_ref[r] for r in dict.fromkeys(refs) if r in by_ref])
            for m, (engine, refs) in sorted(machines.items())
            if not same_engine(engine, source)}

    def decide(machine: str) -> Shipment:
        engine, wanted = todo[machine]
        return plan_shipment(machine, wanted, holding(engine, [w.ref for w in wanted]))

    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(todo))) as pool:
        report.shipments = dict(zip(todo, pool.map(decide, todo), strict=True))
    send = list(dict.fromkeys(r for s in report.shipments.values() for r in s.send))
    senders = [m for m, s in report.shipments.items() if s.send]
    # One machine that has none of the layers (a fresh one): `docker save` streams straight
    # into its `docker load`, the two overlapping, as by hand. Else the archive is written
    # once (its manifest comes last) and each machine reads what it lacks from it.
    direct = senders[0] if len(senders) == 1 and not report.shipments[senders[0]].present \
        else ""
    folder = state / "ship"
    private_folder(folder)
    archive = folder / f"images-{uuid.uuid4().hex[:12]}.tar"
    try:
        if send and not direct:
            run(source.docker_argv("save", "-o", str(archive), *send), timeout=3600)

        def deliver(machine: str) -> int:
            shipment = report.shipments[machine]
            engine = todo[machine][0]
            emit(Shipping(machine, shipment.send, shipment.bytes, shipment.full,
                          len(shipment.tag)))
            for image_id, ref in shipment.tag:
                repo, _, tag = _full(ref).rpartition(":")
                engine.client.api.tag(image_id, repo, tag)
            if not shipment.send:
                return 0
            started = time.monotonic()
            sent = (stream(source, engine, shipment, emit=emit) if machine == direct
                    else load(engine, archive, shipment, emit=emit))
            emit(Shipped(machine, shipment.send, sent, time.monotonic() - started))
            return sent

        busy = [m for m, s in report.shipments.items() if not s.empty]
        with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL, len(busy)))) as pool:
            report.sent = dict(zip(busy, pool.map(deliver, busy), strict=True))
    finally:
        archive.unlink(missing_ok=True)
    report.seconds = time.monotonic() - t0
    return report


def stream(source: Engine, engine: Engine, shipment: Shipment, *, emit: Sink) -> int:
    """`docker save` of the shipment's images on `source`, straight into `engine`'s `docker
    load` (nothing left out); return the bytes streamed."""
    counter = _Counting(shipment.machine, shipment.full, emit)

    def relay(out: IO[bytes], stdin: IO[bytes]) -> None:
        counter.out = stdin
        shutil.copyfileobj(out, counter, 1 << 20)

    try:
        pipe(source.docker_argv("save", *shipment.send), engine.docker_argv("load", "--quiet"),
             relay)
    except EngineError as exc:
        raise _load_failed(engine, shipment, exc) from None
    return counter.sent


def _load_failed(engine: Engine, shipment: Shipment, exc: EngineError) -> DockyardError:
    if not engine.answers():
        return engine.unavailable()
    return EngineError(f"loading {len(shipment.send)} image(s) into machine "
                       f"{shipment.machine} failed: {exc.message}",
                       fix="check that machine's disk (`docker system df` there) and its "
                           "engine's log", command=exc.command, returncode=exc.returncode,
                       stderr=exc.stderr)


def load(engine: Engine, archive: Path, shipment: Shipment, *, emit: Sink) -> int:
    """Stream `archive` into `engine`'s `docker load`, leaving out the images the shipment
    does not send and the layer files the engine has; return the bytes streamed."""
    with tarfile.open(archive) as tar:
        manifest = json.load(_member(tar, "manifest.json"))
        wanted = set(shipment.send)
        entries = [e for e in manifest if set(e.get("RepoTags") or ()) & _names(wanted)]
        diff_ids = {e["Config"]: json.load(_member(tar, e["Config"]))["rootfs"]["diff_ids"]
                    for e in entries}
        skip = skippable(entries, diff_ids, shipment.present)
        keep = _needed_files(tar, entries, skip)
        members = [m for m in tar.getmembers() if m.name in keep]
        total = sum(m.size for m in members) + 512 * (len(members) + 2)  # headers, end
        counter = _Counting(shipment.machine, total, emit)

        def write(stdin: IO[bytes]) -> None:
            counter.out = stdin
            with tarfile.open(fileobj=counter, mode="w|",  # type: ignore[call-overload]
                              format=tarfile.GNU_FORMAT) as out:
                for member in members:
                    if member.name == "manifest.json":
                        data = json.dumps(entries).encode()
                        member = tarfile.TarInfo("manifest.json")
                        member.size = len(data)
                        out.addfile(member, _bytes(data))
                    elif member.name == "repositories":
                        continue  # names images the stream may leave out; manifest.json has tags
                    else:
                        out.addfile(member, tar.extractfile(member) if member.isfile() else None)

        try:
            feed(engine.docker_argv("load", "--quiet"), write)
        except EngineError as exc:
            raise _load_failed(engine, shipment, exc) from None
        return counter.sent


def _names(refs: set[str]) -> set[str]:
    return refs | {_full(r) for r in refs}


def _needed_files(tar: tarfile.TarFile, entries: list[dict[str, Any]], skip: set[str]
                  ) -> set[str]:
    """The archive's files the stream keeps: manifest.json, each image's config, and the
    folders of its layers (their layer.tar only when not skipped)."""
    keep = {"manifest.json"} | {str(e["Config"]) for e in entries}
    folders = {str(path).rsplit("/", 1)[0] for e in entries for path in e["Layers"]}
    for name in tar.getnames():
        folder = name.split("/", 1)[0]
        if folder in folders and name not in skip:
            keep.add(name)
    return keep


def _member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    found = tar.extractfile(name)
    if found is None:
        raise EngineError(f"the image archive has no {name}", fix="report this as a bug")
    return found


def _bytes(data: bytes) -> IO[bytes]:
    import io

    return io.BytesIO(data)


class _Counting:
    """A write-only file that passes bytes on and says how many went, about once a second."""

    def __init__(self, machine: str, total: int, emit: Sink) -> None:
        self.machine, self.total, self.emit = machine, total, emit
        self.out: IO[bytes] | None = None
        self.sent = 0
        self.t0 = self.said = time.monotonic()

    def write(self, data: bytes) -> int:
        assert self.out is not None
        self.out.write(data)
        self.sent += len(data)
        now = time.monotonic()
        if now - self.said >= PROGRESS_EVERY:
            self.said = now
            self.emit(ShipProgress(self.machine, self.sent, self.total, now - self.t0))
        return len(data)

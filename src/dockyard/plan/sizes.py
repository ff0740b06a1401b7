"""Image sizes as arithmetic over layers: what each image of a fleet weighs, what it shares
with the fleet's other images, what the fleet costs on disk, and where a `max_size` budget
is exceeded. Pure: the engine hands in what `docker image inspect` and the history API say.

How a layer gets its size. Docker 20.10 has no per-layer size in `image inspect`; its history
API (`GET /images/{name}/history`, what `docker history` shows) gives every step's exact size
in bytes, oldest last, including steps that made no layer (ENV, USER, CMD ... are metadata).
The steps that made a layer, in order, are the image's `RootFS.Layers`. So each history
entry is classed: size > 0 is a layer; size 0 from a metadata instruction is not; other size-0
steps (a RUN or WORKDIR that changed nothing visible) are layers of 0 bytes. When that count
matches the layer list the alignment is exact (and the sizes add up to the image's size);
otherwise the sizes are laid on the non-empty layers in order and the image is marked
`exact=False`. `docker save` would give the same numbers from the layer tarballs, but writes
every byte of every image to do so.

How layers are shared. The engine stores a layer once per *chain* (the layer and every layer
under it), not per diff: the same diff on another base is stored again. So sharing is
counted by chain ID, the way Docker computes it: chain(0) = diff(0), chain(n) =
sha256(f"{chain(n-1)} {diff(n)}")."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dockyard.findings import Finding, Severity
from dockyard.manifest.load import Fleet
from dockyard.units import format_size

EMPTY_TAR = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
# Instructions that only change the image's config: never a layer.
_METADATA = {"ENV", "USER", "ENTRYPOINT", "CMD", "LABEL", "ARG", "EXPOSE", "HEALTHCHECK",
             "STOPSIGNAL", "SHELL", "VOLUME", "ONBUILD", "MAINTAINER"}


@dataclass(frozen=True)
class HistoryEntry:
    created_by: str
    size: int


@dataclass(frozen=True)
class ImageLayers:
    """One image as the engine describes it (history oldest first)."""

    ref: str
    kind: str  # family, service or stock
    name: str  # the family's or service's name in the manifest
    size: int
    layers: tuple[str, ...]  # diff IDs, RootFS.Layers
    history: tuple[HistoryEntry, ...]


@dataclass(frozen=True)
class Layer:
    chain: str
    size: int
    created_by: str


@dataclass(frozen=True)
class ImageSize:
    ref: str
    kind: str
    name: str
    size: int
    shared: int  # bytes in layers that another image of the fleet also has
    unique: int  # bytes only this image has
    layers: tuple[Layer, ...]
    exact: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"image": self.ref, "kind": self.kind, "name": self.name, "size": self.size,
                "shared": self.shared, "unique": self.unique, "layers": len(self.layers),
                "exact": self.exact}


@dataclass(frozen=True)
class SizeReport:
    images: list[ImageSize] = field(default_factory=list)
    disk: int = 0  # what the fleet's images take on disk: each distinct layer once
    total: int = 0  # the sum of the images' sizes, as if nothing were shared

    def as_dict(self) -> dict[str, Any]:
        return {"images": [i.as_dict() for i in self.images], "disk": self.disk,
                "sum_of_sizes": self.total}


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    chains: list[str] = []
    for diff in diff_ids:
        if not chains:
            chains.append(diff)
        else:
            digest = hashlib.sha256(f"{chains[-1]} {diff}".encode()).hexdigest()
            chains.append(f"sha256:{digest}")
    return chains


def instruction(created_by: str) -> str:
    """The Dockerfile instruction a history entry came from ("" for an import)."""
    text = created_by.strip()
    if "#(nop)" in text:  # the classic builder marks config-only steps so
        text = text.split("#(nop)", 1)[1].strip()
    word = text.split(maxsplit=1)[0].upper() if text else ""
    return "RUN" if word in {"/BIN/SH", "|1", "|2", "|3"} or word.startswith("|") else word


def _is_metadata(entry: HistoryEntry) -> bool:
    return entry.size == 0 and instruction(entry.created_by) in _METADATA


def layer_sizes(diff_ids: Sequence[str],
                history: Sequence[HistoryEntry]) -> tuple[list[tuple[int, str]], bool]:
    """(size, created_by) for each layer in `diff_ids`, and whether the alignment is exact."""
    steps = [h for h in history if not _is_metadata(h)]
    if len(steps) == len(diff_ids):
        return [(h.size, h.created_by) for h in steps], True
    # Cannot line them up one to one: lay the non-zero sizes on the layers that are not the
    # empty tarball, in order; whatever is left over goes to the top layer.
    sized = [h for h in history if h.size > 0]
    out: list[tuple[int, str]] = [(0, "") for _ in diff_ids]
    slots = [i for i, d in enumerate(diff_ids) if d != EMPTY_TAR] or list(range(len(diff_ids)))
    for slot, h in zip(slots, sized, strict=False):
        out[slot] = (h.size, h.created_by)
    if len(sized) > len(slots) and out:
        extra = sum(h.size for h in sized[len(slots):])
        out[-1] = (out[-1][0] + extra, out[-1][1])
    return out, False


def size_report(images: Iterable[ImageLayers]) -> SizeReport:
    """Each image's size, shared and unique bytes, and the fleet's disk, counting each layer
    chain once."""
    described: list[tuple[ImageLayers, list[Layer], bool]] = []
    known: dict[str, int] = {}
    for img in images:
        sizes, exact = layer_sizes(img.layers, img.history)
        layers = []
        for chain, (size, by) in zip(chain_ids(img.layers), sizes, strict=True):
            known.setdefault(chain, size)
            layers.append(Layer(chain, known[chain], by))
        described.append((img, layers, exact and sum(s for s, _ in sizes) == img.size))
    users: dict[str, int] = {}
    for _, layers, _ in described:
        for chain in {layer.chain for layer in layers}:
            users[chain] = users.get(chain, 0) + 1
    out = []
    for img, layers, exact in described:
        seen: set[str] = set()
        size = shared = 0
        for layer in layers:
            if layer.chain in seen:
                continue
            seen.add(layer.chain)
            size += layer.size
            shared += layer.size if users[layer.chain] > 1 else 0
        out.append(ImageSize(img.ref, img.kind, img.name, size, shared, size - shared,
                             tuple(layers), exact))
    return SizeReport(out, disk=sum(known[c] for c in users), total=sum(i.size for i in out))


def budget_findings(fleet: Fleet, report: SizeReport) -> list[Finding]:
    """DY604 (warning): an image larger than its family's or service's `max_size`."""
    findings = []
    spec = fleet.spec
    for img in report.images:
        owners: list[tuple[str, str, int]] = []
        if img.kind == "family" and img.name in spec.families:
            owners.append(("families", img.name, spec.families[img.name].max_size))
        elif img.kind == "service" and img.name in spec.services:
            owners.append(("services", img.name, spec.services[img.name].max_size))
        elif img.kind == "stock":  # every service that runs this stock image has its budget
            owners += [("services", n, s.max_size) for n, s in sorted(spec.services.items())
                       if s.image == img.ref]
        for section, name, budget in owners:
            if not budget or img.size <= budget or not img.layers:
                continue
            biggest = max(img.layers, key=lambda layer: layer.size)
            step = " ".join(biggest.created_by.split())[:70]
            what = "family" if section == "families" else "service"
            findings.append(Finding(
                "DY604", Severity.WARNING, fleet.where(section, name, "max_size"),
                f"{what} {name}: image {img.ref} is {format_size(img.size)}, over its "
                f"max_size of {format_size(budget)} by {format_size(img.size - budget)}",
                f"shrink its biggest layer ({format_size(biggest.size)}: "
                f"{step or 'base image'}) or raise max_size"))
    return findings

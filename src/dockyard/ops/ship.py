"""What to ship where: the images a machine's services run that it lacks, and of those only
the layers it lacks (pure; engine/ship.py gathers the facts and streams the bytes).

A fleet without `registry:` gets its images to another machine by `docker save` into that
machine's `docker load`, over the connection its engine already has (SSH for `ssh://`). A
plain `docker save | docker load` sends every layer of every image, every time. Here:

- an image whose ID the machine already has under the wanted name is kept (nothing sent);
- an image whose ID is there under another name is only tagged (nothing sent);
- otherwise it is sent, but only its layers whose chain ID the machine does not hold: the
  engine's load looks a layer up by chain ID before it reads the layer's file (moby
  image/tarexport/load.go), so the file may be left out of the archive. A service image on a
  family the machine has already costs only its own layers, as a registry pull would.

Chain IDs, not diff IDs: the same layer content on another parent is another layer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from dockyard.plan.sizes import chain_ids


@dataclass(frozen=True)
class ImageFacts:
    """One image as the engine that has it describes it."""

    ref: str
    id: str
    layers: tuple[str, ...]  # diff IDs, base first (RootFS.Layers)
    sizes: tuple[int, ...] = ()  # bytes of each layer, same order (history); () unknown

    @property
    def chains(self) -> list[str]:
        return chain_ids(self.layers)

    def size_of(self, index: int) -> int:
        return self.sizes[index] if index < len(self.sizes) else 0


@dataclass(frozen=True)
class Holding:
    """What a machine has: the image each wanted name points at, every image ID, and every
    layer chain ID of its images."""

    refs: Mapping[str, str] = field(default_factory=dict)  # ref -> image ID ("" absent)
    ids: frozenset[str] = frozenset()
    chains: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Shipment:
    """What one machine gets: images to send (save | load), names to add to an image it has,
    and what it needs nothing for."""

    machine: str
    send: tuple[str, ...] = ()  # refs, in the order asked
    tag: tuple[tuple[str, str], ...] = ()  # (image ID, ref)
    kept: tuple[str, ...] = ()
    present: frozenset[str] = frozenset()  # chain IDs of the sent images' layers it has
    bytes: int = 0  # what goes over the wire: each missing layer once
    full: int = 0  # what the sent images weigh, every layer counted once

    @property
    def empty(self) -> bool:
        return not self.send and not self.tag

    def as_dict(self) -> dict[str, object]:
        return {"machine": self.machine, "send": list(self.send),
                "tag": [list(t) for t in self.tag], "kept": list(self.kept),
                "bytes": self.bytes, "full": self.full}


def plan_shipment(machine: str, wanted: Iterable[ImageFacts], holding: Holding) -> Shipment:
    """The shipment that gives `machine` every image of `wanted`, sending the least."""
    send: list[str] = []
    tag: list[tuple[str, str]] = []
    kept: list[str] = []
    present: set[str] = set()
    counted: set[str] = set()
    sent = full = 0
    for image in wanted:
        if holding.refs.get(image.ref) == image.id:
            kept.append(image.ref)
            continue
        if image.id in holding.ids:
            tag.append((image.id, image.ref))
            continue
        send.append(image.ref)
        for i, chain in enumerate(image.chains):
            if chain in counted:
                continue  # one archive holds a layer shared by two images once
            counted.add(chain)
            full += image.size_of(i)
            if chain in holding.chains:
                present.add(chain)
            else:
                sent += image.size_of(i)
    return Shipment(machine, tuple(send), tuple(tag), tuple(kept), frozenset(present), sent,
                    full)


def skippable(manifest: Sequence[Mapping[str, object]], diff_ids: Mapping[str, Sequence[str]],
              present: Iterable[str]) -> set[str]:
    """The layer files of a `docker save` archive that its `docker load` never reads.

    `manifest` is the archive's manifest.json (one entry per image: Config, Layers), `diff_ids`
    each Config file's rootfs.diff_ids. A file is skippable when every image that lists it
    finds its chain ID among `present` (the receiving engine's)."""
    have = set(present)
    needed: set[str] = set()
    seen: set[str] = set()
    for entry in manifest:
        files = [str(f) for f in entry.get("Layers") or []]  # type: ignore[attr-defined]
        chains = chain_ids(list(diff_ids.get(str(entry.get("Config")), ())))
        if len(chains) != len(files):
            needed.update(files)  # an archive this code does not understand: send it whole
            continue
        for path, chain in zip(files, chains, strict=True):
            seen.add(path)
            if chain not in have:
                needed.add(path)
    return seen - needed

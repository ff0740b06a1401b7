"""Which images `up` must get before it starts anything: those not here, and those built from
an older manifest entry than the one it is about to run (stale). Pure: the image states come
from one lookup per ref (engine/observe.py image_states), the wanted hashes from
render/fingerprint.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dockyard.ops.observed import ImageState
from dockyard.plan.model import ServicePlan


@dataclass(frozen=True)
class ImageNeeds:
    missing: list[str] = field(default_factory=list)  # services whose image is not here
    stale: list[str] = field(default_factory=list)  # services whose image is out of date
    pinned: list[str] = field(default_factory=list)  # pinned (`image_tag:`) to a tag not here

    def __bool__(self) -> bool:
        return bool(self.missing or self.stale or self.pinned)

    def line(self, then: str) -> str:
        """What `up` says before it builds (`then`: what it does about it)."""
        parts = []
        if self.missing:
            parts.append(f"images missing for {', '.join(self.missing)}")
        if self.stale:
            parts.append(f"images built from an older manifest entry for "
                         f"{', '.join(self.stale)}")
        if self.pinned:
            parts.append(f"the pinned `image_tag:` is not here for {', '.join(self.pinned)}")
        return "; ".join(parts) + f": {then}"


def image_needs(services: Sequence[ServicePlan], found: Mapping[str, ImageState | None],
                specs: Mapping[str, str]) -> ImageNeeds:
    """Per built service: missing when its ref is not here; stale when the image's manifest
    hash is not the one the manifest renders now (an image without one was built by an
    older dockyard: it cannot say what it was made from, so it is stale too). A service
    pinned to a dated tag (`image_tag:`) runs that image as it was built: never stale, and
    when it is not here no build makes it (`pinned`)."""
    missing, stale, pinned = [], [], []
    for sp in services:
        if not sp.built:
            continue
        image = found.get(sp.image)
        absent = image is None or not image.id
        if sp.spec.image_tag:
            if absent:
                pinned.append(sp.name)
        elif absent:
            missing.append(sp.name)
        elif image is not None and sp.image in specs and image.spec != specs[sp.image]:
            stale.append(sp.name)
    return ImageNeeds(missing, stale, pinned)

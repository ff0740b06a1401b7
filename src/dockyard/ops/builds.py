"""`dockyard build` on several machines: which engine builds each machine's images, which
machines then get them shipped, and the line said per machine. Pure: the machines' `build:`
modes and which of them share this host's engine come from the caller (engine/fleetbuild.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass

from dockyard.units import format_size


@dataclass(frozen=True)
class BuildSplit:
    """Who builds what: one build on this host's engine for `here`, one per `remote`."""

    here: tuple[str, ...]  # machines whose images this host's engine builds (once for all)
    remote: tuple[str, ...]  # machines that build on their own engine (`build: remote`)
    ship: tuple[str, ...]  # of `here`: on another engine, no registry: their images shipped
    whole: bool  # `here` is every machine of the fleet: every image (unused families too)


def split_builds(modes: Mapping[str, str], chosen: Sequence[str], on_host: Set[str],
                 registry: bool) -> BuildSplit:
    """`modes`: every machine of the fleet -> its `build:` (local or remote); `chosen`: the
    machines acted on; `on_host`: those whose engine is this host's. A `build: remote`
    machine on this host's engine builds here with the others (one engine, one build)."""
    here = tuple(m for m in chosen if modes[m] != "remote" or m in on_host)
    remote = tuple(m for m in chosen if m not in here)
    ship = () if registry else tuple(m for m in here if m not in on_host)
    whole = set(here) == set(modes)
    return BuildSplit(here, remote, ship, whole)


@dataclass(frozen=True)
class MachineBuilt:
    """What `dockyard build` did for one machine."""

    machine: str
    remote: bool  # built on its own engine (else on this host's)
    built: tuple[str, ...] = ()  # images built for it ("service web", "family plain")
    unchanged: int = 0  # its images already up to date
    shipped: bool = False  # its images go by `docker save | load` (no registry, other engine)
    sent: int = 0  # bytes streamed to it
    images: int = 0  # images streamed to it
    registry: str = ""  # set: `up` pulls from there (`dockyard push` publishes)
    failed: str = ""  # why nothing could be done for it
    idle: bool = False  # none of its services is built by dockyard

    def line(self) -> str:
        if self.failed:
            return f"{self.machine}: not built: {self.failed}"
        if self.idle:
            return f"{self.machine}: nothing to build (no service of its is built by dockyard)"
        where = f"on {self.machine}" if self.remote else "here"
        done = (f"built {where}: {', '.join(self.built)}" if self.built
                else f"unchanged ({self.unchanged} image(s), built {where})")
        if self.shipped:
            done += f"; shipped {format_size(self.sent)}" + (
                f" ({self.images} image(s))" if self.images else " (it had them all)")
        elif self.registry and not self.remote:
            done += (f"; `dockyard push` sends them to {self.registry}, `up` pulls them "
                     "there")
        return f"{self.machine}: {done}"

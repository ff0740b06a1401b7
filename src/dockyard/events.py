"""What dockyard reports while it works, as typed events instead of free strings.

The engine and the actions hand each event to a `Sink`; the CLI renders it (a
`dockyard <line>` on stderr, or the live build display on a terminal) and a server can
stream the same objects. Each event's `line()` is its plain one-line text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dockyard.units import format_size


@dataclass(frozen=True)
class Progress:
    """A step worth telling the user, with nothing more specific to say about it."""

    message: str

    def line(self) -> str:
        return self.message


@dataclass(frozen=True)
class ImageEvent:
    """One image's progress: state is building, built, unchanged or failed."""

    kind: str
    name: str
    state: str
    done: int  # images finished so far (built or unchanged)
    total: int
    seconds: float = 0.0
    base: str = ""
    together: int = 1  # images built by the same compose run (thin services of one family)
    machine: str = ""  # the machine whose own engine builds it (`build: remote`); "": here

    def took(self) -> str:
        with_others = f" (one build of {self.together} images)" if self.together > 1 else ""
        return f"in {self.seconds:.1f} s{with_others}"

    def line(self) -> str:
        head = f"[{self.done}/{self.total}] " if self.state in ("built", "unchanged") else ""
        tail = {"building": f"building on {self.base}", "built": f"built {self.took()}"
                }.get(self.state, self.state)
        on = f" on {self.machine}" if self.machine else ""
        return f"{head}{self.kind} {self.name}{on}: {tail}"


@dataclass(frozen=True)
class Locking:
    """uv is resolving one family's requirements for one platform."""

    family: str
    platform: str  # amd64 or arm64
    python: str  # the image's version, e.g. 3.11.2: markers are judged by it
    requirements: int

    def line(self) -> str:
        head = f"locking family {self.family} for {self.platform}"
        return f"{head}, Python {self.python}: {self.requirements} requirement(s)"


@dataclass(frozen=True)
class Pulling:
    ref: str
    registry: str  # host[:port]

    def line(self) -> str:
        return f"pulling {self.ref} from {self.registry}"


@dataclass(frozen=True)
class Pushing:
    tag: str

    def line(self) -> str:
        return f"pushing {self.tag}"


@dataclass(frozen=True)
class LevelStarted:
    """`up` starts one start level's services."""

    services: tuple[str, ...]

    def line(self) -> str:
        return f"starting {', '.join(self.services)}"


@dataclass(frozen=True)
class LevelHealthy:
    """Every service of a level answered its health probe: (service, seconds it took)."""

    services: tuple[tuple[str, float], ...]

    def line(self) -> str:
        return "healthy: " + ", ".join(f"{name} ({seconds:.1f}s)"
                                       for name, seconds in self.services)


@dataclass(frozen=True)
class HealthWaiting:
    """`up` still waits for these services of a level: (service, seconds before its health
    deadline), `seconds` after the level started. Emitted every second or so: a terminal
    shows it as a live line, a log every few seconds (cli/views.py)."""

    left: tuple[tuple[str, float], ...]
    seconds: float

    def line(self) -> str:
        return "waiting for health: " + ", ".join(
            f"{name} ({max(0, round(left))} s left)" for name, left in self.left)


@dataclass(frozen=True)
class RolledBack:
    """A service's `:prev` image is its `:current` again (image IDs, "" when none)."""

    service: str
    old: str
    new: str

    def line(self) -> str:
        return f"{self.service}: current is now {self.new[7:19]} (was {self.old[7:19] or 'none'})"


@dataclass(frozen=True)
class Shipping:
    """Images go to a machine that lacks them (no registry: `docker save` into its `docker
    load`): `bytes` of their layers are not there, of `full` they weigh; `tagged` more are
    there under another name and only get the name."""

    machine: str
    images: tuple[str, ...]
    bytes: int
    full: int
    tagged: int = 0

    def line(self) -> str:
        what = f"{len(self.images)} image(s)" if len(self.images) != 1 else self.images[0]
        if self.images:
            head = f"shipping {what} to {self.machine}: {format_size(self.bytes)}"
            rest = self.full - self.bytes
            if rest > 0:
                head += (f" of {format_size(self.full)} ({format_size(rest)} of layers "
                         "already there)")
        else:
            head = f"{self.machine} has every image's layers"
        return head + (f"; {self.tagged} tagged from images it has" if self.tagged else "")


@dataclass(frozen=True)
class ShipProgress:
    """Bytes of the archive streamed to a machine so far (about once a second)."""

    machine: str
    sent: int
    total: int  # the archive's size as sent (its files, headers included)
    seconds: float

    def line(self) -> str:
        rate = self.sent / self.seconds if self.seconds > 0 else 0
        return (f"shipping to {self.machine}: {format_size(self.sent)} of "
                f"{format_size(self.total)} ({format_size(int(rate))}/s)")


@dataclass(frozen=True)
class Shipped:
    """A machine loaded what was shipped to it."""

    machine: str
    images: tuple[str, ...]
    sent: int
    seconds: float

    def line(self) -> str:
        return (f"{self.machine} loaded {len(self.images)} image(s): {format_size(self.sent)} "
                f"in {self.seconds:.1f} s")


@dataclass(frozen=True)
class UpgradePlanned:
    """What `dockyard upgrade` will change, in dependency order: (service, why); `at`: when
    (ISO 8601, UTC), as every upgrade event carries it."""

    services: tuple[tuple[str, str], ...]
    at: str

    def line(self) -> str:
        if not self.services:
            return "upgrade: nothing changed"
        return "upgrade: " + "; ".join(f"{name} ({why})" for name, why in self.services)


@dataclass(frozen=True)
class UpgradeStep:
    """One step of an upgrade's journal (ops/upgrade.py) changed status: `step` is its kind
    (recreate, revert, ...), `status` started, done, failed or skipped; `step` "upgrade" with
    `service` "" is the whole run (done, unchanged, rolled back, rollback failed)."""

    step: str
    service: str
    status: str
    at: str
    detail: str = ""

    def line(self) -> str:
        what = f"{self.step} {self.service}" if self.service else self.step
        return f"upgrade: {what}: {self.status}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class BackedUp:
    """One service's data is in a backup run: its kind, bytes, seconds, and the longest
    writes waited (or the service was stopped) for it."""

    service: str
    kind: str
    bytes: int
    seconds: float
    write_pause: float

    def line(self) -> str:
        pause = (f"writes paused at most {self.write_pause:.3f} s" if self.write_pause >= 0
                 else "write pause not measured")
        return (f"backup {self.service} ({self.kind}): {self.bytes / 1e6:.1f} MB in "
                f"{self.seconds:.1f} s, {pause}")


@dataclass(frozen=True)
class Restored:
    """One service runs on fresh volumes holding a backup run's data, healthy."""

    service: str
    kind: str
    run: str
    seconds: float

    def line(self) -> str:
        return (f"restore {self.service} ({self.kind}) from {self.run}: healthy in "
                f"{self.seconds:.1f} s")


Event = (Progress | ImageEvent | Locking | Pulling | Pushing | LevelStarted | LevelHealthy
         | HealthWaiting | RolledBack | UpgradePlanned | UpgradeStep | BackedUp | Restored
         | Shipping | ShipProgress | Shipped)
Sink = Callable[[Event], None]


def ignore(event: Event) -> None:
    """A sink for callers that want no progress."""

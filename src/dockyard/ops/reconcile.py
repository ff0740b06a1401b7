"""`up`'s decision: what each service's container needs, from the plan and a snapshot.

The idea is Compose's convergence (pkg/compose/convergence.go): per service, compare the
container with what the plan wants, in this order, and the first difference decides:

  no container                                    -> create
  compose config hash differs                     -> recreate ("config changed")
  the container's image is not the ref's image    -> recreate ("image changed")
  not running (created, exited, restarting, ...)  -> start
  running, but dockyard's probe fails now         -> wait (up waits for it to turn healthy)
  running, current and healthy                    -> keep

Create and recreate are what `docker compose up --no-start` does for those services (it
recreates on the same two differences); start and wait leave the container as it is; when
every step is keep, `up` changes nothing. Pure: no engine, no clock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from dockyard.ops.observed import ContainerState, ObservedState
from dockyard.plan.model import ServicePlan


class Action(StrEnum):
    CREATE = "create"
    RECREATE = "recreate"
    START = "start"
    WAIT = "wait"
    KEEP = "keep"


class Reason(StrEnum):
    NO_CONTAINER = "no container"
    CONFIG_CHANGED = "config changed"
    IMAGE_CHANGED = "image changed"
    NOT_RUNNING = "not running"
    UNHEALTHY = "unhealthy"
    UP_TO_DATE = "up to date"


@dataclass(frozen=True)
class Step:
    service: str
    level: int
    reason: Reason
    detail: str = ""  # what was seen: hashes, image IDs, state, the probe's answer

    action: ClassVar[Action]

    def line(self, width: int = 0) -> str:
        """One line for `up --dry-run`: level, service, action, reason."""
        why = f"{self.reason}: {self.detail}" if self.detail else str(self.reason)
        return f"{self.level:<5} {self.service:<{width}}  {self.action:<8}  {why}"


@dataclass(frozen=True)
class Create(Step):
    action = Action.CREATE


@dataclass(frozen=True)
class Recreate(Step):
    action = Action.RECREATE


@dataclass(frozen=True)
class Start(Step):
    action = Action.START


@dataclass(frozen=True)
class Wait(Step):
    action = Action.WAIT


@dataclass(frozen=True)
class Keep(Step):
    action = Action.KEEP


def decide(plan_services: Sequence[ServicePlan], observed: ObservedState) -> list[Step]:
    """One step per service, in start order (level, then name)."""
    steps = [_decide(sp, observed) for sp in plan_services]
    return sorted(steps, key=lambda s: (s.level, s.service))


def unchanged(steps: Sequence[Step]) -> bool:
    """Every service is kept: `up` says "nothing changed" and touches nothing."""
    return all(isinstance(s, Keep) for s in steps)


def to_create(steps: Sequence[Step]) -> list[str]:
    """The services `docker compose up --no-start` is given (created or recreated)."""
    return [s.service for s in steps if isinstance(s, (Create, Recreate))]


def to_start(steps: Sequence[Step]) -> set[str]:
    """The services whose container `up` starts (the others already run)."""
    return {s.service for s in steps if isinstance(s, (Create, Recreate, Start))}


def _decide(sp: ServicePlan, observed: ObservedState) -> Step:
    c = observed.container(sp.name)
    name, level = sp.name, sp.level
    if c is None:
        return Create(name, level, Reason.NO_CONTAINER)
    want = observed.config_hashes.get(name, "")
    if c.config_hash != want:
        return Recreate(name, level, Reason.CONFIG_CHANGED,
                        f"hash {_short(c.config_hash)} -> {_short(want)}")
    image = observed.images.get(sp.image, "")
    if c.image_id != image:
        return Recreate(name, level, Reason.IMAGE_CHANGED,
                        f"{sp.image} is {_short(image)}, the container runs "
                        f"{_short(c.image_id)}")
    if c.state != "running":
        return Start(name, level, Reason.NOT_RUNNING, _state(c))
    if c.probe is None or not c.probe.healthy:
        said = c.probe.output.strip().splitlines() if c.probe else []
        return Wait(name, level, Reason.UNHEALTHY, said[0][:80] if said else "not probed")
    return Keep(name, level, Reason.UP_TO_DATE)


def _short(value: str) -> str:
    """An ID or hash as people read them: 12 hex digits ("absent" when there is none)."""
    if not value:
        return "absent"
    return value.removeprefix("sha256:")[:12]


def _state(c: ContainerState) -> str:
    if c.state in ("exited", "dead"):
        return f"{c.state} (exit code {c.exit_code})"
    return c.state

"""What a machine's engine runs, as a snapshot: the input of every decision in ops/.

Gathered by engine/observe.py; plain data, serialisable, so that tests can record one from a
real engine and replay it (tests/fixtures/observed/). Lenient, like every model of engine
data: unknown keys are ignored, so an older or newer snapshot still loads."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Observed(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ProbeState(Observed):
    """dockyard's own health probe, made while observing (running containers only)."""

    healthy: bool
    output: str = ""


class ContainerState(Observed):
    name: str
    id: str
    service: str
    state: str  # the engine's: created, running, restarting, paused, exited, dead
    image_id: str  # the image the container was created from
    config_hash: str = ""  # compose's com.docker.compose.config-hash label
    restart_count: int = 0
    exit_code: int = 0
    probe: ProbeState | None = None


class ObservedState(Observed):
    project: str
    machine: str = ""
    containers: dict[str, tuple[ContainerState, ...]] = {}  # service -> its containers
    images: dict[str, str] = {}  # image ref the plan names -> its ID here ("" absent)
    config_hashes: dict[str, str] = {}  # service -> `docker compose config --hash`

    def container(self, service: str) -> ContainerState | None:
        """The service's container: a running one first, then by name (compose keeps one)."""
        found = sorted(self.containers.get(service, ()),
                       key=lambda c: (c.state != "running", c.name))
        return found[0] if found else None

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ObservedState:
        return cls.model_validate_json(text)

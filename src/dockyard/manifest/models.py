"""The fleet manifest as typed data: what the user wrote (``*Spec``), validated strictly."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from dockyard.names import is_name, manifest_name
from dockyard.platforms import Arch
from dockyard.units import parse_duration, parse_size

Size = Annotated[int, BeforeValidator(parse_size)]
Duration = Annotated[float, BeforeValidator(parse_duration)]


def _words(value: Any) -> Any:
    """A command written as a string becomes a shell command; a list stays exec-form."""
    if isinstance(value, str):
        return ["/bin/sh", "-c", value]
    return value


Command = Annotated[list[str], BeforeValidator(_words)]


def _name(value: str) -> str:
    """Names become container, image and network names: lowercase, like Docker wants them."""
    if not is_name(value):
        hint = manifest_name(value)
        raise ValueError(
            f"name {value!r} must be lowercase letters, digits, '-', '_' or '.', starting with "
            f"a letter or digit" + (f" (try {hint!r})" if hint else "")
        )
    return value


# Checked per name (not per mapping), so an error points at the name itself.
Name = Annotated[str, AfterValidator(_name)]


class Spec(BaseModel):
    """Strict on user input: an unknown key is an error (the loader adds "did you mean")."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class GpuSpec(Spec):
    model: str = ""
    sm: str = Field("", description="compute capability, e.g. 8.9 for an RTX 4090")
    memory: Size = 0
    unified: bool = Field(False, description="shares the machine's RAM (DGX Spark / GB10)")


class MachineSpec(Spec):
    arch: Arch = "amd64"
    cpus: float = Field(0, ge=0)
    memory: Size = 0
    cuda_driver: str = Field("", description="highest CUDA version the driver supports")
    driver: str = ""
    gpus: list[GpuSpec] = []
    profile: dict[str, str] = Field({}, description="hardware profile env for every service here")
    host: str = Field("", description="address other machines reach it at")

    @field_validator("profile", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        return _env_values(value)


class FamilySpec(Spec):
    from_: str = Field(alias="from", min_length=1)
    apt: list[str] = []
    requirements: list[str] = []
    env: dict[str, str] = {}
    torch: str = ""
    cuda: str = ""
    python: str = ""
    platforms: list[Arch] = []
    max_size: Size = Field(0, description="size budget of the image; 0: none")

    @field_validator("env", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        return _env_values(value)


class PortSpec(Spec):
    port: int = Field(ge=1, le=65535)
    host: int | None = Field(None, ge=1, le=65535)
    bind: str = "127.0.0.1"
    publish: bool = True
    protocol: Literal["tcp", "udp"] = "tcp"

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, value: Any) -> Any:
        # 8000, "8000", "18000:8000", "0.0.0.0:18000:8000"
        if isinstance(value, dict | BaseModel):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return {"port": value}
        if isinstance(value, str):
            parts = value.split(":")
            try:
                numbers = [int(p) for p in parts[-2:]]
            except ValueError:
                numbers = []
            if numbers and len(parts) == 1:
                return {"port": numbers[0]}
            if numbers and len(parts) == 2:
                return {"host": numbers[0], "port": numbers[1]}
            if numbers and len(parts) == 3:
                return {"bind": parts[0], "host": numbers[0], "port": numbers[1]}
        raise ValueError(
            f'expected a port such as 8000, "18000:8000", "0.0.0.0:18000:8000" or {{port: 8000}}, '
            f"got {value!r}"
        )

    @property
    def host_port(self) -> int:
        return self.host or self.port


class HealthSpec(Spec):
    http: str = Field("", description="path probed over HTTP, e.g. /health")
    port: int | str = Field("", description="port number or name; default: the first port")
    cmd: Command = []
    interval: Duration = 5.0
    timeout: Duration = 5.0
    retries: int = Field(3, ge=1)
    start_period: Duration = 0.0

    @field_validator("http")
    @classmethod
    def _path(cls, value: str) -> str:
        if value and not value.startswith("/"):
            raise ValueError(
                f"health http path must start with '/', got {value!r} (write {'/' + value!r})"
            )
        return value

    @model_validator(mode="after")
    def _one_probe(self) -> HealthSpec:
        if bool(self.http) == bool(self.cmd):
            raise ValueError("a health check needs exactly one of `http: /path` or `cmd: ...`")
        return self

    @property
    def deadline(self) -> float:
        """Seconds after start before a service that never answered counts as failed."""
        return self.start_period + self.interval * self.retries


class GpuRequest(Spec):
    memory: Size = 0
    count: int = Field(1, ge=0)
    device: int | None = Field(None, ge=0)
    runtime: Literal["generic", "vllm", "torch", "ollama"] = Field(
        "generic", description="how the budget is enforced: vllm flag, torch env, or none")


class AgentSpec(Spec):
    """One process of a container group: its own command, port and health."""

    command: Command
    ports: dict[str, PortSpec] = {}
    health: HealthSpec | None = None
    env: dict[str, str] = {}

    @field_validator("env", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        return _env_values(value)


class DependencySpec(Spec):
    condition: Literal["healthy", "started"] = "healthy"


class ServiceSpec(Spec):
    family: str = ""
    build: str = Field("", description="build context, relative to the manifest")
    dockerfile: str = Field("", description="own Dockerfile, instead of the rendered one")
    image: str = ""
    command: Command = []
    entrypoint: Command = []
    ports: dict[str, PortSpec] = {}
    health: HealthSpec | None = None
    depends_on: dict[str, DependencySpec] = {}
    volumes: list[str] = []
    env: dict[str, str] = {}
    profiles: list[str] = []
    machine: str = ""
    gpu: GpuRequest | None = None
    cpus: float = Field(0, ge=0)
    memory: Size = 0
    user: str = ""
    restart: Literal["no", "always", "on-failure", "unless-stopped"] = "unless-stopped"
    requirements: list[str] = Field([], description="the service's own packages, a thin layer")
    machines: list[str] = Field([], description="run one copy on each of these machines")
    needs: list[Literal["gpu", "cpu"]] = []
    affinity: list[str] = Field([], description="services to run on the same machine")
    anti_affinity: list[str] = Field([], description="services never on the same machine")
    group: str = Field("", description="co-location group: all its services share a machine")
    agents: dict[str, AgentSpec] = Field({}, description="processes run under one supervisor")
    max_size: Size = Field(0, description="size budget of the image; 0: none")
    suppress: dict[str, str] = Field({}, description="finding code -> reason it is accepted")

    @field_validator("depends_on", mode="before")
    @classmethod
    def _dependency_list(cls, value: Any) -> Any:
        if isinstance(value, list):
            for name in value:
                if not isinstance(name, str):  # `- {}` or `- [db]`: not a name (nor hashable)
                    raise ValueError(f"depends_on lists service names; got {name!r}")
            return {name: {} for name in value}
        return value

    @field_validator("env", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        return _env_values(value)

    @model_validator(mode="after")
    def _image_source(self) -> ServiceSpec:
        if self.image and (self.family or self.build):
            raise ValueError(
                "give either `image:` (a stock image) or `family:` + `build:`, not both"
            )
        if not self.image and not self.family:
            raise ValueError("a service needs `image:` (a stock image) or `family:` (+ `build:`)")
        if self.dockerfile and not self.build:
            raise ValueError("`dockerfile:` needs a `build:` context")
        if self.machine and self.machines:
            raise ValueError("give `machine:` (one) or `machines:` (a copy on each), not both")
        _reasons(self.suppress)
        return self


def _reasons(suppress: dict[str, str]) -> None:
    for code, reason in suppress.items():
        if not str(reason).strip():
            raise ValueError(f"suppressing {code} needs a reason: `{code}: why it is accepted`")


class FleetSpec(Spec):
    fleet: Name
    registry: str = ""
    machines: dict[Name, MachineSpec] = Field(min_length=1)
    families: dict[Name, FamilySpec] = {}
    services: dict[Name, ServiceSpec] = Field(min_length=1)
    suppress: dict[str, str] = Field({}, description="finding code -> reason, fleet-wide")

    @model_validator(mode="after")
    def _suppress_reasons(self) -> FleetSpec:
        _reasons(self.suppress)
        return self


def _env_values(value: Any) -> Any:
    """YAML reads `OMP_NUM_THREADS: 16` as a number; env values are strings."""
    if isinstance(value, dict):
        return {
            k: ("true" if v is True else "false" if v is False else "" if v is None else str(v))
            if isinstance(v, bool | int | float | None) else v
            for k, v in value.items()
        }
    return value

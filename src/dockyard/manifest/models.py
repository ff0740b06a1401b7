"""The fleet manifest as typed data: what the user wrote (``*Spec``), validated strictly."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from dockyard.names import is_name, manifest_name
from dockyard.platforms import Arch
from dockyard.units import parse_duration, parse_size

# What users write, as the JSON Schema shows it (`dockyard schema`); `format` names the kind
# for the manifest reference (docs/manifest.md).
# More cores than any machine has: a bound keeps the planner's integer arithmetic finite
# (`cpus: 0.01e308` was infinity once multiplied to milli-CPUs).
MAX_CPUS = 1_000_000
Size = Annotated[int, BeforeValidator(parse_size), WithJsonSchema(
    {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern":
               r"^\s*\d+(\.\d+)?\s*[kKmMgGtT]?i?[bB]?\s*$"}], "format": "size"})]
Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(
    {"anyOf": [{"type": "number", "minimum": 0},
               {"type": "string", "pattern": r"^\s*((\d+(\.\d+)?)(ms|h|m|s))+\s*$"}],
     "format": "duration"})]


def _words(value: Any) -> Any:
    """A command written as a string becomes a shell command; a list stays exec-form."""
    if isinstance(value, str):
        return ["/bin/sh", "-c", value]
    return value


Command = Annotated[list[str], BeforeValidator(_words), WithJsonSchema(
    {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
     "format": "command"})]


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
    """One GPU of a machine, as `dockyard machine detect` prints it."""

    model: str = Field("", description="the GPU's name, e.g. RTX 4090 or GB10")
    sm: str = Field("", description="compute capability, e.g. 8.9 for an RTX 4090")
    memory: Size = Field(0, description="the GPU's memory; 0: unknown")
    unified: bool = Field(False, description="shares the machine's RAM (DGX Spark / GB10)")


class MachineSpec(Spec):
    """A machine the fleet runs on: what it has, so placement and checks can judge it."""

    arch: Arch = Field("amd64", description="CPU architecture")
    cpus: float = Field(0, ge=0, le=MAX_CPUS, description="CPU cores for the fleet; 0: unknown")
    memory: Size = Field(0, description="host memory for the fleet; 0: unknown")
    cuda_driver: str = Field("", description="highest CUDA version the driver supports")
    driver: str = Field("", description="NVIDIA driver version, e.g. 580.95")
    gpus: list[GpuSpec] = Field([], description="the machine's GPUs, in device order")
    profile: dict[str, str] = Field({}, description="hardware profile env for every service here")
    host: str = Field("", description="address other machines reach it at")
    engine: str = Field("local", description="its Docker engine: local, unix://, tcp://, "
                                             "ssh:// or a docker context name")
    build: Literal["local", "remote"] = Field(
        "local", description="where `up` builds the images of its services: local (on the "
        "engine of the host dockyard runs on, then shipped to it when the fleet has no "
        "registry) or remote (on its own engine, for its own architecture: a DGX Spark builds "
        "arm64 natively; the staged context, wheels included, goes with the build)")

    @field_validator("profile", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        return _env_values(value)

    @field_validator("engine")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        problem = engine_problem(value)
        if problem:
            raise ValueError(f"engine {value!r} {problem}; write local, unix:///path/to/"
                             "docker.sock, tcp://host:port, ssh://user@host[:port] or the "
                             "name of a docker context")
        return value


# Docker's own rule for context names (cli/context/store).
_CONTEXT_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.+-]*$")


def engine_problem(value: str) -> str:
    """What is wrong with an engine endpoint as written, or "" (see engine/connection.py)."""
    if "://" not in value:
        return "" if _CONTEXT_RE.match(value) else "is not a URL or a docker context name"
    parts = urlsplit(value)
    if parts.scheme == "unix":
        return "" if parts.path.startswith("/") and not parts.netloc else \
            "needs an absolute socket path (unix:///…)"
    if parts.scheme not in ("tcp", "ssh"):
        return f"has scheme {parts.scheme}://, which dockyard does not speak"
    if parts.path or parts.query or parts.fragment or (parts.username and parts.scheme == "tcp"):
        return "has more than host and port"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        return "has a port that is not a number from 1 to 65535"
    if not parts.hostname:
        return "names no host"
    if parts.scheme == "tcp" and port is None:
        return "needs a port (tcp://host:2375)"
    return ""


class FamilySpec(Spec):
    """A layered base image that dockyard builds; services and other families build on it."""

    from_: str = Field(alias="from", min_length=1,
                       description="a stock image (python:3.11-slim) or another family's name")
    apt: list[str] = Field([], description="Debian packages installed into the image")
    requirements: list[str] = Field(
        [], description="Python requirements, locked with hashes into locks/<family>.<arch>.txt")
    env: dict[str, str] = Field({}, description="image ENV (never secrets: those are runtime env)")
    torch: str = Field("", description="PyTorch version, e.g. 2.5.1")
    cuda: str = Field("", description="CUDA version of the torch wheels, e.g. 12.4; '' for CPU")
    python: str = Field("", description="the image's Python version when the base does not say")
    platforms: list[Arch] = Field(
        [], description="architectures to lock for; default: the machines' that use it")
    max_size: Size = Field(0, description="size budget of the image; 0: none")

    @field_validator("env", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        return _env_values(value)


class PortSpec(Spec):
    """A port a service listens on; also written 8000, "18000:8000" or "0.0.0.0:18000:8000"."""

    port: int = Field(ge=1, le=65535, description="the port inside the container")
    host: int | None = Field(None, ge=1, le=65535,
                             description="the host port; default: the same as `port`")
    bind: str = Field("127.0.0.1", description="host address to publish on (0.0.0.0: all)")
    publish: bool = Field(True, description="publish on the host; false: the fleet's network only")
    protocol: Literal["tcp", "udp"] = Field("tcp", description="tcp or udp")

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
    """How dockyard (and the engine) tell that a service is ready: one of `http` or `cmd`."""

    http: str = Field("", description="path probed over HTTP, e.g. /health")
    port: int | str = Field("", description="port number or name; default: the first port")
    cmd: Command = Field([], description="a command run inside the container; exit 0 = healthy")
    interval: Duration = Field(5.0, description="time between the engine's probes")
    timeout: Duration = Field(5.0, description="how long one probe may take")
    retries: int = Field(3, ge=1, description="failed probes after start_period before unhealthy")
    start_period: Duration = Field(0.0, description="time to start (a model load) before "
                                                    "failures count")

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
    """The GPU memory a service may use, and how that budget is enforced."""

    memory: Size = Field(0, description="GPU memory budget; 0: none given")
    count: Annotated[int, Field(ge=0)] | Literal["all"] = Field(
        1, description="how many GPUs; all: every GPU of its machine (compose's count: all), "
                       "which placement and checks count as one")
    device: int | None = Field(None, ge=0, description="pin to this GPU index of the machine")
    runtime: Literal["generic", "vllm", "torch", "ollama"] = Field(
        "generic", description="how the budget is enforced: vllm flag, torch env, or none")

    @property
    def number(self) -> int:
        """GPUs to place: `count`, and one for `all` (the engine hands it every GPU)."""
        return 1 if self.count == "all" else self.count


class AgentSpec(Spec):
    """One process of a container group: its own command, port and health."""

    command: Command = Field(description="the agent's command")
    ports: dict[str, PortSpec] = Field({}, description="name -> port the agent listens on")
    health: HealthSpec | None = Field(None, description="the agent's own health check")
    env: dict[str, str] = Field({}, description="the agent's env, beside the service's")

    @field_validator("env", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        return _env_values(value)


class DependencySpec(Spec):
    """A dependency's condition; `depends_on` also takes a plain list of names (healthy)."""

    condition: Literal["healthy", "started", "completed"] = Field(
        "healthy", description="start after the dependency is healthy, only started, or has "
                               "run to completion with exit 0 (a one-shot migration)")
    required: bool = Field(True, description="false: start anyway when the dependency does not "
                                             "run (its profile is not asked for)")
    restart: bool = Field(False, description="true: `dockyard upgrade` recreates this service "
                                             "too when it changes the dependency (compose's "
                                             "depends_on.restart)")


class UlimitSpec(Spec):
    """A soft and a hard limit; `ulimits` also takes one number for both."""

    soft: int = Field(description="the limit a process starts with")
    hard: int = Field(description="the most a process may raise it to")


class EnvFileSpec(Spec):
    """A file of KEY=VALUE lines (like .env) that compose reads into the container's env when
    it starts: the values stay in that file, out of the manifest and the rendered files."""

    path: str = Field(min_length=1, description="the file, relative to the manifest")
    required: bool = Field(True, description="false: a missing file is skipped")
    skip: list[str] = Field([], description="variables of the file the container is not "
                                            "given (COMPOSE_PROFILES: it is compose's)")


def _env_files(value: Any) -> Any:
    """`env_file: .env`, a list of paths, or of {path, required, skip}."""
    items = [value] if isinstance(value, str | dict) else value
    if isinstance(items, list):
        return [{"path": item} if isinstance(item, str) else item for item in items]
    return value


class NetworkSpec(Spec):
    """A network of the fleet's services (on each machine); `default` is the one services
    without `networks:` join."""

    name: str = Field("", description="the engine's name for it; default: <fleet>_<network>")
    internal: bool = Field(False, description="no route out of it: its services reach only "
                                              "each other")
    driver: str = Field("", description="the network driver; default: the engine's (bridge)")
    external: bool = Field(False, description="made outside the fleet: joined, never created "
                                              "or removed")


class ServiceNetworkSpec(Spec):
    """How a service joins one network."""

    aliases: list[str] = Field([], description="more names it is reached by on this network "
                                               "(beside its service name)")


def _network_list(value: Any) -> Any:
    """`networks: [a, b]`, or a mapping whose entries may be empty (`a:`)."""
    if isinstance(value, list):
        for name in value:
            if not isinstance(name, str):
                raise ValueError(f"networks lists network names; got {name!r}")
        return {name: {} for name in value}
    if isinstance(value, dict):
        return {k: {} if v is None else v for k, v in value.items()}
    return value


def _one_or_many(value: Any) -> Any:
    """A single string where a list is meant (`tmpfs: /run`)."""
    return [value] if isinstance(value, str) else value


# The tag each build gives the images it made (engine/build.py dated_tag): UTC time, commit.
DATED_TAG = re.compile(r"^\d{8}-\d{6}-[0-9a-z]+$")


class MigrationSpec(Spec):
    """How a stateful service's data moves to an image that cannot read it as it is (or
    that the old image cannot read back): declared, so the change is a decision."""

    from_: str = Field(alias="from", min_length=1,
                       description="the version its data is moved from, as deployed: a "
                                   "Postgres major (15) or a Qdrant minor (1.7)")
    how: str = Field(min_length=1, description="how the data moves, e.g. pg_upgrade in a "
                                               "one-shot service, or a dump restored")


class BackupSpec(Spec):
    """How `dockyard backup` saves a stateful service's data, and what a rollback does with
    it; the kind is detected from the image or family when not given."""

    kind: Literal["postgres", "redis", "volume"] | None = Field(
        None, description="postgres: pg_dump -Fc per database + pg_dumpall --globals-only; "
                          "redis: BGSAVE, then the RDB; volume: a tar of each named volume; "
                          "default: detected (a postgres:* image or a family with apt "
                          "postgresql*, a redis:* image or apt redis-server, else volume for a "
                          "service with named volumes)")
    restore_on_rollback: bool = Field(
        False, description="a failed upgrade restores the pre-upgrade backup before the old "
                           "version starts (for data the new version migrated one way)")
    quiesce: Literal["none", "stop"] = Field(
        "none", description="stop: the service is stopped around a volume tar (a store with no "
                            "dump tool); none: it keeps serving")
    volumes: list[str] = Field(
        [], description="the named volumes backed up (and restored); default: all of the "
                        "service's named volumes")
    user: str = Field("", description="postgres: the database superuser the dumps run as "
                                      "(over the local socket, inside the container); "
                                      "default: postgres")
    databases: list[str] = Field(
        [], description="postgres: the databases dumped; default: every one but the templates")
    password_env: str = Field(
        "", description="redis: the container's env variable holding the password (read "
                        "inside the container, never by dockyard); '' for none")
    enabled: bool = Field(True, description="false: never backed up, not even before an "
                                            "upgrade")


class ServiceSpec(Spec):
    """One service: a stock `image:`, or an image dockyard builds on a `family:`."""

    family: str = Field("", description="the family its image is built on")
    build: str = Field("", description="build context, relative to the manifest")
    dockerfile: str = Field("", description="own Dockerfile, instead of the rendered one")
    image: str = Field("", description="a stock image to run, e.g. redis:7.4.1")
    image_tag: str = Field(
        "", description="run this dated tag of its built image (`dockyard images --history` "
                        "lists the kept ones, e.g. 20261201-093015-1a2b3c4d5e6f) instead of "
                        ":current; '' (e.g. an unset ${FORCE_IMAGE_TAG:-}): no pin")
    command: Command = Field([], description="the command (a string runs under /bin/sh -c)")
    entrypoint: Command = Field([], description="replaces the image's entrypoint")
    ports: dict[str, PortSpec] = Field({}, description="name -> port it listens on")
    health: HealthSpec | None = Field(None, description="when the service counts as ready")
    depends_on: dict[str, DependencySpec] = Field(
        {}, description="services to start first: a list of names, or name -> {condition}")
    volumes: list[str] = Field([], description="compose-style mounts: name:/path or ./dir:/path")
    backup: BackupSpec | None = Field(
        None, description="how its data is backed up; default: detected for a Postgres or "
                          "Redis image or family and for a service with named volumes")
    env: dict[str, str] = Field({}, description="runtime env; ${VAR} is read from .env")
    env_file: Annotated[list[EnvFileSpec], BeforeValidator(_env_files)] = Field(
        [], description="env files compose reads when the container starts; `env:` wins over "
                        "them")
    profiles: list[str] = Field([], description="runs only when one of these is asked for")
    machine: str = Field("", description="the machine it runs on; default: placed by dockyard")
    gpu: GpuRequest | None = Field(None, description="its GPU memory budget")
    cpus: float = Field(0, ge=0, le=MAX_CPUS, description="CPU limit; 0: none")
    memory: Size = Field(0, description="host memory limit; 0: none")
    user: str = Field("", description="user to run as; default: the image's (10001 for families)")
    restart: Literal["no", "always", "on-failure", "unless-stopped"] = Field(
        "unless-stopped", description="the engine's restart policy")
    upgrade: Literal["stop-first", "start-first"] = Field(
        "stop-first", description="how an upgrade replaces its container: stop-first stops "
                                  "the old one, then starts the new; start-first starts the "
                                  "new one beside the old, and the fleet's ingress (which "
                                  "then owns its host ports) moves traffic once it is healthy")
    requirements: list[str] = Field([], description="the service's own packages, a thin layer")
    machines: list[str] = Field([], description="run one copy on each of these machines")
    needs: list[Literal["gpu", "cpu"]] = Field([], description="what its machine must have")
    affinity: list[str] = Field([], description="services to run on the same machine")
    anti_affinity: list[str] = Field([], description="services never on the same machine")
    group: str = Field("", description="co-location group: all its services share a machine")
    agents: dict[str, AgentSpec] = Field({}, description="processes run under one supervisor")
    max_size: Size = Field(0, description="size budget of the image; 0: none")
    suppress: dict[str, str] = Field({}, description="finding code -> reason it is accepted")
    migration: MigrationSpec | None = Field(
        None, description="the data migration an image change needs (a Postgres major "
                          "version, a Qdrant jump past the next minor): `check` allows that "
                          "change only with it and `backup: {restore_on_rollback: true}`")
    build_args: dict[str, str] = Field({}, description="build arguments for its own Dockerfile "
                                                       "(ARG values)")
    networks: Annotated[dict[str, ServiceNetworkSpec], BeforeValidator(_network_list)] = Field(
        {}, description="the fleet networks it joins, a list of names or name -> {aliases}; "
                        "default: the `default` network")
    hostname: str = Field("", description="the container's host name; default: its ID")
    working_dir: str = Field("", description="the command's working directory; default: the "
                                             "image's")
    extra_hosts: dict[str, str] = Field(
        {}, description="host name -> address added to /etc/hosts; host-gateway: the host")
    init: bool | None = Field(None, description="run an init process (tini) as PID 1; default: "
                                                "the engine's")
    tty: bool = Field(False, description="give the container a terminal")
    stdin_open: bool = Field(False, description="keep its standard input open")
    ulimits: dict[str, int | UlimitSpec] = Field(
        {}, description="resource limits, e.g. nofile: {soft: 65535, hard: 65535}, or one number")
    shm_size: Size = Field(0, description="size of /dev/shm; 0: the engine's (64MiB)")
    tmpfs: Annotated[list[str], BeforeValidator(_one_or_many)] = Field(
        [], description="in-memory mounts: /path or /path:size=64m")
    devices: list[str] = Field([], description="host devices, /dev/dri or /dev/kfd:/dev/kfd:rwm")
    cap_add: list[str] = Field([], description="kernel capabilities to add, e.g. SYS_ADMIN")
    cap_drop: list[str] = Field([], description="kernel capabilities to drop, e.g. ALL")
    security_opt: list[str] = Field([], description="security options, e.g. "
                                                    "seccomp:unconfined")
    privileged: bool = Field(False, description="every capability and device of the host")
    image_health: bool = Field(True, description="false: switch the image's own HEALTHCHECK "
                                                 "off (compose's healthcheck: disable)")

    @field_validator("depends_on", mode="before")
    @classmethod
    def _dependency_list(cls, value: Any) -> Any:
        if isinstance(value, list):
            for name in value:
                if not isinstance(name, str):  # `- {}` or `- [db]`: not a name (nor hashable)
                    raise ValueError(f"depends_on lists service names; got {name!r}")
            return {name: {} for name in value}
        return value

    @field_validator("env", "build_args", "extra_hosts", mode="before")
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
        if self.build_args and not self.dockerfile:
            raise ValueError("`build_args:` are for an own Dockerfile: give `dockerfile:` too")
        if self.image_tag and not self.family:
            raise ValueError("`image_tag:` pins a dated tag of an image dockyard builds: give "
                             "`family:`, or put the tag in `image:`")
        if self.image_tag and not DATED_TAG.match(self.image_tag):
            raise ValueError(f"image_tag {self.image_tag!r} is not a dated tag such as "
                             "20261201-093015-1a2b3c4d5e6f (`dockyard images --history` "
                             "lists them)")
        if self.health and not self.image_health:
            raise ValueError("`image_health: false` switches health checks off: remove it, or "
                             "`health:`")
        _reasons(self.suppress)
        return self


def _reasons(suppress: dict[str, str]) -> None:
    for code, reason in suppress.items():
        if not str(reason).strip():
            raise ValueError(f"suppressing {code} needs a reason: `{code}: why it is accepted`")


class FleetBackupSpec(Spec):
    """Where `dockyard backup` writes its runs, and how many it keeps."""

    target: str = Field("", description="the folder backup runs are written under (relative "
                                        "to the manifest); default: backups/ in the state "
                                        "folder")
    keep: int = Field(10, ge=1, description="how many runs of each machine are kept; its "
                                            "older ones are removed after a run succeeds")


class FleetSpec(Spec):
    """The whole manifest, `fleet.yaml`."""

    fleet: Name = Field(description="the fleet's name: prefix of its images and compose projects")
    registry: str = Field("", description="registry to push to and pull from, e.g. "
                                          "localhost:5000; '' for none")
    backup: FleetBackupSpec = Field(FleetBackupSpec(), description="where backups go and how "
                                                                   "many are kept")
    machines: dict[Name, MachineSpec] = Field(min_length=1, description="name -> machine")
    families: dict[Name, FamilySpec] = Field({}, description="name -> image family")
    image_history: int = Field(
        5, ge=1, le=1000, description="dated tags kept per built image (`dockyard images "
                                      "--history`); a build removes older ones that no "
                                      "container uses")
    services: dict[Name, ServiceSpec] = Field(min_length=1, description="name -> service")
    networks: dict[Name, NetworkSpec] = Field(
        {}, description="name -> network; services join `default` unless they list others")
    suppress: dict[str, str] = Field({}, description="finding code -> reason, fleet-wide")

    @field_validator("networks", mode="before")
    @classmethod
    def _empty_networks(cls, value: Any) -> Any:
        return {k: {} if v is None else v for k, v in value.items()} \
            if isinstance(value, dict) else value

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

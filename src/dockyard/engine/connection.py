"""One connection per machine: the Docker engine a machine's containers run on.

`machines.<m>.engine` names it: `local` (the default: DOCKER_HOST, else the default socket),
`unix:///path`, `tcp://host:port` (plain; TLS goes through a docker context),
`ssh://[user@]host[:port]` (one multiplexed OpenSSH connection per machine, the remote
engine's socket forwarded to a local one: engine/ssh.py; ~/.ssh/config applies) or the name
of a docker context. An `Engine` holds the SDK client for it (made on first use, cached on
the Engine, not in the process) and builds the `docker` / `docker compose` command lines
that reach the same engine, so SDK and CLI calls never go to two different places."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from dockyard.engine.run import INSTALL_HINT
from dockyard.errors import EngineUnavailable, Location

if TYPE_CHECKING:
    from dockyard.engine.ssh import Tunnel
    from dockyard.manifest.load import Fleet
    from dockyard.manifest.models import ServiceSpec

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
LOCAL = "local"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
SDK_TIMEOUT = 120


@dataclass(frozen=True)
class Endpoint:
    """Where an engine answers, and who said so (for the message when it does not)."""

    address: str  # "" (local: the SDK's and CLI's own defaults), a URL, or a context name
    source: str  # "machines.<m>.engine", "DOCKER_HOST" or "the default socket"
    where: Location | None = None  # the manifest's `engine:` value, when it named one
    machine: str = ""  # the machine whose engine it is ("" for the host's own)

    @property
    def context(self) -> str:
        """The docker context name, or "" when the address is a URL (or local)."""
        return "" if not self.address or "://" in self.address else self.address

    @property
    def url(self) -> str:
        """The URL the engine answers at, as far as is known without reading a context."""
        if self.context:
            return ""
        return self.address or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def local_endpoint() -> Endpoint:
    if os.environ.get("DOCKER_HOST"):
        return Endpoint("", "DOCKER_HOST")
    return Endpoint("", "the default socket")


def endpoint_of(fleet: Fleet, machine: str) -> Endpoint:
    """The endpoint `machines.<machine>.engine` names (validated by the manifest's model)."""
    written = fleet.spec.machines[machine].engine
    if written == LOCAL:
        return local_endpoint()
    return Endpoint(written, f"machines.{machine}.engine",
                    fleet.where("machines", machine, "engine"), machine)


def is_local_url(url: str) -> bool:
    """The engine runs on this host: a socket, or TCP to a loopback address. Only then can
    dockyard reach a container's own IP address."""
    parts = urlsplit(url)
    if parts.scheme in ("unix", "npipe"):
        return True
    return parts.scheme in ("tcp", "http", "https") and (parts.hostname or "") in _LOOPBACK


class Engine:
    """The Docker engine of one machine: SDK client, CLI argv, and probes that suit it."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._client: Any = None
        self._host = ""  # the URL the client connected to (a context resolved)
        self._lock = threading.Lock()
        self._tunnel: Tunnel | None = None
        self._tunnel_lock = threading.Lock()
        self._failure: EngineUnavailable | None = None  # why the last connection failed

    @classmethod
    def for_machine(cls, fleet: Fleet, machine: str) -> Engine:
        return cls(endpoint_of(fleet, machine))

    @classmethod
    def local(cls) -> Engine:
        """The engine this host's Docker settings name (DOCKER_HOST, else the socket)."""
        return cls(local_endpoint())

    def __repr__(self) -> str:
        return f"Engine({self.describe()})"

    def describe(self) -> str:
        """The endpoint and where it came from: `tcp://h:2375 (machines.box.engine)`."""
        e = self.endpoint
        shown = f"docker context {e.context}" if e.context else e.url
        return f"{shown} ({e.source})"

    # -- SSH ----------------------------------------------------------------------------------

    @property
    def is_ssh(self) -> bool:
        return self.endpoint.address.startswith("ssh://")

    @property
    def tunnel(self) -> Tunnel:
        """The machine's one SSH connection (ssh:// endpoints only); opened on first use."""
        from dockyard.engine.ssh import Tunnel

        with self._tunnel_lock:
            if self._tunnel is None:
                e = self.endpoint
                self._tunnel = Tunnel(e.address, e.machine or e.address, e.where)
            return self._tunnel

    def reach(self) -> str:
        """The URL this host's clients use for the engine: the forwarded local socket for
        ssh:// (opening the machine's connection; MachineUnreachable when it cannot), else
        the endpoint's own address."""
        return self.tunnel.open() if self.is_ssh else self.endpoint.address

    # -- the SDK client ---------------------------------------------------------------------

    def sdk_kwargs(self) -> dict[str, Any]:
        """How docker.DockerClient is made for this endpoint (pure for URLs; a context is
        read from the docker CLI's configuration). Empty for local: `from_env`."""
        e = self.endpoint
        if not e.address:
            return {}
        if e.context:
            from docker.context import ContextAPI

            ctx = ContextAPI.get_context(e.context)
            if ctx is None:
                raise EngineUnavailable(
                    f"there is no docker context named {e.context!r} ({e.source})",
                    where=e.where, fix="`docker context ls` lists them; create it with "
                                       "`docker context create`, or correct the manifest")
            host = str(ctx.Host or DEFAULT_SOCKET)
            return {"base_url": host, "tls": ctx.TLSConfig or False,
                    "use_ssh_client": host.startswith("ssh://")}
        if self.is_ssh:
            return {"base_url": self.reach()}
        return {"base_url": e.address, "use_ssh_client": False}

    @property
    def client(self) -> Any:
        """A connected docker.DockerClient; EngineUnavailable (one sentence) when none answers."""
        with self._lock:
            if self._client is None:
                try:
                    self._client, self._host = self._connect()
                except EngineUnavailable as exc:
                    self._failure = exc
                    raise
            return self._client

    def _connect(self) -> tuple[Any, str]:
        import docker as sdk  # heavy: imported only by commands that talk to the engine
        from docker.errors import DockerException

        kwargs = self.sdk_kwargs()
        try:
            if kwargs:
                client = sdk.DockerClient(timeout=SDK_TIMEOUT, **kwargs)
            else:
                client = sdk.from_env(timeout=SDK_TIMEOUT)
            client.ping()
        except DockerException:
            raise self.unavailable() from None
        return client, str(kwargs.get("base_url") or self.endpoint.url)

    def unavailable(self) -> EngineUnavailable:
        e = self.endpoint
        if self._failure is not None and e.address:  # the machine's own reason (SSH's)
            return self._failure
        if not e.address and e.source == "DOCKER_HOST" and e.url != DEFAULT_SOCKET:
            fix = ("start the engine DOCKER_HOST names, or correct DOCKER_HOST (unset, it is "
                   f"{DEFAULT_SOCKET})")
        elif not e.address:
            fix = INSTALL_HINT
        elif e.address.startswith("ssh://"):
            fix = (f"check that `ssh {urlsplit(e.address).netloc} docker info` works from "
                   f"here, or correct {e.source}")
        else:
            fix = f"start that engine or make it reachable from here, or correct {e.source}"
        return EngineUnavailable(f"no Docker engine answers at {self.describe()}", where=e.where,
                                 fix=fix)

    def answers(self) -> bool:
        try:
            self.client  # noqa: B018 - connecting is the question
        except EngineUnavailable:
            return False
        return True

    def alive(self, timeout: float = 2.0) -> str:
        """Ask the engine now (not the cached client): "" when it answers, else why not, in
        a few words. For a machine dying in the middle of a command."""
        if self.is_ssh:
            from dockyard.engine.ssh import ping

            if self._tunnel is None or not self._tunnel.socket.exists():
                return "" if self.answers() else str(self.unavailable().message)
            said = ping(self._tunnel.socket, timeout)
            return "" if said == "ok" else (
                "no answer over SSH" if said == "timeout" else f"its engine: {said}")
        from docker.errors import DockerException

        try:
            self.client.api.ping()
        except (DockerException, OSError) as exc:
            return str(exc)[:120]
        except EngineUnavailable as exc:
            return exc.message
        return ""

    @property
    def is_local(self) -> bool:
        """The engine runs on this host (so container IPs are reachable from here)."""
        if self.endpoint.context:
            self.client  # noqa: B018 - a context is resolved when the client connects
            return is_local_url(self._host)
        return is_local_url(self.endpoint.url)

    # -- the CLI ----------------------------------------------------------------------------

    def docker_argv(self, *args: str) -> list[str]:
        """`docker` with the flags that reach this engine, then `args`."""
        e = self.endpoint
        if e.context:
            return ["docker", "--context", e.context, *args]
        if e.address:
            return ["docker", "--host", self.reach(), *args]
        return ["docker", *args]  # local: DOCKER_HOST / the CLI's current context, as always

    def compose_argv(self, project: str | None, files: Sequence[object] = (),
                     profiles: Sequence[str] = ()) -> list[str]:
        """`docker compose` for one project on this engine (no `-p` when the file names it)."""
        argv = self.docker_argv("compose")
        if project:
            argv += ["-p", project]
        for f in files:
            argv += ["-f", str(f)]
        for profile in profiles:
            argv += ["--profile", profile]
        return argv

    # -- facts and probes ----------------------------------------------------------------------

    def image_id(self, ref: str) -> str:
        """The ID `ref` names on this engine, "" when it is not here."""
        from docker.errors import ImageNotFound

        try:
            return str(self.client.images.get(ref).id)
        except ImageNotFound:
            return ""

    def probe(self, container: Any, svc: ServiceSpec) -> tuple[bool, str]:
        """One health probe of `container`. HTTP goes to the container's IP when the engine is
        on this host; elsewhere that address is not reachable, so the check runs inside the
        container (exec), as the engine's own healthcheck does."""
        from dockyard.engine.probe import probe_inside, probe_once

        if svc.health is not None and svc.health.http and not self.is_local:
            return probe_inside(container, svc)
        return probe_once(container, svc)

"""compose.<machine>.yaml: the services placed on one machine, ready for `docker compose`."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from dockyard.errors import ManifestError
from dockyard.manifest.interpolate import variables
from dockyard.manifest.load import Fleet, Path_
from dockyard.manifest.models import DependencySpec, ServiceSpec
from dockyard.names import is_secret_name
from dockyard.plan.family import has_python
from dockyard.plan.health import health_test
from dockyard.plan.model import Plan, ServicePlan
from dockyard.plan.routes import Routes, is_address, routes
from dockyard.render import yamltext
from dockyard.render.budget import budget_command, budget_env, needs_command
from dockyard.render.dockerfile import _is_bind
from dockyard.render.supervisor import MOUNT, agents_of, group_health, supervisor_command
from dockyard.units import format_duration

LABEL = "dev.dockyard"
MiB = 1024 * 1024


def _memory(n: int) -> str:
    return f"{n // MiB}m" if n % MiB == 0 else str(n)


class Reference(str):
    """Text already in compose's words: a secret's `${VAR}` kept, other `$`s doubled."""


# Fields whose text the compose file carries: a secret used in one of them and not written
# there as a reference would be written as its value, so rendering refuses it instead.
_CARRIED = {"env", "command", "entrypoint", "health", "volumes", "user", "hostname",
            "working_dir", "extra_hosts", "tmpfs", "devices", "cap_add", "cap_drop",
            "security_opt", "build_args", "agents", "image"}


class _References:
    """Where a service's values came from a secret variable (Fleet.references), the compose
    file writes the reference and compose fills it in when it starts the container."""

    def __init__(self, fleet: Fleet, service: str) -> None:
        self.fleet, self.service = fleet, service
        self.refs = fleet.references
        self.used: set[Path_] = set()

    def text(self, at: Path_, rendered: str, value: str) -> str:
        """`rendered` (which starts with the manifest's `value` at `at`) with that part as
        written; a budget flag dockyard appended stays after it."""
        ref = self.refs.get(at)
        if ref is None or not rendered.startswith(value):
            return rendered
        self.used.add(at)
        return Reference(ref + rendered[len(value):].replace("$", "$$"))

    def words(self, at: Path_, rendered: list[str], written: list[str],
              offset: int = 0) -> list[str]:
        """A command's words; written as one string it is `/bin/sh -c <string>`."""
        out = list(rendered)
        if at in self.refs and len(written) == 3 and written[:2] == ["/bin/sh", "-c"]:
            if len(out) > offset + 2:
                out[offset + 2] = self.text(at, out[offset + 2], written[2])
            return out
        for i, word in enumerate(written):
            if offset + i < len(out):
                out[offset + i] = self.text((*at, i), out[offset + i], word)
        return out

    def check(self) -> None:
        """Refuse a secret that a carried field uses where no reference could be written."""
        for at, ref in self.refs.items():
            if at[:2] != ("services", self.service) or len(at) < 3 or at in self.used \
                    or at[2] not in _CARRIED:
                continue
            secret = next((n for n, _ in variables(ref) if is_secret_name(n)), "")
            if secret:
                dotted = ".".join(map(str, at))
                raise ManifestError(
                    f"{dotted} uses the secret {secret}, which the compose file can only "
                    "name in env, a command, an entrypoint, a health cmd or a volume "
                    "written as it is", where=self.fleet.where(*at),
                    fix=f"pass {secret} in the service's `env:` and read it from there")


def compose_service(fleet: Fleet, plan: Plan, sp: ServicePlan, machine: str = "",
                    root: str = "", route: Routes | None = None,
                    unresolved: bool = False) -> dict[str, Any]:
    """The compose entry of the copy of `sp` on `machine` (default: its first machine).

    `root` is the fleet's folder as seen from where the compose file will be written (e.g.
    "../.." for .dockyard/render); relative bind sources, written relative to fleet.yaml, are
    rebased onto it, since compose reads them relative to its file. "": as written.
    A value that came from a secret variable is written as the reference (`${DB_PASSWORD}`,
    also inside a URL), never as the value: compose reads it from its environment.
    `route`: the fleet's cross-machine routes (plan/routes.py), which add extra_hosts to a
    caller and published ports to a callee; None: none. A route to a machine whose `host:`
    name was not resolved is refused, or left out with `unresolved` (a build's render)."""
    svc = sp.spec
    machine = machine or sp.machine
    refs = _References(fleet, sp.name)
    at: Path_ = ("services", sp.name)
    out: dict[str, Any] = {"image": sp.image}
    if svc.dockerfile:
        # An own Dockerfile builds without dockyard: the file stands on its own
        # (`docker compose up` builds it instead of pulling <fleet>/<service> from a registry).
        build: dict[str, Any] = {"context": rebase_path(svc.build, root),
                                 "dockerfile": svc.dockerfile}
        if svc.build_args:
            build["args"] = {k: refs.text((*at, "build_args", k), v, v)
                             for k, v in sorted(svc.build_args.items())}
        out["build"] = build
    python = sp.built and has_python(plan.families, svc.family)
    if svc.agents:
        # A container group: the rendered supervisor runs every agent (see supervisor.py).
        out["entrypoint"] = supervisor_command()
        out["init"] = True
    elif svc.entrypoint:
        out["entrypoint"] = refs.words((*at, "entrypoint"), list(svc.entrypoint), svc.entrypoint)
    # The command is a runtime setting: it is written here even when a built image also
    # carries it as CMD, so that an edited `command:` changes the container's config (and is
    # what runs) rather than the image's old CMD. An own Dockerfile has its own CMD, and an
    # `entrypoint:` set here makes compose drop the image's CMD. A vLLM budget is a flag on
    # the command; one that uses a secret is left out of the image's CMD (see uses_secret).
    if svc.command and not svc.agents:
        out["command"] = refs.words((*at, "command"),
                                    budget_command(fleet, sp, machine, list(svc.command)),
                                    svc.command)
    elif not svc.command and not sp.built and needs_command(svc):
        out["command"] = budget_command(fleet, sp, machine, [])  # args to the image's server
    if svc.user:
        out["user"] = refs.text((*at, "user"), svc.user, svc.user)
    out.update(_container(svc, refs))
    if route is not None:
        _route(fleet, route, sp.name, machine, out, unresolved)
    profile = fleet.spec.machines[machine].profile
    env = {**profile, **svc.env}
    env.update(budget_env(fleet, sp, machine, env))
    if env or svc.env_file:
        environment: dict[str, str | None] = {}
        for key, value in sorted(env.items()):
            if key in svc.env and value == svc.env[key]:
                value = refs.text((*at, "env", key), value, value)
            elif key in profile and value == profile[key]:
                value = refs.text(("machines", machine, "profile", key), value, value)
            environment[key] = value
        # An env file's variable the container must not get: null unsets it (compose has no
        # "all but" for env_file; `environment:` wins over it).
        for skipped in sorted({k for f in svc.env_file for k in f.skip} - set(env)):
            environment[skipped] = None
        if environment:
            out["environment"] = dict(sorted(environment.items()))
    if svc.env_file:
        out["env_file"] = [rebase_path(f.path, root) if f.required
                           else {"path": rebase_path(f.path, root), "required": False}
                           for f in svc.env_file]
    agent_ports = [p for a in agents_of(svc).values() for _, p in sorted(a.ports.items())]
    published = [p for _, p in sp.published] + [p for p in agent_ports if p.publish]
    ports = [f"{p.bind}:{p.host_port}:{p.port}" + ("/udp" if p.protocol == "udp" else "")
             for p in published]
    if route is not None:  # what a caller on another machine dials, on this machine's address
        ports += [p.compose() for p in route.published(sp.name, machine)
                  if is_address(p.address)]  # a name: refused on the caller's side
    if ports:
        out["ports"] = ports
    hidden = sorted(f"{p.port}/udp" if p.protocol == "udp" else str(p.port)
                    for p in [*svc.ports.values(), *agent_ports] if not p.publish)
    if hidden:
        out["expose"] = hidden
    volumes = [refs.text((*at, "volumes", i), v, v) if rebase(v, root) == v else rebase(v, root)
               for i, v in enumerate(svc.volumes)]
    if svc.agents:
        volumes.append(f"./{supervisor_path(sp.name)}:{MOUNT}:ro")
    if volumes:
        out["volumes"] = volumes
    deps = {name: _dependency(d, fleet.spec.services[name])
            for name, d in sorted(svc.depends_on.items())
            if machine in plan.services[name].machines}
    if deps:
        out["depends_on"] = deps
    networks = _service_networks(svc)
    if networks:
        out["networks"] = networks
    health = (group_health(svc, has_python=python) if svc.agents
              else (health_test(svc, has_python=python), svc.health) if svc.health
              else None)
    if not svc.image_health:
        out["healthcheck"] = {"disable": True}
    elif health:
        test, h = health
        if svc.health and h is svc.health and svc.health.cmd and test[:1] == ["CMD"]:
            test = refs.words((*at, "health", "cmd"), test, svc.health.cmd, offset=1)
        out["healthcheck"] = {
            "test": test,
            "interval": format_duration(h.interval),
            "timeout": format_duration(h.timeout),
            "retries": h.retries,
        }
        if h.start_period:
            out["healthcheck"]["start_period"] = format_duration(h.start_period)
    limits: dict[str, Any] = {}
    if svc.cpus:
        limits["cpus"] = f"{svc.cpus:g}"
    if svc.memory:
        limits["memory"] = _memory(svc.memory)
    resources: dict[str, Any] = {"limits": limits} if limits else {}
    gpus = sp.gpus_on(machine)
    if gpus and svc.gpu and svc.gpu.count == "all":
        resources["reservations"] = {"devices": [{
            "driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]}
    elif gpus:
        resources["reservations"] = {"devices": [{
            "driver": "nvidia", "device_ids": [str(g) for g in gpus], "capabilities": ["gpu"]}]}
    if resources:
        out["deploy"] = {"resources": resources}
    if svc.profiles:
        out["profiles"] = list(svc.profiles)
    out["restart"] = svc.restart
    out["labels"] = {f"{LABEL}.fleet": plan.fleet, f"{LABEL}.service": sp.name,
                     f"{LABEL}.level": str(sp.level)}
    refs.check()
    return out


def _route(fleet: Fleet, route: Routes, name: str, machine: str, out: dict[str, Any],
           unresolved: bool = False) -> None:
    """The caller's extra_hosts for the services it reaches on other machines (its own
    `extra_hosts:` for a name wins)."""
    hosts = route.extra_hosts(name, machine)
    if not hosts:
        return
    written = {entry.split("=", 1)[0] for entry in out.get("extra_hosts", [])}
    entries = list(out.get("extra_hosts", []))
    for callee, address in sorted(hosts.items()):
        if callee in written or (unresolved and not is_address(address)):
            continue
        if not is_address(address):
            there = route_machine(route, name, machine, callee)
            raise ManifestError(
                f"service {name} on {machine} reaches {callee} on machine {there}, whose "
                f"host {address} did not resolve to an address (extra_hosts takes addresses "
                "only)", where=fleet.where("machines", there, "host"),
                fix=f"write machine {there}'s IPv4 address as machines.{there}.host, or make "
                    f"{address} resolve here")
        entries.append(f"{callee}={address}")
    if entries:
        out["extra_hosts"] = sorted(entries)


def route_machine(route: Routes, caller: str, machine: str, callee: str) -> str:
    return next(r.callee_machine for r in route.reaches
                if (r.caller, r.machine, r.callee) == (caller, machine, callee))


def uses_secret(fleet: Fleet, service: str, key: str) -> bool:
    """Whether the service's `key` (command, health) names a secret variable: then it is
    the compose file's to say (as a reference), not baked into the image (CMD, HEALTHCHECK)."""
    return any(at[:3] == ("services", service, key) for at in fleet.references)


_DEPENDENCY = {"healthy": "service_healthy", "started": "service_started",
               "completed": "service_completed_successfully"}


def _dependency(dep: DependencySpec, target: ServiceSpec) -> dict[str, Any]:
    """A `depends_on` entry; waiting for health needs a health check on the other side."""
    condition = "started" if dep.condition == "healthy" and not _has_health(target) \
        else dep.condition
    out: dict[str, Any] = {"condition": _DEPENDENCY[condition]}
    if not dep.required:
        out["required"] = False
    if dep.restart:
        out["restart"] = True
    return out


def _container(svc: ServiceSpec, refs: _References) -> dict[str, Any]:
    """The container's own settings, in compose's words, for those the manifest sets."""
    out: dict[str, Any] = {}
    at: Path_ = ("services", refs.service)
    for key in ("hostname", "working_dir", "cap_add", "cap_drop", "security_opt", "devices",
                "tmpfs"):
        value = getattr(svc, key)
        if value:
            out[key] = refs.words((*at, key), list(value), value) if isinstance(value, list) \
                else refs.text((*at, key), value, value)
    for key in ("privileged", "tty", "stdin_open"):
        if getattr(svc, key):
            out[key] = True
    if svc.init is not None and not svc.agents:
        out["init"] = svc.init
    if svc.extra_hosts:
        # host=address: compose's own form, which also holds an IPv6 address (::1).
        out["extra_hosts"] = [f"{host}={addr}" for host, addr in sorted(svc.extra_hosts.items())]
    if svc.ulimits:
        out["ulimits"] = {name: limit if isinstance(limit, int)
                          else {"soft": limit.soft, "hard": limit.hard}
                          for name, limit in sorted(svc.ulimits.items())}
    if svc.shm_size:
        out["shm_size"] = str(svc.shm_size)
    return out


def _service_networks(svc: ServiceSpec) -> list[str] | dict[str, Any]:
    """The service's networks: a list of names, or name -> aliases where it has some."""
    if not any(n.aliases for n in svc.networks.values()):
        return list(svc.networks)
    return {name: {"aliases": list(n.aliases)} if n.aliases else None
            for name, n in svc.networks.items()}


def _networks(fleet: Fleet, services: list[ServicePlan]) -> dict[str, Any]:
    """The fleet's networks that services on this machine join, in compose's words."""
    used = {name for sp in services for name in (sp.spec.networks or ["default"])}
    out: dict[str, Any] = {}
    for name, net in sorted(fleet.spec.networks.items()):
        if name not in used:
            continue
        spec: dict[str, Any] = {}
        if net.name:
            spec["name"] = net.name
        if net.driver:
            spec["driver"] = net.driver
        if net.internal:
            spec["internal"] = True
        if net.external:
            spec["external"] = True
        out[name] = spec or None
    return out


def rebase_path(path: str, root: str) -> str:
    """A path relative to fleet.yaml (`./app`) as seen from a compose file whose way back to
    the fleet is `root`."""
    if not root or path.startswith(("/", "~", "$")):
        return path
    moved = posixpath.normpath(posixpath.join(root, path))
    return moved if moved.startswith(('.', '/')) else './' + moved


def rebase(volume: str, root: str) -> str:
    """`./data:/data` as seen from a compose file whose way back to the fleet is `root`."""
    source, sep, rest = volume.partition(":")
    if not root or not sep or not (source == "." or source.startswith(("./", "../"))):
        return volume
    moved = posixpath.normpath(posixpath.join(root, source))
    return f"{moved if moved.startswith(('.', '/')) else './' + moved}:{rest}"


def _escape(value: Any) -> Any:
    """`$` as `$$`: the manifest is already interpolated, compose must not do it again (but
    a Reference is compose's to fill in)."""
    if isinstance(value, Reference):
        return str(value)
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape(v) for v in value]
    return value


def supervisor_path(name: str) -> str:
    """Where a container group's supervisor is rendered, beside the compose files."""
    return f"services/{name}.supervisor.py"


def _has_health(svc: ServiceSpec) -> bool:
    return bool(svc.health or any(a.health for a in svc.agents.values()))


def compose_project(fleet: Fleet, plan: Plan, machine: str, root: str = "",
                    addresses: Mapping[str, str] | None = None,
                    unresolved: bool = False) -> dict[str, Any]:
    """`addresses`: machine -> the address its `host:` name resolved to (engine/addresses.py),
    for the cross-machine routes; a `host:` written as an address needs none. `unresolved`:
    leave out the routes to a name not resolved, instead of refusing them."""
    route = routes(fleet, plan, addresses)
    services = {sp.name: _escape(compose_service(fleet, plan, sp, machine, root, route,
                                                 unresolved))
                for sp in plan.on(machine)}
    volumes = sorted({v.split(":")[0] for sp in plan.on(machine) for v in sp.spec.volumes
                      if ":" in v and not _is_bind(v)})
    doc: dict[str, Any] = {"name": plan.fleet, "services": services}
    networks = _networks(fleet, plan.on(machine))
    if networks:
        doc["networks"] = networks
    if volumes:
        doc["volumes"] = {v: {"labels": {f"{LABEL}.fleet": plan.fleet}} for v in volumes}
    return doc


def render_compose(fleet: Fleet, plan: Plan, machine: str, root: str = "",
                   addresses: Mapping[str, str] | None = None, unresolved: bool = False) -> str:
    header = (f"# compose file for machine {machine} of fleet {plan.fleet}: rendered by "
              "dockyard; edit fleet.yaml, not this file.\n")
    text = dump_yaml(compose_project(fleet, plan, machine, root, addresses, unresolved))
    if next(variables(text), None):  # only references are left unescaped
        header += ("# ${VAR}s name secrets, never written here: `dockyard up` gives compose "
                   "their values\n# (by hand: docker compose --env-file <fleet folder>/.env "
                   "-f this file).\n")
    return header + text


def dump_yaml(doc: Any) -> str:
    """Block-style YAML (see yamltext: ruamel's pure-Python emitter was the hot spot)."""
    return yamltext.dump(doc)

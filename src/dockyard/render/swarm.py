"""A Docker Swarm stack for a fleet: `swarm/<fleet>/stack.yaml`, for `docker stack deploy`.

Pure, like the compose renderer: the same manifest gives the same bytes. The stack is a compose
file in Swarm's dialect (version 3.8, which `docker stack deploy` reads since Docker 19.03; the
tests run `docker stack config` on every golden one). What the manifest asks for and Swarm
cannot do is returned in `SwarmRender.lost` and written at the top of stack.yaml; what each node
needs before a deploy (labels, daemon.json for GPUs, the firewall) is `SwarmRender.checklist`,
printed by `dockyard render --target swarm` and kept in nodes.sh, which labels the nodes.

How the manifest maps, and why:

- **Placement.** Every service is pinned by `node.labels.dockyard.machine == <machine>` (nodes.sh
  labels each node with its machine's name) and `node.platform.arch`: the plan already chose the
  machine, Swarm only has to find it. `machines:` copies are one service per machine
  (`<service>-<machine>`), not `mode: global`: each copy carries its machine's profile env, GPU
  budget settings and constraint, and a global service has one spec for every node it matches.
  Each copy keeps the manifest name as a network alias, so `http://node-exporter:9100` resolves,
  but to any copy (lost: compose reaches the one on the caller's machine).
- **Names across machines** need nothing: every service is on one attachable overlay network of
  the fleet (`<fleet>_fleet`), where `http://embedder:8001` resolves from any node. The name
  resolves to the task's own address (`endpoint_mode: dnsrr`, as compose's names resolve to the
  container's), not to a virtual IP: a VIP needs the kernel's IPVS (ip_vs), which some kernels
  lack (VMs such as the Firecracker one the tests run on: the name resolves and every
  connection fails with "no route to host"), and a pinned one-replica service gains nothing
  from it. A service with a routing-mesh port keeps the VIP: Swarm refuses dnsrr with one.
  Named volumes keep their names (`<fleet>_<volume>`, as compose names them) and are local to
  the node, which is always the same one.
- **Resources.** `cpus`/`memory` become limits and the same reservations, so the scheduler refuses
  a node that cannot hold what dockyard's placement counted. GPUs become `generic_resources`
  (`NVIDIA-GPU`, a count; docker/cli#3051): Swarm has no `devices:` reservation. Each GPU node
  advertises its GPUs in daemon.json and NVIDIA's runtime reads the ones Swarm chose from
  `DOCKER_RESOURCE_NVIDIA-GPU` (swarmkit names it `DOCKER_RESOURCE_` + the kind, upper-cased:
  the often-quoted `DOCKER_RESOURCE_GPU` only matches a kind named `GPU`). That runtime must be
  the node's default, so a service without GPUs on a GPU node gets `NVIDIA_VISIBLE_DEVICES=void`:
  CUDA images set `all`, which would hand it every GPU.
- **Updates.** `update_config` rolls one task at a time and rolls back on failure, watching each
  new task for the health deadline (start_period + interval x retries). `start-first` (the new
  task is healthy before the old one stops) only where a second task can surely run beside the
  first: a health check, no named volume (two writers), no GPU, host-mode port or reservation
  (the surge task would wait forever for them); `stop-first` otherwise. `rollback_config` is the
  same and pauses if the rollback fails too.
- **Ports.** A port bound to all addresses goes through the ingress routing mesh (it answers on
  every node), unless another service or copy publishes the same port (the mesh gives a port to
  one service): then host mode, on its machine only. A port bound to one address (127.0.0.1 by
  default) is host mode: neither mode can bind an address, so it opens on every address of its
  machine (lost, and said).
- **Health** is rendered as for compose, **restart** becomes `restart_policy` (no -> none,
  on-failure, always/unless-stopped -> any). **Container groups** keep `init: true` (Swarm has
  it); their supervisor travels as a Swarm config named by its content hash (configs are
  immutable: a changed script is a new config).
- **Secrets.** A variable is a secret when the manifest requires it (`${VAR:?}`) or its name says
  so (DY702's PASSWORD, TOKEN, ...), as for Kubernetes. A secret stays a `${VAR}` reference in the
  file, and `docker stack deploy` interpolates it from its environment; every other value is
  written interpolated, with `$` escaped, as compose gets it. Not Docker secrets: those are files
  in /run/secrets, and the manifest's services read env (`DATABASE_URL` embeds the password), so
  each image would need a wrapper that reads files into env. The price: the value is in the
  service spec (Swarm's raft log is encrypted; `docker service inspect` shows it, as `docker
  inspect` does for compose). A secret the stack cannot interpolate (in a container group's
  commands, which live in the supervisor config) is refused.
- **Start order** (`depends_on`) is lost: Swarm starts every service of a stack at once and has
  no dependency; the order is kept as labels (`dev.dockyard.level`, `dev.dockyard.depends-on`) and
  `SwarmRender.levels`, so `dockyard up --target swarm` can deploy level by level (the stack with
  the services of levels 0..n, n growing: a deploy without --prune leaves the earlier ones).
  **Profiles** have no equivalent: a service of a profile not asked for has `replicas: 0`.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import ManifestError
from dockyard.manifest.interpolate import _BRACED, _TOKEN, secret_variables
from dockyard.manifest.interpolate import variables as _references
from dockyard.manifest.load import Fleet, Path_
from dockyard.manifest.models import HealthSpec, PortSpec, ServiceSpec
from dockyard.plan.budget import gpu_choices_lost
from dockyard.plan.family import has_python
from dockyard.plan.health import health_test
from dockyard.plan.ingress import without_ingress
from dockyard.plan.model import Plan, ServicePlan
from dockyard.plan.place import WILDCARD
from dockyard.plan.routes import is_address
from dockyard.platforms import PLATFORMS
from dockyard.render import yamltext
from dockyard.render.budget import budget_command, budget_env, needs_command
from dockyard.render.compose import LABEL, _memory, rebase, rebase_path, supervisor_path
from dockyard.render.dockerfile import _is_bind
from dockyard.render.kube import split
from dockyard.render.supervisor import (
    MOUNT,
    agents_of,
    group_health,
    render_supervisor,
    supervisor_command,
)
from dockyard.render.unkept import bind_mounts, refuse_unread, unrendered
from dockyard.units import format_duration

FOLDER = "swarm"  # `dockyard render --target swarm -o DIR` writes DIR/swarm/<fleet>/
STACK_VERSION = "3.8"  # generic_resources 3.5, init and rollback_config 3.7: Docker >= 19.03
MACHINE_LABEL = "dockyard.machine"  # the node label nodes.sh sets
NETWORK = "fleet"  # the overlay network: <fleet>_fleet, apart from compose's <fleet>_default
GPU_KIND = "NVIDIA-GPU"
GPU_ENV = "DOCKER_RESOURCE_NVIDIA-GPU"  # swarmkit: "DOCKER_RESOURCE_" + upper(kind)
CONFIG_MODE = 0o444
# swarmkit's rules (manager/controlapi): service names are DNS labels, 63 characters with the
# stack's prefix; configs 64.
_SERVICE_NAME = re.compile(r"^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$")
_RENDERED = {"image", "command", "entrypoint", "env", "volumes", "user", "health", "agents",
             "extra_hosts"}


@dataclass(frozen=True)
class SwarmRender:
    """The files of one fleet's folder (relative paths), what Swarm cannot keep, what each node
    needs first, and the Swarm services of each start level (for a level-by-level deploy)."""

    folder: str
    files: dict[str, str]
    lost: list[str] = field(default_factory=list)
    checklist: list[str] = field(default_factory=list)
    levels: list[list[str]] = field(default_factory=list)


def render_swarm(fleet: Fleet, plan: Plan, profiles: Iterable[str] = (), root: str = ""
                 ) -> SwarmRender:
    """The fleet's stack; services of `profiles` run, other profiles' are scaled to zero.

    `root` is the fleet's folder seen from the stack's folder: relative bind sources are rebased
    onto it, as for compose ("": as written)."""
    # Swarm replaces tasks start-first itself (`order: start-first`): no ingress of ours.
    return _Renderer(fleet, without_ingress(plan), frozenset(profiles), root).render()


def _esc(text: str) -> str:
    """A value as it is: `$` escaped, so `docker stack deploy` interpolates nothing in it."""
    return text.replace("$", "$$")


def _stack_reads(raw: str) -> bool:
    """Whether `docker stack deploy` interpolates `raw` as dockyard did: it knows ${V}, $V,
    ${V:-d}, ${V-d}, ${V:?m}, ${V?m} and $$, but neither ${V:+alt} nor a nested ${...}."""
    for match in _TOKEN.finditer(raw):
        _, braced, _, broken = match.groups()
        if broken:
            return False
        if braced is not None:
            parsed = _BRACED.match(braced)
            if not parsed or (parsed.group(2) or "").endswith("+") or "$" in (
                    parsed.group(3) or ""):
                return False
    return True


def _env_name(machine: str) -> str:
    return "NODE_" + re.sub(r"[^A-Z0-9]", "_", machine.upper())


class _Renderer:
    def __init__(self, fleet: Fleet, plan: Plan, profiles: frozenset[str], root: str) -> None:
        self.fleet, self.plan, self.profiles, self.root = fleet, plan, profiles, root
        self.stack = plan.fleet
        self.secrets = secret_variables(fleet.raw.values())
        self.required = {name for text in fleet.raw.values()
                         for name, op in _references(text) if op.endswith("?")}
        self.used_secrets: set[str] = set()
        self.handled: set[Path_] = set()
        self.lost: list[str] = []
        self.keys = self._keys()
        # A port published on all addresses by two copies cannot take the routing mesh.
        self.mesh = Counter((p.host_port, p.protocol) for sp in plan.services.values()
                            for p in _published(sp.spec) if p.bind in WILDCARD
                            for _ in sp.machines)

    # names -----------------------------------------------------------------------------------

    def _keys(self) -> dict[tuple[str, str], str]:
        """(service, machine) -> the stack's service key (Swarm's name is <fleet>_<key>)."""
        keys: dict[tuple[str, str], str] = {}
        seen: dict[str, str] = {}
        for name in sorted(self.plan.services):
            sp = self.plan.services[name]
            for machine in sp.machines:
                raw = f"{name}-{machine}" if len(sp.machines) > 1 else name
                key = re.sub(r"[-_]*\.+[-_.]*", "-", raw)
                full = f"{self.stack}_{key}"
                if not _SERVICE_NAME.match(full) or len(full) > 63:
                    raise ManifestError(
                        f"service {name} on {machine} becomes the Swarm service `{full}`, and "
                        "Swarm's service names are DNS labels of at most 63 characters",
                        where=self.fleet.where("services", name),
                        fix="shorten the fleet's, the service's or the machine's name")
                if key in seen:
                    raise ManifestError(
                        f"services {seen[key]} and {raw} both become `{key}` in the Swarm stack",
                        where=self.fleet.where("services", name), fix="rename one of them")
                seen[key] = raw
                keys[(name, machine)] = key
        return keys

    def runs(self, svc: ServiceSpec) -> bool:
        return not svc.profiles or bool(self.profiles.intersection(svc.profiles))

    def _lose(self, at: Path_, service: str, text: str) -> None:
        self.lost.append(f"{self.fleet.where(*at)}: service {service}: {text}")

    # values, and the secrets in them -----------------------------------------------------------

    def _reads_secret(self, at: Path_) -> bool:
        raw = self.fleet.raw.get(at)
        return raw is not None and any(n in self.secrets and not op.endswith("+")
                                       for n, op in _references(raw))

    def _reference(self, name: str) -> str:
        self.used_secrets.add(name)
        if name in self.required:
            return f"${{{name}:?set {name} in the environment of docker stack deploy}}"
        return f"${{{name}}}"

    def text(self, at: Path_, value: str, service: str) -> str:
        """`value` as the stack writes it: a secret as a reference, the rest as it is."""
        if not self._reads_secret(at):
            return _esc(value)
        self.handled.add(at)
        raw = self.fleet.raw[at]
        refs = list(_references(raw))
        if not any(n in self.secrets and op.endswith("-") for n, op in refs):
            pieces = split(raw, value, self.secrets)
            if pieces is not None:
                return "".join(self._reference(t) if secret else _esc(t) for secret, t in pieces)
        # No unique split (or a secret's default): the text as written, which stack deploy reads
        # with the same environment, when its syntax is one it knows.
        if not _stack_reads(raw):
            raise ManifestError(
                f"service {service}: `{'.'.join(map(str, at[2:]))}` mixes a secret with other "
                "variables in a way docker stack deploy cannot interpolate (it knows ${V}, "
                "${V:-d} and ${V:?m}, not ${V:+alt} or nested ones)", where=self.fleet.where(*at),
                fix="put the secret in a variable of its own and use that")
        self.used_secrets.update(n for n, _ in refs if n in self.secrets)
        others = sorted({n for n, _ in refs if n not in self.secrets})
        if others:
            self._lose(at, service, f"`{'.'.join(map(str, at[2:]))}` is written as in the "
                       f"manifest (its secret cannot be told apart from {', '.join(others)}): "
                       "docker stack deploy needs those in its environment too")
        return raw

    def words(self, at: Path_, words: list[str], service: str) -> list[str]:
        """A command's words; written as one string, it is /bin/sh -c <string>."""
        if at in self.fleet.raw and len(words) == 3 and words[:2] == ["/bin/sh", "-c"]:
            return [*words[:2], self.text(at, words[2], service)]
        return [self.text((*at, i), w, service) for i, w in enumerate(words)]

    def _refuse(self, at: Path_, service: str, what: str) -> ManifestError:
        return ManifestError(
            f"service {service}: {what} uses a secret, which the Swarm stack can only pass "
            "through its own file (env, a command, a health check), not the supervisor's config",
            where=self.fleet.where(*at), fix="read the secret from the service's `env:` instead")

    # one copy of a service -------------------------------------------------------------------

    def service(self, sp: ServicePlan, machine: str) -> dict[str, Any]:
        svc, name = sp.spec, sp.name
        at: Path_ = ("services", name)
        key = self.keys[(name, machine)]
        python = sp.built and has_python(self.plan.families, svc.family)
        out: dict[str, Any] = {}
        out["image"] = self.text((*at, "image"), sp.image, name) if not sp.built else sp.image
        command_secret = any(self._reads_secret(p) for p in self.fleet.raw
                             if p[:3] == (*at, "command"))
        if svc.agents:
            for p in self.fleet.raw:
                if (p[:3] in ((*at, "command"), (*at, "entrypoint"), (*at, "health"))
                        or (p[:3] == (*at, "agents") and len(p) > 4 and p[4] != "env")
                        ) and self._reads_secret(p):
                    raise self._refuse(p, name, "a container group's command or health")
            out["entrypoint"] = supervisor_command()
            out["init"] = True
        elif svc.entrypoint:
            out["entrypoint"] = self.words((*at, "entrypoint"), list(svc.entrypoint), name)
        # As compose_service: a built image carries the command as CMD, unless an own Dockerfile,
        # an entrypoint or a vLLM budget needs it here; a secret in it is read at deploy time.
        if svc.command and not svc.agents and (not sp.built or svc.dockerfile or svc.entrypoint
                                               or needs_command(svc) or command_secret):
            words = self.words((*at, "command"), list(svc.command), name)
            out["command"] = budget_command(self.fleet, sp, machine, words)
        elif not svc.command and not sp.built and needs_command(svc):
            out["command"] = budget_command(self.fleet, sp, machine, [])
        if svc.user:
            out["user"] = self.text((*at, "user"), svc.user, name)
        env = self._env(sp, machine)
        if env:
            out["environment"] = env
        if svc.env_file:  # docker stack deploy reads them where it runs: values stay there
            out["env_file"] = [rebase_path(f.path, self.root) for f in svc.env_file]
        hosts = [f"{host}:{self.text((*at, 'extra_hosts', host), addr, name)}"
                 for host, addr in sorted(svc.extra_hosts.items()) if is_address(addr)]
        if hosts:  # Swarm's form is host:address (it splits at the first colon)
            out["extra_hosts"] = hosts
        ports = self._ports(sp, machine)
        if ports:
            out["ports"] = ports
        volumes = [rebase(self.text((*at, "volumes", i), v, name), self.root)
                   for i, v in enumerate(svc.volumes)]
        if volumes:
            out["volumes"] = volumes
        if svc.agents:
            out["configs"] = [{"source": self.config_key(sp), "target": MOUNT,
                               "mode": CONFIG_MODE}]
        health = self._health(sp, python)
        if health:
            out["healthcheck"] = health[0]
        out["labels"] = self._labels(sp, machine)
        out["networks"] = [NETWORK] if key == name else {NETWORK: {"aliases": [name]}}
        out["deploy"] = self._deploy(sp, machine, health[1] if health else None,
                                     any(p["mode"] == "host" for p in ports))
        if not any(p["mode"] == "ingress" for p in ports):
            out["deploy"]["endpoint_mode"] = "dnsrr"
        return out

    def _env(self, sp: ServicePlan, machine: str) -> dict[str, str]:
        fleet, svc, name = self.fleet, sp.spec, sp.name
        values: dict[str, tuple[Path_, str]] = {
            k: (("machines", machine, "profile", k), v)
            for k, v in fleet.spec.machines[machine].profile.items()}
        values.update({k: (("services", name, "env", k), v) for k, v in svc.env.items()})
        for agent_name, agent in sorted(svc.agents.items()):
            for k, v in sorted(agent.env.items()):
                agent_at: Path_ = ("services", name, "agents", agent_name, "env", k)
                if self._reads_secret(agent_at):
                    values[k] = (agent_at, v)
                    self._lose(agent_at, name, f"agent {agent_name}'s {k} reads a secret: it is "
                               "set on the container, so every agent of the group sees it")
        plain = {k: v for k, (_, v) in values.items()}
        env = {k: self.text(at, v, name) for k, (at, v) in values.items()}
        env.update({k: _esc(v) for k, v in budget_env(fleet, sp, machine, plain).items()})
        if (fleet.spec.machines[machine].gpus and not sp.gpus_on(machine)
                and "NVIDIA_VISIBLE_DEVICES" not in env):
            env["NVIDIA_VISIBLE_DEVICES"] = "void"  # nvidia is the node's default runtime
        return dict(sorted(env.items()))

    def _ports(self, sp: ServicePlan, machine: str) -> list[dict[str, Any]]:
        out = []
        for p in _published(sp.spec):
            host = p.bind not in WILDCARD or self.mesh[(p.host_port, p.protocol)] > 1
            out.append({"target": p.port, "published": p.host_port, "protocol": p.protocol,
                        "mode": "host" if host else "ingress"})
        return out

    def _health(self, sp: ServicePlan, python: bool
                ) -> tuple[dict[str, Any], HealthSpec] | None:
        svc = sp.spec
        test: list[str]
        if svc.agents:
            group = group_health(svc, has_python=python)
            if group is None:
                return None
            test, h = [_esc(t) for t in group[0]], group[1]
        elif svc.health:
            h = svc.health
            if h.cmd:
                test = ["CMD", *self.words(("services", sp.name, "health", "cmd"), list(h.cmd),
                                           sp.name)]
            else:
                test = [_esc(t) for t in health_test(svc, has_python=python)]
        else:
            return None
        check: dict[str, Any] = {"test": test, "interval": format_duration(h.interval),
                                 "timeout": format_duration(h.timeout), "retries": h.retries}
        if h.start_period:
            check["start_period"] = format_duration(h.start_period)
        return check, h

    def _labels(self, sp: ServicePlan, machine: str) -> dict[str, str]:
        return {f"{LABEL}.fleet": self.plan.fleet, f"{LABEL}.service": sp.name,
                f"{LABEL}.machine": machine, f"{LABEL}.level": str(sp.level)}

    def _deploy(self, sp: ServicePlan, machine: str, health: HealthSpec | None,
                host_ports: bool) -> dict[str, Any]:
        svc = sp.spec
        arch = PLATFORMS[self.fleet.spec.machines[machine].arch].machine
        deploy: dict[str, Any] = {
            "mode": "replicated", "replicas": 1 if self.runs(svc) else 0,
            "placement": {"constraints": [f"node.labels.{MACHINE_LABEL} == {machine}",
                                          f"node.platform.arch == {arch}"]}}
        budget: dict[str, Any] = {}
        if svc.cpus:
            budget["cpus"] = f"{svc.cpus:g}"
        if svc.memory:
            budget["memory"] = _memory(svc.memory)
        gpus = len(sp.gpus_on(machine))
        resources: dict[str, Any] = {}
        if budget:
            resources["limits"] = dict(budget)
        reservations = dict(budget)  # what dockyard's placement counted, held by the scheduler
        if gpus:
            reservations["generic_resources"] = [
                {"discrete_resource_spec": {"kind": GPU_KIND, "value": gpus}}]
        if reservations:
            resources["reservations"] = reservations
        if resources:
            deploy["resources"] = resources
        deploy["restart_policy"] = {"condition": {"no": "none", "on-failure": "on-failure"}.get(
            svc.restart, "any")}
        stateful = any(":" in v and not _is_bind(v) for v in svc.volumes)
        surge = bool(health) and not (stateful or gpus or host_ports or budget)
        order = "start-first" if surge else "stop-first"
        update: dict[str, Any] = {"parallelism": 1, "order": order, "failure_action": "rollback"}
        rollback: dict[str, Any] = {"parallelism": 1, "order": order, "failure_action": "pause"}
        if health:
            update["monitor"] = rollback["monitor"] = format_duration(health.deadline)
        deploy["update_config"] = update
        deploy["rollback_config"] = rollback
        labels = self._labels(sp, machine)
        if svc.depends_on:
            labels[f"{LABEL}.depends-on"] = ",".join(
                f"{dep}:{d.condition}" for dep, d in sorted(svc.depends_on.items()))
        deploy["labels"] = labels
        return deploy

    # container groups --------------------------------------------------------------------------

    def supervisor(self, sp: ServicePlan) -> str:
        """The supervisor script, without the env that reads a secret (the container has it)."""
        agents = {}
        for agent_name, agent in sp.spec.agents.items():
            env = {k: v for k, v in agent.env.items() if not self._reads_secret(
                ("services", sp.name, "agents", agent_name, "env", k))}
            agents[agent_name] = agent.model_copy(update={"env": env})
        return render_supervisor(sp.name, sp.spec.model_copy(update={"agents": agents}))

    def config_key(self, sp: ServicePlan) -> str:
        digest = hashlib.sha256(self.supervisor(sp).encode()).hexdigest()[:8]
        base = self.keys[(sp.name, sp.machines[0])] if len(sp.machines) == 1 else sp.name
        room = 64 - len(f"{self.stack}_-supervisor-{digest}")
        return f"{base[:room].rstrip('-_.')}-supervisor-{digest}"

    # the whole folder --------------------------------------------------------------------------

    def render(self) -> SwarmRender:
        services: dict[str, Any] = {}
        configs: dict[str, Any] = {}
        files: dict[str, str] = {}
        for name in sorted(self.plan.services):
            sp = self.plan.services[name]
            for machine in sp.machines:
                services[self.keys[(name, machine)]] = self.service(sp, machine)
            if sp.spec.agents:
                path = supervisor_path(name)
                files[path] = self.supervisor(sp)
                configs[self.config_key(sp)] = {"file": f"./{path}",
                                                "labels": {f"{LABEL}.fleet": self.plan.fleet}}
            self._losses(sp)
        self._leftover_secrets()
        volumes = sorted({v.split(":")[0] for sp in self.plan.services.values()
                          for v in sp.spec.volumes if ":" in v and not _is_bind(v)})
        doc: dict[str, Any] = {"version": STACK_VERSION, "services": services,
                               "networks": {NETWORK: {
                                   "driver": "overlay", "attachable": True,
                                   "labels": {f"{LABEL}.fleet": self.plan.fleet}}}}
        if volumes:
            doc["volumes"] = {v: {"labels": {f"{LABEL}.fleet": self.plan.fleet}}
                              for v in volumes}
        if configs:
            doc["configs"] = configs
        header = (f"# fleet {self.plan.fleet}: rendered by dockyard from "
                  f"{self.fleet.path.name}; edit that, not this file.\n")
        checklist = self._checklist()
        files["stack.yaml"] = header + self._notes() + yamltext.dump(doc)
        files["nodes.sh"] = self._nodes(header, checklist)
        levels = [[self.keys[(n, m)] for n in level for m in self.plan.services[n].machines]
                  for level in self.plan.levels]
        return SwarmRender(f"{FOLDER}/{self.stack}", dict(sorted(files.items())), self.lost,
                           checklist, levels)

    def _notes(self) -> str:
        notes = ["# A Docker Swarm stack. Label the nodes first (nodes.sh, on a manager), then:"]
        if self.used_secrets:
            notes.append("#   export " + " ".join(sorted(self.used_secrets))
                         + "   # read at deploy time, never written here")
        resolve = "" if self.fleet.spec.registry or not any(
            sp.built for sp in self.plan.services.values()) else " --resolve-image never"
        notes.append(f"#   docker stack deploy -c stack.yaml{resolve} {self.stack}")
        notes.append("# Swarm starts every service at once; `dockyard up --target swarm` deploys "
                     "it level by level.")
        if self.lost:
            notes.append("# What Swarm does not keep of the manifest:")
            notes += [f"#   {line}" for line in self.lost]
        return "\n".join(notes) + "\n"

    def _nodes(self, header: str, checklist: list[str]) -> str:
        machines = self._machines()
        lines = ["#!/bin/sh", header.rstrip("\n"),
                 "# Run on a swarm manager: labels each node with its machine, which the stack's",
                 f"# placement constraints select (node.labels.{MACHINE_LABEL}). A node is named "
                 "like its", "# machine unless NODE_<MACHINE> names it (see `docker node ls`).",
                 "#", "# Before deploying:"]
        lines += [f"#   {line}" if line else "#" for line in checklist]
        lines.append("set -eu")
        lines += [f'docker node update --label-add {MACHINE_LABEL}={m} "${{{_env_name(m)}:-{m}}}"'
                  for m in machines]
        return "\n".join(lines) + "\n"

    def _machines(self) -> list[str]:
        """Every machine of the fleet: a node of the swarm, whether or not a service is there."""
        return sorted(self.fleet.spec.machines)

    def _address(self, machine: str) -> str:
        host = self.fleet.spec.machines[machine].host
        if not host or self._reads_secret(("machines", machine, "host")):
            return f"<address of {machine}>"
        return host

    def _checklist(self) -> list[str]:
        machines = self._machines()
        spec = self.fleet.spec
        first = machines[0]
        out = [f"swarm: `docker swarm init --advertise-addr {self._address(first)}` on {first}, "
               "`docker swarm join` on the others"
               if len(machines) > 1 else f"swarm: `docker swarm init` on {first}"]
        for m in sorted(spec.machines):
            gpus = spec.machines[m].gpus
            if not gpus:
                continue
            resources = ", ".join(f'"{GPU_KIND}={i}"' for i in range(len(gpus)))
            out += [
                f"{m} has GPUs: in its /etc/docker/daemon.json",
                '  "default-runtime": "nvidia",',
                '  "runtimes": {"nvidia": {"path": "nvidia-container-runtime", '
                '"runtimeArgs": []}},',
                f'  "node-generic-resources": [{resources}]',
                "  (GPU indexes, or the UUIDs `nvidia-smi -L` prints, which survive a reordering);",
                f'  in its /etc/nvidia-container-runtime/config.toml: swarm-resource = "{GPU_ENV}"',
                "  then restart docker: a GPU task's `nvidia-smi -L` lists only the GPUs it "
                "reserved",
            ]
        if len(machines) > 1:
            out.append("firewall: open between the fleet's machines TCP 2377 (to managers), "
                       "TCP+UDP 7946 (gossip) and UDP 4789 (overlay VXLAN), e.g. with ufw:")
            for m in machines:
                for peer in machines:
                    if peer != m:
                        address = self._address(peer)
                        out.append(f"  on {m}: ufw allow proto tcp from {address} to any port "
                                   "2377,7946")
                        out.append(f"  on {m}: ufw allow proto udp from {address} to any port "
                                   "7946,4789")
        built = sorted(sp.image for sp in self.plan.services.values() if sp.built)
        if built and not spec.registry:
            out.append("images: the fleet has no registry, so each built image must be on its "
                       "node before the deploy: " + ", ".join(built))
        return out

    def _losses(self, sp: ServicePlan) -> None:
        svc, name = sp.spec, sp.name
        if svc.depends_on:
            deps = ", ".join(f"{d} ({c.condition})" for d, c in sorted(svc.depends_on.items()))
            self._lose(("services", name, "depends_on"), name,
                       f"depends_on {deps} is not kept: Swarm starts every service at once; "
                       "`dockyard up --target swarm` deploys level by level, waiting for each "
                       "to run (started) or be healthy, but plain `docker stack deploy` does not")
        if not self.runs(svc):
            scale = " ".join(f"{self.stack}_{self.keys[(name, m)]}=1" for m in sp.machines)
            self._lose(("services", name, "profiles"), name,
                       f"profiles ({', '.join(svc.profiles)}) have no Swarm equivalent: rendered "
                       f"with replicas: 0; start it with `docker service scale {scale}`, or "
                       f"render with --profile {svc.profiles[0]}")
        if len(sp.machines) > 1 and (svc.ports or any(a.ports for a in svc.agents.values())):
            self._lose(("services", name, "machines"), name,
                       f"`{name}` reaches any of its copies ({', '.join(sp.machines)}), not the "
                       f"one on the caller's machine: call {name}-<machine> for a given one")
        bound = [(where, p) for where, p in _published_at(name, svc) if p.bind not in WILDCARD]
        if bound:
            ports = ", ".join(f"{p.bind}:{p.host_port}" for _, p in bound)
            self._lose(bound[0][0], name,
                       f"{'ports' if len(bound) > 1 else 'port'} {ports} "
                       f"{'are' if len(bound) > 1 else 'is'} published on every address of "
                       f"{', '.join(sp.machines)} (host mode): Swarm cannot bind an address; "
                       "firewall it, or set `publish: false` if only the fleet calls it")
        for i, env_file in enumerate(svc.env_file):
            if not env_file.required or env_file.skip:
                self._lose(("services", name, "env_file", i), name,
                           f"env_file {env_file.path}: docker stack deploy reads it whole and "
                           "requires it (no `required: false`, no `skip:`)")
        for at, source in bind_mounts(name, svc):
            self._lose(at, name, f"bind mount `{source}` must exist on {', '.join(sp.machines)} "
                       "at the path docker stack deploy resolves it to: Swarm does not create it")
        for at, lost in gpu_choices_lost(self.fleet, sp, "Swarm (it counts GPUs, not names)"):
            self._lose(at, name, lost)
        for host, address in sorted(svc.extra_hosts.items()):
            if not is_address(address):
                self._lose(("services", name, "extra_hosts", host), name,
                           f"extra_hosts {host}={address}: a Swarm service takes written "
                           "addresses only (host-gateway is the engine's, for containers)")
        for at, key in unrendered(name, svc, ("env_file", "extra_hosts", "init" if svc.agents
                                              else "")):
            self._lose(at, name, f"{key} is not rendered for Swarm yet" + (
                f": every service is on the fleet's one overlay network ({NETWORK})"
                if key == "networks" else ""))

    def _leftover_secrets(self) -> None:
        refuse_unread(self.fleet, self.plan, _RENDERED, self.handled, self.secrets,
                      self._refuse)


def _published(svc: ServiceSpec) -> list[PortSpec]:
    return [p for _, p in _published_at("", svc)]


def _published_at(name: str, svc: ServiceSpec) -> list[tuple[Path_, PortSpec]]:
    """The published ports of a service and its agents, where each is written, compose's order."""
    own: list[tuple[Path_, PortSpec]] = [
        (("services", name, "ports", n), p) for n, p in sorted(svc.ports.items()) if p.publish]
    agents: list[tuple[Path_, PortSpec]] = [
        (("services", name, "agents", a, "ports", n), p)
        for a, spec in agents_of(svc).items() for n, p in sorted(spec.ports.items()) if p.publish]
    return own + agents

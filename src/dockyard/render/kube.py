"""Kubernetes manifests for a fleet: one folder, applied with `kubectl apply -k`.

Pure, like the compose renderer: the same manifest gives the same bytes, and dockyard does not
deploy them (no API server runs here; the output is validated against the pinned schemas,
`KUBERNETES_VERSION`, in the tests). What the manifest asks for and Kubernetes cannot do is
returned in `KubeRender.lost`, which `dockyard render --target kubernetes` prints.

How the manifest maps, and why:

- **Workloads.** One Deployment per copy (`strategy: Recreate`: the old pod stops before the
  new one starts, as compose recreates a container; a surge pod would wait forever for the one
  GPU or host port its machine has). A service with named volumes is a StatefulSet, so two pods
  never write one volume during a rollout. `machines:` copies are one workload per machine
  (`<service>-<machine>`), not a DaemonSet: each copy has its machine's profile env and GPUs.
- **Names.** Each service with ports gets a ClusterIP Service of its own name on its container
  ports, so `http://embedder:8001` resolves unchanged in the namespace (one per fleet). A
  service copied onto several machines gets `internalTrafficPolicy: Local`: a caller reaches
  the copy on its own machine, as on compose's per-machine network.
- **Published ports** become `hostPort` (and `hostIP` unless the bind is a wildcard) on the
  node the pod is pinned to: `machine:18000` as with compose. Not NodePort: it opens the port
  on every node and every interface (losing the default 127.0.0.1 bind) and only takes
  30000-32767. Not LoadBalancer: it needs a cloud or MetalLB controller a home lab lacks.
- **Volumes.** One PersistentVolumeClaim per named volume and machine, not volumeClaimTemplates:
  compose shares a named volume between the services of a machine (a model cache), which a
  per-StatefulSet template cannot; ReadWriteOnce lets pods on one node share it. Absolute bind
  mounts become hostPath; relative and `~` ones have no path on a node (lost: emptyDir).
- **Health.** `http` -> httpGet on the port, `cmd` -> exec. interval/timeout/retries become
  periodSeconds/timeoutSeconds/failureThreshold (whole seconds, rounded up) of the readiness and
  liveness probes; a `start_period` becomes a startupProbe whose failureThreshold x periodSeconds
  covers dockyard's own deadline, start_period + interval x retries. Liveness restarts a pod
  that stops answering, which compose does not do.
- **Placement.** nodeSelector `dockyard.dev/machine: <machine>` (label the nodes so) and
  `kubernetes.io/arch`; `nvidia.com/gpu` limits from the GPUs planned; requests = limits from
  `cpus`/`memory`, so the scheduler reserves what dockyard's placement counted.
- **Secrets.** A variable is a secret when the manifest requires it (`${VAR:?}`) or its name
  says so (DY702's PASSWORD, TOKEN, ...). Its value never lands in a file: `secret.yaml` lists
  the key names (and is left out of kustomization.yaml, so applying never blanks the real one),
  an env value that is the secret becomes `secretKeyRef`, and one that embeds it (a URL, a
  command line) reads it through Kubernetes' `$(VAR)` expansion of a variable holding it
  (`DOCKYARD_SECRET_<VAR>` unless one already does); an exec probe, which Kubernetes does not
  expand, reads that variable under /bin/sh. Other `$` are escaped as `$$`. A secret where
  Kubernetes cannot read one (an image name, a mount, a supervised agent's command) is refused.
- **Container groups** (`agents:`) run under dockyard's supervisor as with compose (a ConfigMap
  holds it); `shareProcessNamespace` stands in for compose's `init: true`. **Profiles** have no
  equivalent: a service of a profile not asked for (`--profile`) has `replicas: 0` (lost, with
  the command that scales it up).
- **Start order** (`depends_on`) is lost: Kubernetes starts every pod at once and restarts the
  ones that fail until their dependencies answer. An initContainer waiting on a port would need
  an image the manifest does not name (offline clusters lack busybox) and would only prove that
  a port opens; the order is kept as an annotation instead.
"""

from __future__ import annotations

import hashlib
import math
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from dockyard.errors import ManifestError
from dockyard.manifest.interpolate import _BRACED, _TOKEN, secret_variables, variables
from dockyard.manifest.load import Fleet, Path_
from dockyard.manifest.models import AgentSpec, HealthSpec, PortSpec, ServiceSpec
from dockyard.plan.budget import gpu_choices_lost
from dockyard.plan.family import has_python
from dockyard.plan.health import health_port
from dockyard.plan.model import Plan, ServicePlan
from dockyard.plan.place import WILDCARD
from dockyard.plan.routes import is_address
from dockyard.render import yamltext
from dockyard.render.budget import budget_command, budget_env, needs_command
from dockyard.render.dockerfile import _is_bind
from dockyard.render.supervisor import MOUNT, group_health, render_supervisor, supervisor_command
from dockyard.render.unkept import bind_mounts, refuse_unread, unrendered

KUBERNETES_VERSION = "1.31"  # the schemas the output is validated against (tests)
FOLDER = "kubernetes"  # `dockyard render --target kubernetes -o DIR` writes DIR/kubernetes/<fleet>/
MACHINE_LABEL = "dockyard.dev/machine"
CLAIM_SIZE = "10Gi"  # the manifest gives volumes no size
APP_UID = 10001  # the user dockyard's families create (render/dockerfile.py)
_RENDERED = {"image", "command", "entrypoint", "env", "volumes", "user", "ports", "health",
             "agents"}

Piece = tuple[bool, str]  # (True, VAR): the secret VAR; (False, text): text as it is



def _host_aliases(fleet: Fleet, name: str, svc: ServiceSpec) -> list[dict[str, Any]]:
    """extra_hosts as the pod's hostAliases (address -> names), for written IP addresses."""
    by_address: dict[str, list[str]] = {}
    for host, address in sorted(svc.extra_hosts.items()):
        if is_address(address) and ("services", name, "extra_hosts", host) not in fleet.raw:
            by_address.setdefault(address.strip("[]"), []).append(host)
    return [{"ip": a, "hostnames": h} for a, h in sorted(by_address.items())]


@dataclass(frozen=True)
class KubeRender:
    """The files of one fleet's folder (relative paths), and what Kubernetes cannot keep."""

    folder: str
    files: dict[str, str]
    lost: list[str] = field(default_factory=list)


def render_kubernetes(fleet: Fleet, plan: Plan, profiles: Iterable[str] = ()) -> KubeRender:
    """The fleet's folder; services of `profiles` run, other profiles' are scaled to zero."""
    return _Renderer(fleet, plan, frozenset(profiles)).render()


def name_of(text: str, limit: int = 63) -> str:
    """A manifest name as a DNS-1035 label (what a Service's name must be)."""
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    if not label or not label[0].isalpha():
        label = f"x-{label}".rstrip("-")
    if len(label) > limit:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        label = f"{label[:limit - 9].rstrip('-')}-{digest}"
    return label


def _quantity(n: int) -> str:
    for unit, size in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def _cpu(cpus: float) -> str:
    milli = round(cpus * 1000)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))


# --- secrets: which variables, and where the manifest uses them -------------------------------

def _pattern(raw: str, secrets: frozenset[str]) -> list[tuple[str, str]]:
    """`raw` as ("lit", text), ("var", "") and ("secret", NAME) pieces."""
    out: list[tuple[str, str]] = []
    pos = 0
    for match in _TOKEN.finditer(raw):
        if match.start() > pos:
            out.append(("lit", raw[pos:match.start()]))
        pos = match.end()
        escaped, braced, bare, _ = match.groups()
        if escaped:
            out.append(("lit", "$"))
            continue
        name, op = bare or "", ""
        if braced and (parsed := _BRACED.match(braced)):
            name, op = parsed.group(1), parsed.group(2) or ""
        # ${S:+alt} is `alt`, not the secret; ${S}, ${S:?m} and ${S:-d} are the secret's value.
        out.append(("secret", name) if name in secrets and not op.endswith("+") else ("var", ""))
    if pos < len(raw):
        out.append(("lit", raw[pos:]))
    return out


def split(raw: str, value: str, secrets: frozenset[str]) -> list[Piece] | None:
    """The interpolated `value` of `raw` as literal text and secret references.

    The manifest keeps only the interpolated value and the text as written, so the secret's
    place in the value is found by matching the two: literals must match, each variable takes
    what is between them. None when that match is not unique (a variable's value holds the
    text that follows it): then no split is safe, as part of the secret could end up in text.
    """
    pattern = _pattern(raw, secrets)
    if not any(kind == "secret" for kind, _ in pattern):
        return [(False, value)]

    @cache
    def ways(i: int, at: int) -> int:  # ways to match pattern[i:] to value[at:], capped at 2
        if i == len(pattern):
            return int(at == len(value))
        kind, text = pattern[i]
        if kind == "lit":
            return ways(i + 1, at + len(text)) if value.startswith(text, at) else 0
        return min(2, sum(ways(i + 1, end) for end in range(at, len(value) + 1)))

    if ways(0, 0) != 1:
        return None
    pieces: list[Piece] = []
    at = 0
    for i, (kind, text) in enumerate(pattern):
        if kind == "lit":
            pieces.append((False, text))
            at += len(text)
            continue
        end = next(e for e in range(at, len(value) + 1) if ways(i + 1, e))
        pieces.append((True, text) if kind == "secret" else (False, value[at:end]))
        at = end
    merged: list[Piece] = []
    for secret, text in pieces:
        if merged and not secret and not merged[-1][0]:
            merged[-1] = (False, merged[-1][1] + text)
        elif secret or text:
            merged.append((secret, text))
    return merged


def _shell_script(pieces: list[Piece], ref: dict[str, str]) -> str:
    """A /bin/sh script with each secret read from the environment, quoted where it stands."""
    out: list[str] = []
    state, escape = "", False  # state: "", "'" or '"' -- the quote the text is inside
    for secret, text in pieces:
        if secret:
            var = "${" + ref[text] + "}"
            out.append({"": f'"{var}"', '"': var, "'": f"'\"{var}\"'"}[state])
            continue
        out.append(text)
        for ch in text:
            if escape:
                escape = False
            elif state == "'":
                state = "" if ch == "'" else state
            elif ch == "\\":
                escape = True
            elif state == '"':
                state = "" if ch == '"' else state
            elif ch in "'\"":
                state = ch
    return "".join(out)


def _shell_word(pieces: list[Piece], ref: dict[str, str]) -> str:
    word = "".join('"${' + ref[text] + '}"' if secret else shlex.quote(text)
                   for secret, text in pieces if secret or text)
    return word or "''"


# --- the renderer ---------------------------------------------------------------------------

class _Renderer:
    def __init__(self, fleet: Fleet, plan: Plan, profiles: frozenset[str]) -> None:
        self.fleet, self.plan, self.profiles = fleet, plan, profiles
        self.ns = name_of(plan.fleet)
        self.secret_name = name_of(f"{plan.fleet}-secrets")
        self.secrets = secret_variables(fleet.raw.values())
        self.required = {name for text in fleet.raw.values()
                         for name, op in variables(text) if op.endswith("?")}
        self.raw_of: dict[str, list[Path_]] = {}  # service -> its paths written with a `$`
        for at in fleet.raw:
            if len(at) > 2 and at[0] == "services":
                self.raw_of.setdefault(str(at[1]), []).append(at)
        self.used_secrets: set[str] = set()
        self.handled: set[Path_] = set()
        self.lost: list[str] = []
        self.names = self._names()
        self.claims = self._claims()

    # names -----------------------------------------------------------------------------------

    def _names(self) -> dict[str, str]:
        names: dict[str, str] = {}
        seen: dict[str, str] = {}
        for service in sorted(self.plan.services):
            name = name_of(service)
            if name in seen:
                raise ManifestError(
                    f"services {seen[name]} and {service} both become `{name}` in Kubernetes, "
                    "where names are DNS labels", where=self.fleet.where("services", service),
                    fix="rename one of them")
            seen[name] = service
            names[service] = name
            if name != service:
                self._lose(("services", service), service,
                           f"named `{name}` in Kubernetes (a DNS label): callers that use "
                           f"`{service}` must use `{name}`")
        return names

    def _claims(self) -> dict[tuple[str, str], str]:
        """(volume, machine) -> claim name: the volume's own, or -<machine> where several use it."""
        users: dict[str, set[str]] = {}
        for sp in self.plan.services.values():
            for volume in sp.spec.volumes:
                if ":" in volume and not _is_bind(volume):
                    users.setdefault(volume.split(":")[0], set()).update(sp.machines)
        return {(volume, machine): name_of(volume if len(machines) == 1
                                           else f"{volume}-{machine}")
                for volume, machines in users.items() for machine in machines}

    def runs(self, svc: ServiceSpec) -> bool:
        """Whether a service starts: no profiles, or one of those asked for (as compose)."""
        return not svc.profiles or bool(self.profiles.intersection(svc.profiles))

    def _lose(self, at: Path_, service: str, text: str) -> None:
        self.lost.append(f"{self.fleet.where(*at)}: service {service}: {text}")

    def _meta(self, name: str, service: str = "", **extra: Any) -> dict[str, Any]:
        labels = {"app.kubernetes.io/managed-by": "dockyard",
                  "app.kubernetes.io/part-of": self.ns}
        if service:
            labels["app.kubernetes.io/name"] = self.names[service]
        labels.update(extra.pop("labels", {}))
        return {"name": name, "namespace": self.ns, "labels": dict(sorted(labels.items())),
                **extra}

    # values with secrets ---------------------------------------------------------------------

    def _pieces(self, at: Path_, value: str) -> list[Piece] | None:
        raw = self.fleet.raw.get(at)
        if raw is None:
            return [(False, value)]
        pieces = split(raw, value, self.secrets)
        if pieces is None or any(secret for secret, _ in pieces):
            self.handled.add(at)
        return pieces

    def _words(self, at: Path_, words: list[str]) -> list[list[Piece]] | None:
        """A command's words as pieces; written as one string, it is /bin/sh -c <string>."""
        if at in self.fleet.raw and len(words) == 3 and words[:2] == ["/bin/sh", "-c"]:
            script = self._pieces(at, words[2])
            return None if script is None else [[(False, "/bin/sh")], [(False, "-c")], script]
        out = []
        for i, word in enumerate(words):
            pieces = self._pieces((*at, i), word)
            if pieces is None:
                return None
            out.append(pieces)
        return out

    def _refuse(self, at: Path_, service: str, what: str) -> ManifestError:
        return ManifestError(
            f"service {service}: {what} uses a secret, which Kubernetes can pass only into "
            "env, a command or a probe", where=self.fleet.where(*at),
            fix="read the secret from an `env:` variable there instead")

    # one copy of a service -------------------------------------------------------------------

    def workload(self, sp: ServicePlan, machine: str) -> tuple[dict[str, Any], str]:
        """The Deployment or StatefulSet of the copy of `sp` on `machine`, and its name."""
        svc, name = sp.spec, sp.name
        multi = len(sp.machines) > 1
        workload = name_of(f"{name}-{machine}") if multi else self.names[name]
        container = _Container(self, sp, machine)
        pod_spec = container.pod_spec()
        selector = {"app.kubernetes.io/instance": workload,
                    "app.kubernetes.io/name": self.names[name]}
        template_labels = {**selector, "app.kubernetes.io/part-of": self.ns,
                           MACHINE_LABEL: machine}
        annotations = {"dockyard.dev/level": str(sp.level)}
        if svc.depends_on:
            annotations["dockyard.dev/depends-on"] = ",".join(
                f"{dep}:{d.condition}" for dep, d in sorted(svc.depends_on.items()))
        stateful = any(":" in v and not _is_bind(v) for v in svc.volumes)
        spec: dict[str, Any] = {"replicas": 1 if self.runs(svc) else 0}
        if stateful:
            spec["serviceName"] = self.names[name]
        else:
            spec["strategy"] = {"type": "Recreate"}
        spec["selector"] = {"matchLabels": selector}
        spec["template"] = {"metadata": {"labels": dict(sorted(template_labels.items()))},
                            "spec": pod_spec}
        doc = {"apiVersion": "apps/v1", "kind": "StatefulSet" if stateful else "Deployment",
               "metadata": self._meta(workload, name, labels={
                   "app.kubernetes.io/instance": workload}, annotations=annotations),
               "spec": spec}
        return doc, workload

    def service(self, sp: ServicePlan) -> dict[str, Any] | None:
        ports = _ports(sp.spec)
        stateful = any(":" in v and not _is_bind(v) for v in sp.spec.volumes)
        if not ports and not stateful:
            return None
        spec: dict[str, Any] = {}
        if ports:
            spec["type"] = "ClusterIP"
        else:
            spec["clusterIP"] = "None"  # headless: the StatefulSet's governing Service
        spec["selector"] = {"app.kubernetes.io/name": self.names[sp.name],
                            "app.kubernetes.io/part-of": self.ns}
        if ports:
            spec["ports"] = _service_ports(ports)
        if len(sp.machines) > 1:
            spec["internalTrafficPolicy"] = "Local"
        return {"apiVersion": "v1", "kind": "Service",
                "metadata": self._meta(self.names[sp.name], sp.name), "spec": spec}

    def supervisor(self, sp: ServicePlan, agents: dict[str, AgentSpec]) -> str:
        svc = sp.spec.model_copy(update={"agents": agents})
        doc = {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": self._meta(name_of(f"{sp.name}-supervisor"), sp.name)}
        return yamltext.dump(doc) + "data:\n  supervisor.py: " + _literal(
            render_supervisor(sp.name, svc), 4)

    # the whole folder --------------------------------------------------------------------------

    def render(self) -> KubeRender:
        files: dict[str, str] = {}
        header = (f"# fleet {self.plan.fleet}: rendered by dockyard from "
                  f"{self.fleet.path.name}; edit that, not this file.\n")
        for name in sorted(self.plan.services):
            sp = self.plan.services[name]
            docs: list[str] = []
            if sp.spec.agents:
                docs.append(self.supervisor(sp, _agents_without_secrets(self, sp)))
            for machine in sp.machines:
                doc, _ = self.workload(sp, machine)
                docs.append(yamltext.dump(doc))
            service = self.service(sp)
            if service:
                docs.append(yamltext.dump(service))
            self._losses(sp)
            files[f"services/{self.names[name]}.yaml"] = header + "---\n".join(docs)
        self._leftover_secrets()
        if self.claims:
            files["volumes.yaml"] = header + _CLAIMS_NOTE + "---\n".join(
                yamltext.dump(self._claim(claim)) for claim in sorted(set(self.claims.values())))
        files["namespace.yaml"] = header + yamltext.dump({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": self.ns, "labels": {
                "app.kubernetes.io/managed-by": "dockyard",
                "app.kubernetes.io/part-of": self.ns}}})
        if self.used_secrets:
            files["secret.yaml"] = header + self._create_secret_note() + yamltext.dump({
                "apiVersion": "v1", "kind": "Secret", "metadata": self._meta(self.secret_name),
                "type": "Opaque", "stringData": dict.fromkeys(sorted(self.used_secrets), "")})
        files["kustomization.yaml"] = self._kustomization(header, sorted(
            p for p in files if p != "secret.yaml"))
        return KubeRender(f"{FOLDER}/{self.ns}", dict(sorted(files.items())), self.lost)

    def _claim(self, claim: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": self._meta(claim),
                "spec": {"accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": CLAIM_SIZE}}}}

    def _create_secret_note(self) -> str:
        keys = " ".join(f"--from-literal={k}=..." for k in sorted(self.used_secrets))
        return ("# The secrets the fleet reads: key names only, never their values. It is not in\n"
                "# kustomization.yaml (applying it would blank the values); create it instead:\n"
                f"#   kubectl -n {self.ns} create secret generic {self.secret_name} {keys}\n")

    def _kustomization(self, header: str, resources: list[str]) -> str:
        notes = [
            f"# Validated against the Kubernetes {KUBERNETES_VERSION} schemas; dockyard does "
            "not deploy it.",
            "# Before `kubectl apply -k .`, label each node with its machine:",
            *(f"#   kubectl label node NODE {MACHINE_LABEL}={m}"
              for m in sorted({m for sp in self.plan.services.values() for m in sp.machines})),
        ]
        if self.used_secrets:
            notes.append(f"# and create the secret {self.secret_name} (see secret.yaml).")
        if any(sp.built for sp in self.plan.services.values()) and not self.fleet.spec.registry:
            notes.append("# Built images (imagePullPolicy: IfNotPresent) must be loaded on their "
                         "nodes: the fleet has no registry.")
        if self.lost:
            notes.append("# What Kubernetes does not keep of the manifest:")
            notes += [f"#   {line}" for line in self.lost]
        doc = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
               "namespace": self.ns, "resources": resources}
        return header + "\n".join(notes) + "\n" + yamltext.dump(doc)

    def _losses(self, sp: ServicePlan) -> None:
        svc, name = sp.spec, sp.name
        if svc.depends_on:
            deps = ", ".join(f"{d} ({c.condition})" for d, c in sorted(svc.depends_on.items()))
            self._lose(("services", name, "depends_on"), name,
                       f"depends_on {deps} is not enforced: Kubernetes starts every pod at "
                       f"once, so {name} may start first and restart until they answer")
        if not self.runs(svc):
            kind = "statefulset" if any(":" in v and not _is_bind(v) for v in svc.volumes) \
                else "deployment"
            self._lose(("services", name, "profiles"), name,
                       f"profiles ({', '.join(svc.profiles)}) have no Kubernetes equivalent: "
                       f"rendered with replicas: 0; start it with `kubectl -n {self.ns} scale "
                       f"{kind}/{self.names[name]} --replicas=1`, or render with --profile "
                       f"{svc.profiles[0]}")
        if svc.restart in ("no", "on-failure"):
            self._lose(("services", name, "restart"), name,
                       f"restart: {svc.restart} is not kept: a Deployment's pods are always "
                       "restarted")
        kept_hosts = {h for a in _host_aliases(self.fleet, name, svc) for h in a["hostnames"]}
        for host in sorted(set(svc.extra_hosts) - kept_hosts):
            self._lose(("services", name, "extra_hosts", host), name,
                       f"extra_hosts {host}={svc.extra_hosts[host]}: hostAliases takes a "
                       "written IP address only (no host-gateway, no variable)")
        for at, key in unrendered(name, svc, ("extra_hosts",)):
            self._lose(at, name, f"{key} is not rendered for Kubernetes yet" + (
                ": every pod shares the namespace's flat network (a NetworkPolicy would keep "
                "an internal network internal)" if key == "networks" else ""))
        user = svc.user.split(":")[0]
        if user and not user.isdigit():
            self._lose(("services", name, "user"), name,
                       f"user `{svc.user}` is a name, and Kubernetes takes numeric IDs: the "
                       "image's user runs")
        for at, source in bind_mounts(name, svc):
            if not source.startswith("/"):
                self._lose(at, name, f"`{source}` has no path on a node: mounted as an "
                           "empty folder (emptyDir); use an absolute path or a volume")
        for at, lost in gpu_choices_lost(self.fleet, sp, "the NVIDIA device plugin"):
            self._lose(at, name, lost)

    def _leftover_secrets(self) -> None:
        refuse_unread(self.fleet, self.plan, _RENDERED, self.handled, self.secrets,
                      self._refuse)


_CLAIMS_NOTE = ("# One claim per named volume and machine. The manifest gives no size: "
                f"{CLAIM_SIZE} is a\n# placeholder (set it, and a storageClassName if the "
                "default is not the one). A new\n# claim starts empty: unlike a Docker volume it "
                "does not get the image's files.\n")


def _literal(text: str, indent: int) -> str:
    """`text` as a YAML block literal (a script stays readable), else as a quoted scalar."""
    if (text.startswith((" ", "\n")) or not text.endswith("\n") or text.endswith("\n\n")
            or not yamltext._SAFE_CHARS.fullmatch(text.replace("\n", "").replace("\t", " "))):
        return yamltext.scalar(text) + "\n"
    pad = " " * indent
    return "|\n" + "".join(f"{pad}{line}\n" if line else "\n" for line in text.split("\n")[:-1])


def _agents_without_secrets(r: _Renderer, sp: ServicePlan) -> dict[str, AgentSpec]:
    """The agents as the supervisor gets them: env that reads a secret moves to the container."""
    agents = {}
    for agent_name, agent in sp.spec.agents.items():
        env = {k: v for k, v in agent.env.items()
               if not _has_secret(r, ("services", sp.name, "agents", agent_name, "env", k))}
        agents[agent_name] = agent.model_copy(update={"env": env})
    return agents


def _has_secret(r: _Renderer, at: Path_) -> bool:
    raw = r.fleet.raw.get(at)
    return raw is not None and any(n in r.secrets and not op.endswith("+")
                                   for n, op in variables(raw))


def _ports(svc: ServiceSpec) -> list[tuple[str, PortSpec]]:
    """(Service port name, port) of the service and its agents, by name."""
    ports = [(name, p) for name, p in sorted(svc.ports.items())]
    ports += [(f"{agent}-{name}", p) for agent, spec in sorted(svc.agents.items())
              for name, p in sorted(spec.ports.items())]
    return ports


def _service_ports(ports: list[tuple[str, PortSpec]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    seen: set[tuple[int, str]] = set()
    for name, p in ports:
        protocol = p.protocol.upper()
        if (p.port, protocol) in seen:
            continue
        seen.add((p.port, protocol))
        label = name_of(name)
        if label in names:
            label = name_of(f"{name}-{p.port}")
        names.add(label)
        out.append({"name": label, "port": p.port, "targetPort": p.port, "protocol": protocol})
    return out


class _Container:
    """The pod spec of one copy: the container, its env, probes, resources and volumes."""

    def __init__(self, r: _Renderer, sp: ServicePlan, machine: str) -> None:
        self.r, self.sp, self.machine = r, sp, machine
        self.svc = sp.spec
        self.secrets: set[str] = set()  # the secrets this container reads
        self.env = self._env()
        # How a command or another value reads secret S: through a variable that holds just S,
        # else one of its own (not S itself: images read their env, neo4j fails on NEO4J_*).
        holders = {pieces[0][1]: k for k, pieces in sorted(self.env.items(), reverse=True)
                   if len(pieces) == 1 and pieces[0][0]}
        self.ref = {s: holders.get(s, f"DOCKYARD_SECRET_{s}") for s in r.secrets}

    def _lose(self, at: Path_, text: str) -> None:
        self.r._lose(at, self.sp.name, text)

    def _env(self) -> dict[str, list[Piece]]:
        fleet, svc, name, machine = self.r.fleet, self.svc, self.sp.name, self.machine
        values: dict[str, tuple[Path_, str]] = {
            k: (("machines", machine, "profile", k), v)
            for k, v in fleet.spec.machines[machine].profile.items()}
        values.update({k: (("services", name, "env", k), v) for k, v in svc.env.items()})
        for agent_name, agent in sorted(svc.agents.items()):
            for k, v in sorted(agent.env.items()):
                agent_at: Path_ = ("services", name, "agents", agent_name, "env", k)
                if _has_secret(self.r, agent_at):
                    values[k] = (agent_at, v)
                    self._lose(agent_at, f"agent {agent_name}'s {k} reads a secret: it is set "
                               "on the container, so every agent of the group sees it")
        plain = {k: v for k, (_, v) in values.items()}
        env: dict[str, list[Piece]] = {}
        for k, (at, v) in values.items():
            pieces = self.r._pieces(at, v)
            if pieces is None:
                self._lose(at, f"env {k} mixes a secret with other variables in a way that "
                           f"cannot be split: it is read whole from secret key {k}; set it there")
                pieces = [(True, k)]
            env[k] = pieces
        for k, v in budget_env(fleet, self.sp, machine, plain).items():
            env[k] = [(False, v)]
        return env

    def _text(self, pieces: list[Piece]) -> str:
        """Pieces as a value Kubernetes expands: `$` escaped, a secret as `$(VAR)`."""
        for secret, text in pieces:
            if secret:
                self.secrets.add(text)
        return "".join(f"$({self.ref[text]})" if secret else text.replace("$", "$$")
                       for secret, text in pieces)

    def _command(self, at: Path_, words: list[str]) -> list[str]:
        pieces = self.r._words(at, words)
        if pieces is None:
            raise self.r._refuse(at, self.sp.name, f"`{at[-1]}` (mixed with other variables)")
        return [self._text(p) for p in pieces]

    def _probe_command(self, at: Path_, words: list[str]) -> list[str]:
        """An exec probe's command: Kubernetes does not expand it, so /bin/sh reads secrets."""
        pieces = self.r._words(at, words)
        if pieces is None:
            raise self.r._refuse(at, self.sp.name, "`health.cmd` (mixed with other variables)")
        if not any(secret for word in pieces for secret, _ in word):
            return words
        for word in pieces:
            self.secrets.update(text for secret, text in word if secret)
        if words[:2] == ["/bin/sh", "-c"] and len(words) == 3:
            return ["/bin/sh", "-c", _shell_script(pieces[2], self.ref)]
        return ["/bin/sh", "-c", " ".join(_shell_word(word, self.ref) for word in pieces)]

    def pod_spec(self) -> dict[str, Any]:
        svc, sp, r = self.svc, self.sp, self.r
        name = sp.name
        at: Path_ = ("services", name)
        container: dict[str, Any] = {"name": name_of(name), "image": sp.image}
        if sp.built:
            container["imagePullPolicy"] = "IfNotPresent"  # :current is loaded or pulled once
        raw = r.raw_of.get(name, [])
        has_secret_command = any(_has_secret(r, p) for p in raw if p[:3] == (*at, "command"))
        if svc.agents:
            # The supervisor runs these as written: no Kubernetes expansion reaches them.
            for p in raw:
                if (p[:3] in ((*at, "command"), (*at, "entrypoint"), (*at, "health"))
                        or (p[:3] == (*at, "agents") and len(p) > 4 and p[4] != "env")
                        ) and _has_secret(r, p):
                    raise r._refuse(p, name, "a container group's command or health")
            container["command"] = supervisor_command()
        else:
            if svc.entrypoint:
                container["command"] = self._command((*at, "entrypoint"), list(svc.entrypoint))
            # As compose_service: a built image carries the command as CMD unless an own
            # Dockerfile, an entrypoint or a vLLM budget needs it written; a secret in it must
            # be read at run time, so it is written then too.
            if svc.command and (not sp.built or svc.dockerfile or svc.entrypoint
                                or needs_command(svc) or has_secret_command):
                command = self._command((*at, "command"), list(svc.command))
                container["args"] = budget_command(r.fleet, sp, self.machine, command)
            elif not svc.command and not sp.built and needs_command(svc):
                container["args"] = budget_command(r.fleet, sp, self.machine, [])
        probes = self._probes()
        ports = self._container_ports()
        mounts, volumes = self._volumes()
        resources = self._resources()
        env = self._env_list()  # after the command and probes: they add the secrets they read
        if env:
            container["env"] = env
        if ports:
            container["ports"] = ports
        if resources:
            container["resources"] = resources
        if mounts:
            container["volumeMounts"] = mounts
        container.update(probes)
        pod: dict[str, Any] = {}
        selector = {MACHINE_LABEL: self.machine,
                    "kubernetes.io/arch": r.fleet.spec.machines[self.machine].arch}
        pod["nodeSelector"] = dict(sorted(selector.items()))
        if svc.agents:
            pod["shareProcessNamespace"] = True  # the pause process reaps, as `init: true`
        security = self._security(bool(mounts))
        if security:
            pod["securityContext"] = security
        aliases = _host_aliases(r.fleet, name, svc)
        if aliases:
            pod["hostAliases"] = aliases
        pod["containers"] = [container]
        if volumes:
            pod["volumes"] = volumes
        return pod

    def _env_list(self) -> list[dict[str, Any]]:
        refs: list[dict[str, Any]] = []
        rest: list[dict[str, Any]] = []
        defined = set()
        for k, pieces in sorted(self.env.items()):
            if len(pieces) == 1 and pieces[0][0]:
                refs.append({"name": k, "valueFrom": self._secret_ref(pieces[0][1])})
                defined.add(k)
            else:
                rest.append({"name": k, "value": self._text(pieces)})
        # $(VAR) only expands variables listed before it: the secrets come first.
        helpers = [{"name": self.ref[s], "valueFrom": self._secret_ref(s)}
                   for s in sorted(self.secrets) if self.ref[s] not in defined]
        return sorted(refs + helpers, key=lambda e: str(e["name"])) + rest

    def _secret_ref(self, secret: str) -> dict[str, Any]:
        self.r.used_secrets.add(secret)
        ref: dict[str, Any] = {"name": self.r.secret_name, "key": secret}
        if secret not in self.r.required:
            ref["optional"] = True  # ${TOKEN} unset is "" in compose too
        return {"secretKeyRef": ref}

    def _container_ports(self) -> list[dict[str, Any]]:
        out = []
        for _, p in _ports(self.svc):
            entry: dict[str, Any] = {"containerPort": p.port, "protocol": p.protocol.upper()}
            if p.publish:
                entry["hostPort"] = p.host_port
                if p.bind not in WILDCARD:
                    entry["hostIP"] = p.bind
            out.append(entry)
        return out

    def _resources(self) -> dict[str, Any]:
        budget: dict[str, Any] = {}
        if self.svc.cpus:
            budget["cpu"] = _cpu(self.svc.cpus)
        if self.svc.memory:
            budget["memory"] = _quantity(self.svc.memory)
        limits = dict(budget)
        gpus = len(self.sp.gpus_on(self.machine))
        if gpus:
            limits["nvidia.com/gpu"] = gpus
        out: dict[str, Any] = {}
        if limits:
            out["limits"] = limits
        if budget:
            out["requests"] = budget  # what dockyard's placement counted, reserved
        return out

    def _volumes(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        mounts: list[dict[str, Any]] = []
        volumes: dict[str, dict[str, Any]] = {}
        for i, volume in enumerate(self.svc.volumes):
            parts = volume.split(":")
            source, target = (parts[0], parts[1]) if len(parts) > 1 else ("", parts[0])
            mode = parts[2].split(",") if len(parts) > 2 else []
            spec: dict[str, Any]
            if not source:
                vol, spec = f"scratch-{i}", {"emptyDir": {}}
            elif not _is_bind(volume):
                claim = self.r.claims[(source, self.machine)]
                vol, spec = claim, {"persistentVolumeClaim": {"claimName": claim}}
            elif source.startswith("/"):
                vol, spec = f"host-{i}", {"hostPath": {"path": source}}
            else:
                vol, spec = f"host-{i}", {"emptyDir": {}}  # no node path (reported as lost)
            volumes[vol] = {"name": vol, **spec}
            mount: dict[str, Any] = {"name": vol, "mountPath": target}
            if "ro" in mode:
                mount["readOnly"] = True
            mounts.append(mount)
        if self.svc.agents:
            vol = "supervisor"
            volumes[vol] = {"name": vol, "configMap": {
                "name": name_of(f"{self.sp.name}-supervisor")}}
            mounts.append({"name": vol, "mountPath": MOUNT, "subPath": "supervisor.py",
                           "readOnly": True})
        return mounts, [volumes[k] for k in sorted(volumes)]

    def _security(self, mounts: bool) -> dict[str, Any]:
        user, _, group = self.svc.user.partition(":")
        out: dict[str, Any] = {}
        if user.isdigit():
            out["runAsUser"] = int(user)
            if group.isdigit():
                out["runAsGroup"] = int(group)
        # A new claim is root's: the group of the image's user may write it (Docker copies the
        # owner of the image's folder into a new volume instead).
        gid = int(group) if group.isdigit() else int(user) if user.isdigit() else (
            APP_UID if self.sp.built else None)
        if mounts and gid is not None and any(
                ":" in v and not _is_bind(v) for v in self.svc.volumes):
            out["fsGroup"] = gid
        return out

    def _probes(self) -> dict[str, Any]:
        svc, sp = self.svc, self.sp
        at: Path_ = ("services", sp.name, "health")
        health: HealthSpec | None
        if svc.agents:
            group = group_health(svc, has_python=sp.built and has_python(
                self.r.plan.families, svc.family))
            if group is None:
                return {}
            test, health = group
            action: dict[str, Any] = {"exec": {"command": ["/bin/sh", "-c", test[1]]}}
        elif svc.health:
            health = svc.health
            if health.http:
                action = {"httpGet": {"path": health.http, "port": health_port(svc)}}
            else:
                action = {"exec": {"command": self._probe_command((*at, "cmd"),
                                                                  list(health.cmd))}}
        else:
            return {}
        timing = {"periodSeconds": _seconds(health.interval),
                  "timeoutSeconds": _seconds(health.timeout),
                  "failureThreshold": health.retries}
        probes: dict[str, Any] = {}
        if health.start_period:
            # Failures in start_period do not count, then `retries` do: dockyard's deadline.
            probes["startupProbe"] = {**action, **timing, "failureThreshold": math.ceil(
                health.start_period / timing["periodSeconds"]) + health.retries}
        probes["readinessProbe"] = {**action, **timing}
        probes["livenessProbe"] = {**action, **timing}
        return probes

"""`dockyard import`: a compose project (and the Dockerfiles it builds) as a fleet manifest.

Reading the files is `read_project` (the only part that touches the disk); `import_compose`
is a pure function of what was read, and returns the manifest and everything it could not
map, so `dockyard import` can print that list and write it as comments.

Choices worth knowing (they are also written into the manifest's header comment):
- Variables: free text (environment values, commands, images, health commands, volumes) is
  copied as written, `${VAR:?}` included, so dockyard interpolates it at load the way compose
  did; ports, sizes, durations and GPU counts are interpolated now, because they are parsed.
- `env_file:` values are inlined into `env:` (the manifest has no env files); `environment:`
  wins over them, as in compose.
- A built service keeps its own Dockerfile (`build:` + `dockerfile:`). The manifest requires
  every built service to name a family, so each distinct `FROM` image becomes a plain
  family (no packages); the Dockerfile itself is not rewritten.
- Compose defaults that differ from dockyard's are written out: `restart: "no"`, ports
  published on 0.0.0.0, Docker's health check interval and timeout (30s).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from dockyard.errors import InterpolationError, Location, ManifestError
from dockyard.manifest.interpolate import interpolate, read_dotenv
from dockyard.manifest.load import yaml_error
from dockyard.names import is_name, manifest_name
from dockyard.units import format_size, parse_size

COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
DOCKER_HEALTH_DEFAULTS = {"interval": "30s", "timeout": "30s"}

# Service keys with no dockyard equivalent, and why (the default reason covers the rest).
_REASONS = {
    "container_name": "dockyard names containers <fleet>-<service>-1",
    "hostname": "containers are reached by service name",
    "labels": "dockyard sets its own labels; add yours in a later version",
    "networks": "dockyard puts all services of a machine on one network",
    "network_mode": "dockyard puts all services of a machine on one network",
    "links": "services reach each other by name on the machine's network",
    "secrets": "pass secrets as required variables, `${VAR:?message}`, in env",
    "configs": "mount the file with a bind volume instead",
    "shm_size": "no shared-memory setting in the manifest yet",
    "ipc": "no IPC mode in the manifest yet",
    "extends": "write the merged service out (docker compose config shows it)",
    "logging": "dockyard keeps Docker's default logging",
}
_DEFAULT_REASON = "no dockyard equivalent yet"
_TOP_LEVEL = {"name", "services", "volumes", "networks", "version"}


@dataclass(frozen=True)
class Unmapped:
    """One thing of the compose project the manifest does not carry."""

    path: str  # where in the merged compose data, e.g. services.web.container_name
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class ComposeProject:
    """What `read_project` found: merged compose data and the files it refers to."""

    data: dict[str, Any]
    directory: Path  # compose's project directory: the first file's folder
    files: list[Path]
    dockerfiles: dict[str, str] = field(default_factory=dict)  # absolute path -> text
    env_files: dict[str, dict[str, str] | None] = field(default_factory=dict)  # None: missing
    environ: dict[str, str] = field(default_factory=dict)  # .env + process environment
    env_files_seen: set[str] = field(default_factory=set)  # ".env" when the project has one


@dataclass
class ImportResult:
    manifest: CommentedMap
    unmapped: list[Unmapped]

    def text(self) -> str:
        return dump_manifest(self.manifest)


# -- reading -----------------------------------------------------------------------------------

def load_compose_text(text: str, name: str) -> dict[str, Any]:
    """One compose file as plain data (YAML 1.2, anchors and merge keys resolved)."""
    yaml = YAML(typ="safe", pure=True)
    try:
        data = yaml.load(text)
    except (YAMLError, RecursionError, ValueError) as exc:
        raise yaml_error(exc, name, "compose YAML",
                         fix="`docker compose config` shows what compose makes of it") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ManifestError("a compose file must be a mapping with `services:`",
                            where=Location(name, 1, 1))
    services = data.get("services")
    if services is not None and not isinstance(services, dict):
        raise ManifestError("`services:` must be a mapping of service names", where=Location(name))
    for svc_name, svc in (services or {}).items():
        if not isinstance(svc, dict | None):
            raise ManifestError(f"services.{svc_name}: expected a mapping of keys",
                                where=Location(name))
    return data


def read_project(paths: list[Path], environ: Mapping[str, str] | None = None) -> ComposeProject:
    """Read compose files (later override earlier), the Dockerfiles and env files they use."""
    docs = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ManifestError(f"cannot read compose file: {exc}", where=Location(str(path)),
                                fix="pass an existing compose.yaml") from None
        docs.append(load_compose_text(text, path.name))
    directory = paths[0].resolve().parent
    env = {**read_dotenv(directory / ".env"), **(os.environ if environ is None else environ)}
    project = ComposeProject(merge_compose(docs), directory, list(paths), environ=dict(env))
    if (directory / ".env").is_file():
        project.env_files_seen.add(".env")
    for svc in (project.data.get("services") or {}).values():
        svc = svc or {}
        # Values of the wrong shape are left for import_compose to report, located.
        with contextlib.suppress(TypeError, ValueError, AttributeError, KeyError, OSError):
            build = _build_parts(svc.get("build"), env)
            if build:
                context, dockerfile = build
                path = (directory / context / dockerfile).resolve()
                project.dockerfiles[str(path)] = path.read_text(encoding="utf-8",
                                                                errors="replace")
        with contextlib.suppress(TypeError, ValueError, AttributeError, KeyError, OSError):
            for entry in _env_file_entries(svc.get("env_file")):
                path = (directory / _sub(entry["path"], env)).resolve()
                project.env_files[str(path)] = read_dotenv(path) if path.is_file() else None
    return project


def merge_compose(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge compose files as `docker compose -f a -f b` does: mappings merge key by key,
    environment/labels merge as mappings, ports/expose append, volumes merge by target,
    anything else (command, entrypoint, healthcheck test, ...) is replaced."""
    merged: dict[str, Any] = {}
    for doc in docs:
        for key, value in doc.items():
            if key == "services" and isinstance(value, dict):
                services = merged.setdefault("services", {})
                for name, svc in value.items():
                    services[name] = _merge_service(services.get(name) or {}, svc or {})
            elif isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = _deep_merge(merged[key], value)
            else:
                merged[key] = value
    return merged


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _merge_service(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if old is None:
            out[key] = value
        elif key in ("environment", "labels", "extra_hosts") or (
                key == "depends_on" and (isinstance(old, list) or isinstance(value, list))):
            out[key] = {**_as_mapping(old), **_as_mapping(value)}
        elif key in ("ports", "expose", "dns", "env_file", "secrets", "configs", "profiles") \
                and isinstance(old, list) and isinstance(value, list):
            out[key] = old + [v for v in value if v not in old]
        elif key in ("ports", "expose", "env_file") and isinstance(value, list):
            out[key] = [old, *value] if not isinstance(old, list) else old + value
        elif key == "volumes" and isinstance(old, list) and isinstance(value, list):
            by_target = {_volume_target(v): v for v in old}
            by_target.update({_volume_target(v): v for v in value})
            out[key] = list(by_target.values())
        elif key == "healthcheck" and isinstance(old, dict) and isinstance(value, dict):
            out[key] = {**old, **value}
        elif isinstance(old, dict) and isinstance(value, dict):
            out[key] = _deep_merge(old, value)
        else:
            out[key] = value
    return out


def _as_mapping(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    out: dict[str, Any] = {}
    for item in value or []:
        text = str(item)
        key, sep, rest = text.partition("=")
        out[key] = rest if sep else None
    return out


def _volume_target(volume: Any) -> str:
    if isinstance(volume, dict):
        return str(volume.get("target", ""))
    parts = str(volume).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _sub(value: Any, env: Mapping[str, str]) -> str:
    """A value interpolated for parsing; as written when a variable cannot be resolved."""
    try:
        return interpolate(str(value), env)
    except InterpolationError:
        return str(value)


def _build_parts(build: Any, env: Mapping[str, str]) -> tuple[str, str] | None:
    """(context, dockerfile) of a `build:`, or None when there is none or it is not a folder."""
    if build is None:
        return None
    if isinstance(build, dict):
        context = _sub(build.get("context", "."), env)
        dockerfile = _sub(build.get("dockerfile", "Dockerfile"), env)
    else:
        context, dockerfile = _sub(build, env), "Dockerfile"
    if re.match(r"^[a-z]+://|^git@|\.git(#|$)", context):
        return None
    return context, dockerfile


def _env_file_entries(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [dict(i) if isinstance(i, dict) else {"path": str(i)} for i in items]


# -- mapping -----------------------------------------------------------------------------------

def import_compose(project: ComposeProject, *, out_dir: Path, fleet: str | None = None,
                   machine: str = "local") -> ImportResult:
    """The fleet manifest for a compose project; paths become relative to `out_dir`."""
    return _Importer(project, out_dir.resolve(), machine).run(fleet)


def fleet_name(text: str) -> str:
    """A project name as a dockyard name: lowercase letters, digits, '-', '_', '.'."""
    return manifest_name(text, "imported")


class _Importer:
    def __init__(self, project: ComposeProject, out_dir: Path, machine: str) -> None:
        self.project = project
        self.env = project.environ
        self.out_dir = out_dir
        self.machine = machine
        self.unmapped: list[Unmapped] = []
        self.families: dict[str, str] = {}  # family name -> base image
        self.renames: dict[str, str] = {}

    def note(self, path: str, reason: str) -> None:
        self.unmapped.append(Unmapped(path, reason))

    @contextlib.contextmanager
    def _located(self, at: str) -> Iterator[None]:
        """A value of the wrong shape (compose would refuse it too) as one located error."""
        try:
            yield
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
            raise ManifestError(f"{at}: a value compose would not accept either ({exc})",
                                where=Location(self.project.files[0].name),
                                fix="`docker compose config` says what is wrong") from None

    def run(self, fleet: str | None) -> ImportResult:
        with self._located("(top level)"):
            return self._run(fleet)

    def _run(self, fleet: str | None) -> ImportResult:
        data = self.project.data
        name = fleet or fleet_name(_sub(data.get("name") or self.project.directory.name,
                                        self.env))
        if not is_name(name):
            raise ManifestError(f"fleet name {name!r} must be lowercase letters, digits, '-', "
                                "'_' or '.'", fix=f"pass --fleet {fleet_name(name)}")
        services_in = data.get("services") or {}
        if not services_in:
            raise ManifestError("the compose project has no services",
                                where=Location(self.project.files[0].name))
        dotenv = self.project.directory / ".env"
        if dotenv.resolve() != (self.out_dir / ".env").resolve() and ".env" in \
                self.project.env_files_seen:
            self.note(".env", f"compose reads variables from {dotenv}; dockyard reads the .env "
                      "beside fleet.yaml: copy it there")
        for key in data:
            if key not in _TOP_LEVEL and not str(key).startswith("x-"):
                self.note(str(key), _REASONS.get(str(key), _DEFAULT_REASON))
        for net, spec in (data.get("networks") or {}).items():
            if net != "default" or spec:
                self.note(f"networks.{net}", _REASONS["networks"])
        for vol, spec in (data.get("volumes") or {}).items():
            for key in spec or {}:
                self.note(f"volumes.{vol}.{key}", "dockyard creates plain local named volumes")
        for svc in services_in:
            new = fleet_name(str(svc))
            if new != svc:
                self.renames[str(svc)] = new
                self.note(f"services.{svc}", f"renamed to {new} (dockyard names are lowercase)")
        services = CommentedMap()
        for svc_name, svc in services_in.items():
            with self._located(f"services.{svc_name}"):
                services[self.renames.get(svc_name, svc_name)] = self.service(svc_name,
                                                                             svc or {})
        doc = CommentedMap()
        doc["fleet"] = name
        doc["machines"] = CommentedMap([(self.machine, CommentedMap())])
        doc["machines"].yaml_add_eol_comment(
            "describe it (GPUs, memory): `dockyard machine detect` prints this entry",
            self.machine)
        if self.families:
            families = CommentedMap()
            for fam, base in sorted(self.families.items()):
                families[fam] = _flow({"from": base})
            doc["families"] = families
            doc.yaml_set_comment_before_after_key(
                "families", before="\nthe base images of the services' own Dockerfiles: each "
                "Dockerfile keeps its own FROM\n(`dockyard adopt DOCKERFILE --family NAME` "
                "rewrites one onto its family)")
        doc["services"] = services
        doc.yaml_set_comment_before_after_key("services", before="")
        for svc_name in services:
            notes = [u for u in self.unmapped
                     if u.path.startswith(f"services.{self._original(svc_name)}.")]
            if notes:
                services.yaml_set_comment_before_after_key(
                    svc_name, before="\n".join(f"not mapped: {_printable(str(u))}"
                                                for u in notes), indent=2)
        self._header(doc)
        return ImportResult(doc, self.unmapped)

    def _original(self, name: str) -> str:
        return next((old for old, new in self.renames.items() if new == name), name)

    def _header(self, doc: CommentedMap) -> None:
        files = ", ".join(p.name for p in self.project.files)
        lines = [
            f"imported by `dockyard import` from {files}",
            "env_file values are inlined into env; compose defaults dockyard does not share",
            "(restart: \"no\", ports on 0.0.0.0, 30s health checks) are written out.",
        ]
        if self.unmapped:
            lines.append(f"{len(self.unmapped)} thing(s) not mapped: see `not mapped:` below")
            top = [u for u in self.unmapped if not u.path.startswith("services.")]
            lines += [f"not mapped: {_printable(str(u))}" for u in top]
        doc.yaml_set_start_comment("\n".join(lines))

    # -- one service ---------------------------------------------------------------------------

    def service(self, name: str, svc: dict[str, Any]) -> CommentedMap:
        at = f"services.{name}"
        out = CommentedMap()
        handled = {"image", "build", "command", "entrypoint", "ports", "expose", "healthcheck",
                   "depends_on", "volumes", "environment", "env_file", "profiles", "deploy",
                   "restart", "user", "networks", "cpus", "mem_limit", "runtime"}
        for key in svc:
            if key not in handled:
                self.note(f"{at}.{key}", _REASONS.get(str(key), _DEFAULT_REASON))
        self._image(name, svc, out, at)
        for key in ("entrypoint", "command"):
            if svc.get(key) is not None:
                words = _words(svc[key])
                if words:
                    out[key] = _flow_seq(words)
                else:
                    self.note(f"{at}.{key}", f"an empty {key} (resetting the image's) cannot be "
                              "written yet")
        if svc.get("user") is not None:
            out["user"] = DoubleQuotedScalarString(str(svc["user"]))
        ports = self._ports(svc, at)
        if ports:
            out["ports"] = ports
        health = self._health(svc.get("healthcheck"), at)
        if health is not None:
            out["health"] = health
        deps = self._depends(svc.get("depends_on"), at)
        if deps:
            out["depends_on"] = deps
        volumes = self._volumes(svc.get("volumes"), at)
        if volumes:
            out["volumes"] = volumes
        env = self._env(svc, at)
        if env:
            out["env"] = env
        if svc.get("profiles"):
            out["profiles"] = _flow_seq([str(p) for p in svc["profiles"]])
        self._resources(svc, out, at)
        self._networks(svc.get("networks"), at)
        restart = _sub(svc.get("restart", "no"), self.env)
        if restart.startswith("on-failure:"):
            self.note(f"{at}.restart", f"{restart}: dockyard restarts on failure without a limit")
            restart = "on-failure"
        if restart not in ("no", "always", "on-failure", "unless-stopped"):
            self.note(f"{at}.restart", f"unknown restart policy {restart!r}; kept `no`")
            restart = "no"
        out["restart"] = DoubleQuotedScalarString(restart) if restart == "no" else restart
        return out

    def _image(self, name: str, svc: dict[str, Any], out: CommentedMap, at: str) -> None:
        build = _build_parts(svc.get("build"), self.env) if svc.get("build") is not None else None
        if svc.get("build") is not None and build is None:
            self.note(f"{at}.build", "a build from a URL or git repository: build it yourself "
                      "and set `image:`")
        if build is None:
            out["image"] = str(svc.get("image") or name)
            return
        context, dockerfile = build
        if isinstance(svc["build"], dict):
            for key in svc["build"]:
                if key not in ("context", "dockerfile"):
                    self.note(f"{at}.build.{key}", "only a build context and a Dockerfile are "
                              "carried over")
        if svc.get("image"):
            self.note(f"{at}.image", f"{svc['image']}: dockyard tags the images it builds "
                      "<fleet>/<service>:current")
        path = (self.project.directory / context / dockerfile).resolve()
        text = self.project.dockerfiles.get(str(path))
        if text is None:
            raise ManifestError(f"{at}.build: no Dockerfile at {path}",
                                where=Location(self.project.files[0].name),
                                fix="create it or correct `build:`")
        base = dockerfile_base(text)
        if not base:
            self.note(f"{at}.build", "the Dockerfile's FROM could not be read; its family is "
                      "based on debian:bookworm-slim")
            base = "debian:bookworm-slim"
        family = fleet_name(base.split("@")[0].replace("/", "-").replace(":", "-"))
        self.families[family] = base
        out["family"] = family
        out["build"] = self._relative(self.project.directory / context)
        out["dockerfile"] = dockerfile

    def _relative(self, path: Path) -> str:
        rel = os.path.relpath(path.resolve(), self.out_dir)
        return "." if rel == "." else rel if rel.startswith("..") else f"./{rel}"

    def _ports(self, svc: dict[str, Any], at: str) -> CommentedMap:
        ports = CommentedMap()

        def add(name: str, value: Any) -> None:
            base, n = name, 2
            while name in ports:
                name, n = f"{base}-{n}", n + 1
            ports[name] = value

        published: set[tuple[int, str]] = set()
        for index, raw in enumerate(svc.get("ports") or []):
            for entry in self._port_entries(raw, f"{at}.ports[{index}]"):
                port, host, bind, proto, name = entry
                published.add((port, proto))
                if host is None:
                    self.note(f"{at}.ports[{index}]", f"{port}: compose publishes it on a random "
                              f"host port; dockyard publishes it on {port}")
                value: Any
                if proto == "tcp" and ":" not in bind:
                    value = f"{bind}:{host or port}:{port}"
                else:
                    value = _flow({"port": port, "host": host or port, "bind": bind,
                                   **({"protocol": proto} if proto != "tcp" else {})})
                add(name or f"p{port}" + ("-udp" if proto == "udp" else ""), value)
        for index, raw in enumerate(svc.get("expose") or []):
            text = _sub(raw, self.env)
            number, _, proto = text.partition("/")
            proto = proto or "tcp"
            try:
                first, _, last = number.partition("-")
                numbers = range(int(first), int(last or first) + 1)
            except ValueError:
                self.note(f"{at}.expose[{index}]", f"cannot read port {text!r}")
                continue
            for port in numbers:
                if (port, proto) in published:
                    continue
                add(f"p{port}" + ("-udp" if proto == "udp" else ""),
                    _flow({"port": port, "publish": False,
                           **({"protocol": proto} if proto != "tcp" else {})}))
        return ports

    def _port_entries(self, raw: Any, at: str
                      ) -> list[tuple[int, int | None, str, str, str]]:
        """(container port, host port or None, bind address, protocol, name) per port."""
        if isinstance(raw, dict):
            extra = set(raw) - {"target", "published", "host_ip", "protocol", "mode", "name"}
            for key in sorted(extra):
                self.note(f"{at}.{key}", "not carried over")
            try:
                target = int(_sub(raw.get("target"), self.env))
                published = raw.get("published")
                host = int(_sub(published, self.env)) if published not in (None, "") else None
            except ValueError:
                self.note(at, f"cannot read port {raw!r} (a port range?)")
                return []
            proto = _sub(raw.get("protocol", "tcp"), self.env)
            bind = _sub(raw.get("host_ip") or "0.0.0.0", self.env)
            if proto not in ("tcp", "udp"):
                self.note(at, f"protocol {proto} is not supported")
                return []
            return [(target, host, bind, proto, str(raw.get("name") or ""))]
        text = _sub(raw, self.env)
        match = re.match(r"^(?:(?:\[(?P<ip6>[^\]]+)\]|(?P<ip>[^:\[\]]+)):)??"
                         r"(?:(?P<host>[\d-]*):)?(?P<port>\d+(?:-\d+)?)(?:/(?P<proto>\w+))?$",
                         text)
        if not match:
            self.note(at, f"cannot read port {text!r}")
            return []
        proto = match["proto"] or "tcp"
        if proto not in ("tcp", "udp"):
            self.note(at, f"protocol {proto} is not supported")
            return []
        bind = match["ip6"] or match["ip"] or "0.0.0.0"
        targets = _port_range(match["port"])
        hosts: list[int | None] = list(_port_range(match["host"])) if match["host"] else []
        if not hosts:
            hosts = [None] * len(targets)
        if len(hosts) != len(targets):
            self.note(at, f"{text}: a host range must be as long as the container range")
            return []
        return [(t, h, bind, proto, "") for t, h in zip(targets, hosts, strict=True)]

    def _health(self, spec: Any, at: str) -> CommentedMap | None:
        if not isinstance(spec, dict):
            return None
        test = spec.get("test")
        if spec.get("disable") or test in (["NONE"], "NONE"):
            self.note(f"{at}.healthcheck", "disabled: dockyard cannot switch off an image's own "
                      "HEALTHCHECK; the service simply has no `health:`")
            return None
        if test is None:
            self.note(f"{at}.healthcheck", "no `test:`: it only changes the image's own "
                      "HEALTHCHECK timing, which dockyard cannot express")
            return None
        if isinstance(test, str):
            form, words = "CMD-SHELL", [test]
        else:
            form, words = str(test[0]), [str(w) for w in test[1:]]
        out = CommentedMap()
        probe = _http_probe(form, [_sub(w, self.env) for w in words])
        if probe:
            out["http"], out["port"] = probe[1], probe[0]
        elif form == "CMD-SHELL":
            out["cmd"] = " ".join(words)
        else:
            out["cmd"] = _flow_seq(words)
        for key in ("interval", "timeout"):
            out[key] = _sub(spec.get(key, DOCKER_HEALTH_DEFAULTS[key]), self.env)
        retries = spec.get("retries")
        if retries not in (None, 0, "0"):
            out["retries"] = int(_sub(retries, self.env))
        if spec.get("start_period") is not None:
            out["start_period"] = _sub(spec["start_period"], self.env)
        for key in sorted(set(spec) - {"test", "interval", "timeout", "retries",
                                       "start_period", "disable"}):
            self.note(f"{at}.healthcheck.{key}", "not carried over")
        return out

    def _depends(self, spec: Any, at: str) -> CommentedMap:
        out = CommentedMap()
        items = {str(d): {"condition": "service_started"} for d in spec} \
            if isinstance(spec, list) else dict(spec or {})
        for dep, opts in items.items():
            opts = opts or {}
            condition = opts.get("condition", "service_started")
            mapped = {"service_healthy": "healthy", "service_started": "started"}.get(condition)
            if mapped is None:
                self.note(f"{at}.depends_on.{dep}", f"condition {condition}: dockyard waits "
                          "for it to start only")
                mapped = "started"
            for key in sorted(set(opts) - {"condition", "required"}):
                self.note(f"{at}.depends_on.{dep}.{key}", "not carried over")
            if opts.get("required") is False:
                self.note(f"{at}.depends_on.{dep}.required", "dockyard always requires it")
            out[self.renames.get(dep, dep)] = _flow({"condition": mapped})
        return out

    def _volumes(self, spec: Any, at: str) -> CommentedSeq:
        out = CommentedSeq()
        for index, vol in enumerate(spec or []):
            where = f"{at}.volumes[{index}]"
            if isinstance(vol, dict):
                kind = vol.get("type", "volume")
                if kind not in ("volume", "bind"):
                    self.note(where, f"a {kind} mount: only volumes and binds are carried over")
                    continue
                for key in sorted(set(vol) - {"type", "source", "target", "read_only"}):
                    self.note(f"{where}.{key}", "not carried over")
                source, target = str(vol.get("source") or ""), str(vol.get("target", ""))
                if kind == "bind" and not source.startswith((".", "/", "~", "$")):
                    source = "./" + source
                text = f"{source}:{target}" if source else target
                if vol.get("read_only"):
                    text += ":ro"
            else:
                text = str(vol)
            source, sep, rest = text.partition(":")
            if sep and source.startswith("."):
                path = self.project.directory / _sub(source, self.env)
                text = f"{self._relative(path)}:{rest}"
            out.append(text)
        return out

    def _env(self, svc: dict[str, Any], at: str) -> CommentedMap:
        env = CommentedMap()
        for entry in _env_file_entries(svc.get("env_file")):
            path = (self.project.directory / _sub(entry["path"], self.env)).resolve()
            values = self.project.env_files.get(str(path))
            if values is None:
                if entry.get("required", True):
                    raise ManifestError(f"{at}.env_file: {path} does not exist",
                                        where=Location(self.project.files[0].name),
                                        fix="create it or mark it `required: false`")
                continue
            env.update({k: _safe(v) for k, v in values.items()})
        environment = svc.get("environment")
        if environment is not None and not isinstance(environment, dict | list):
            raise ValueError(f"environment must be a mapping or a list, got {environment!r}")
        items = _as_mapping(environment) if environment is not None else {}
        for key, value in items.items():
            if not str(key).isprintable() or not str(key):
                self.note(f"{at}.environment", f"variable name {str(key)!r} is not printable")
                continue
            if value is None:
                # `- KEY` passes the host's value through: a variable in the manifest does.
                value = f"${{{key}}}"
                self.note(f"{at}.environment.{key}", f"the host's value is passed as ${{{key}}}"
                          " (empty when unset)")
            elif isinstance(value, bool):
                value = "true" if value else "false"
            env[str(key)] = _safe(str(value))
        return env

    def _resources(self, svc: dict[str, Any], out: CommentedMap, at: str) -> None:
        deploy = svc.get("deploy") or {}
        for key in sorted(set(deploy) - {"resources"}):
            self.note(f"{at}.deploy.{key}", "dockyard runs one container per service")
        resources = deploy.get("resources") or {}
        limits = resources.get("limits") or {}
        reservations = resources.get("reservations") or {}
        cpus = limits.get("cpus", svc.get("cpus"))
        if cpus is not None:
            out["cpus"] = float(_sub(cpus, self.env))
        memory = limits.get("memory", svc.get("mem_limit"))
        if memory is not None:
            out["memory"] = _size(_sub(memory, self.env))
        for key in sorted(set(limits) - {"cpus", "memory"}):
            self.note(f"{at}.deploy.resources.limits.{key}", "not carried over")
        for key in sorted(set(reservations) - {"devices"}):
            self.note(f"{at}.deploy.resources.reservations.{key}", "dockyard sets limits, not "
                      "reservations")
        gpu = None
        for index, device in enumerate(reservations.get("devices") or []):
            where = f"{at}.deploy.resources.reservations.devices[{index}]"
            if "gpu" not in (device.get("capabilities") or []) or gpu is not None:
                self.note(where, "only one GPU reservation is carried over")
                continue
            ids = device.get("device_ids")
            count = _sub(device.get("count", "all" if not ids else len(ids)), self.env)
            if ids:
                gpu = _flow({"device": int(_sub(ids[0], self.env))})
                if len(ids) > 1:
                    self.note(where, f"device_ids {ids}: dockyard gives a service one GPU")
            elif count != "1":
                self.note(where, f"count: {count}: dockyard gives a service one GPU")
                gpu = _flow({"count": 1})
            else:
                gpu = _flow({"count": 1})
            for key in sorted(set(device) - {"capabilities", "device_ids", "count", "driver"}):
                self.note(f"{where}.{key}", "not carried over")
        runtime = svc.get("runtime")
        if runtime is not None:
            self.note(f"{at}.runtime", "the NVIDIA runtime became `gpu: {count: 1}` (a device "
                      "request, no runtime needed)" if runtime == "nvidia" and gpu is None
                      else _DEFAULT_REASON)
            if runtime == "nvidia":
                gpu = gpu or _flow({"count": 1})
        if svc.get("gpus") is not None:
            self.note(f"{at}.gpus", "one GPU is reserved with `gpu:`" if gpu is None
                      else "already given by deploy.resources")
            gpu = gpu or _flow({"count": 1})
        if gpu is not None:
            out["gpu"] = gpu

    def _networks(self, spec: Any, at: str) -> None:
        names = list(spec) if isinstance(spec, dict | list) else []
        for net in names:
            if net != "default":
                self.note(f"{at}.networks.{net}", _REASONS["networks"])


def _printable(text: str) -> str:
    """Text for a YAML comment: a newline or control character would end or break it."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def dockerfile_base(text: str) -> str:
    """The image a Dockerfile's first stage starts FROM, ARG defaults resolved ('' if unknown)."""
    args: dict[str, str] = {}
    joined = re.sub(r"\\\n", " ", text)
    for line in joined.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        keyword = words[0].upper()
        if keyword == "ARG" and len(words) > 1:
            name, _, default = words[1].partition("=")
            args[name] = default.strip("\"'")
        elif keyword == "FROM":
            image = next((w for w in words[1:] if not w.startswith("--")), "")
            try:
                image = interpolate(image, args)
            except InterpolationError:
                return ""
            return "" if not image or "$" in image or image == "scratch" else image
    return ""


def _port_range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


_CURL_FLAGS = re.compile(r"^(-[fsSLk]+|--fail|--silent|--show-error|--location|--insecure|"
                         r"--fail-with-body)$")
_WGET_FLAGS = re.compile(r"^(-q|--quiet|--spider|-O-|-qO-|-qO|-O|/dev/null|--tries=\d+|-nv|"
                         r"--no-verbose|-T\d*|--timeout=\d+|-)$")
_URL = re.compile(r"^https?://(localhost|127\.0\.0\.1|0\.0\.0\.0)(?::(\d+))?(/\S*)?$")


def _http_probe(form: str, words: list[str]) -> tuple[int, str] | None:
    """(port, path) when a health test only fetches a local URL and fails on an HTTP error."""
    if form == "CMD-SHELL":
        shell = re.sub(r"\s*\|\|\s*exit\s+1\s*$", "", " ".join(words))
        if re.search(r"[;&|<>`$]", shell):
            return None
        try:
            words = shlex.split(shell)
        except ValueError:
            return None
    elif form != "CMD":
        return None
    if not words:
        return None
    tool, args = os.path.basename(words[0]), words[1:]
    urls = [a for a in args if _URL.match(a)]
    if len(urls) != 1:
        return None
    flags = [a for a in args if a != urls[0]]
    if tool == "curl":
        fails = any(f in ("--fail", "--fail-with-body") or
                    (f.startswith("-") and not f.startswith("--") and "f" in f) for f in flags)
        if not fails or not all(_CURL_FLAGS.match(f) for f in flags):
            return None
    elif tool == "wget":
        if not all(_WGET_FLAGS.match(f) for f in flags):
            return None
    else:
        return None
    match = _URL.match(urls[0])
    assert match is not None
    if urls[0].startswith("https"):
        return None
    return int(match[2] or 80), match[3] or "/"


def _words(value: Any) -> list[str]:
    """A compose command: a list as is; a string split like a shell would (no shell runs)."""
    if isinstance(value, list):
        return [str(v) for v in value]
    return shlex.split(str(value))


def _size(text: str) -> str | int:
    """A compose size ("512m", "1G", "2gb": all binary, like Docker) for the manifest."""
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?\s*$", text, re.IGNORECASE)
    if not match:
        return text  # the loader says what is wrong with it, located
    power = " kmgtp".index(match[2].lower() or " ")
    n = int(float(match[1]) * 1024**power)
    shown = format_size(n)
    return shown if parse_size(shown) == n else n


# `?` too: libyaml reads `[0?]` (ruamel's flow output) as an unfinished sequence.
_PLAIN = re.compile(r"^[A-Za-z0-9_/.+@=-][^:,#\[\]{}&*!|>'\"%`?]*$")


def _safe(value: Any) -> Any:
    """A string quoted unless plainly safe: ruamel writes `::1` unquoted in flow style, and
    a NEL (\\x85) plain, and cannot read either back as written."""
    if isinstance(value, str) and not (_PLAIN.match(value) and value.isprintable()
                                       and value == value.strip()):
        return DoubleQuotedScalarString(value)
    return value


def _flow(items: dict[str, Any]) -> CommentedMap:
    out = CommentedMap((k, _safe(v)) for k, v in items.items())
    out.fa.set_flow_style()
    return out


def _flow_seq(items: list[str]) -> CommentedSeq:
    out = CommentedSeq(_safe(v) for v in items)
    out.fa.set_flow_style()
    return out


def dump_manifest(doc: CommentedMap) -> str:
    import io

    yaml = YAML(typ="rt")
    yaml.width = 4096  # long commands and URLs stay on one line
    yaml.indent(mapping=2, sequence=4, offset=2)
    buf = io.StringIO()
    yaml.dump(doc, buf)
    return buf.getvalue()


def find_compose(folder: Path) -> Path | None:
    """The compose file `docker compose` would pick in `folder`."""
    return next((folder / n for n in COMPOSE_NAMES if (folder / n).is_file()), None)

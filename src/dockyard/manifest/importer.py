"""`dockyard import`: a compose project (and the Dockerfiles it builds) as a fleet manifest.

Reading the files is `read_project` (the only part that touches the disk); `import_compose`
is a pure function of what was read, and returns the manifest and everything it could not
map, so `dockyard import` can print that list and write it as comments.

Choices worth knowing (they are also written into the manifest's header comment):
- Variables: free text (environment values, commands, images, health commands, volumes) is
  copied as written, `${VAR:?}` included, so dockyard interpolates it at load the way compose
  did; ports, sizes, durations and GPU counts are interpolated now, because they are parsed.
- `env_file:` stays a reference (`env_file:` in the manifest, rendered back to compose), so
  its values, often secrets, never reach fleet.yaml; `environment:` wins over it, as in
  compose. A COMPOSE_PROFILES line in it is compose's, not the container's (`skip:`).
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
    "labels": "dockyard sets its own labels; add yours in a later version",
    "network_mode": "dockyard puts all services of a machine on one network",
    "links": "services reach each other by name on the machine's network",
    "secrets": "pass secrets as required variables, `${VAR:?message}`, in env",
    "configs": "mount the file with a bind volume instead",
    "ipc": "no IPC mode in the manifest yet",
    "extends": "write the merged service out (docker compose config shows it)",
    "logging": "dockyard keeps Docker's default logging",
}
_DEFAULT_REASON = "no dockyard equivalent yet"
# Folders named for the tooling rather than the project (see _Importer._fleet_name).
_TOOLING_FOLDERS = {"docker", "compose", "deploy", "deployment", "deployments", "nvidia", "amd",
                    "intel", "rocm", "cuda", "library"}
_TOP_LEVEL = {"name", "services", "volumes", "networks", "version"}
_CONTAINER_KEYS = {"hostname", "working_dir", "extra_hosts", "init", "tty", "stdin_open",
                   "privileged", "ulimits", "shm_size", "tmpfs", "devices", "cap_add", "cap_drop",
                   "security_opt"}


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
    notes: list[Unmapped] = field(default_factory=list)  # what reading found (include's .env)


@dataclass
class ImportResult:
    manifest: CommentedMap
    unmapped: list[Unmapped]
    profiles: list[str] = field(default_factory=list)  # what compose runs when none is asked

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
    """Read compose files (later override earlier, each with what it `include:`s), the
    Dockerfiles and env files they use. A Dockerfile that is not there is left out: import
    notes it (a profiled or optional build must not stop the import)."""
    directory = paths[0].resolve().parent
    process = dict(os.environ if environ is None else environ)
    env = {**read_dotenv(directory / ".env", process), **process}
    notes: list[Unmapped] = []
    docs = [_read_file(path, directory, env, (), notes) for path in paths]
    project = ComposeProject(merge_compose(docs), directory, list(paths), environ=env)
    project.notes = notes
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
                project.env_files[str(path)] = read_dotenv(path, env) if path.is_file() else None
    return project


def _read_file(path: Path, directory: Path, env: dict[str, str], seen: tuple[Path, ...],
               notes: list[Unmapped]) -> dict[str, Any]:
    """One compose file with its `include:`s merged in, as compose does: each included
    project is read on its own (its relative paths are relative to its folder; they are
    rewritten relative to `directory`, the project's), and its services, volumes and
    networks join the file's; one defined in both is an error, as in compose."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read compose file: {exc}", where=Location(str(path)),
                            fix="pass an existing compose.yaml" if not seen else
                            f"correct the `include:` of {seen[-1].name}") from None
    data = load_compose_text(text, path.name)
    includes = data.pop("include", None)
    if includes is None:
        return data
    if not isinstance(includes, list):
        raise ManifestError("`include:` must be a list of compose files", where=Location(path.name))
    imported: list[dict[str, Any]] = []
    for index, entry in enumerate(includes):
        files, project_dir, env_files = _include_parts(entry, env)
        targets = [(path.parent / f).resolve() for f in files]
        for target in targets:
            if target in seen or target == path.resolve():
                raise ManifestError(f"include[{index}]: {target.name} includes itself (through "
                                    f"{' -> '.join(p.name for p in (*seen, path))})",
                                    where=Location(path.name), fix="remove one `include:`")
        folder = (path.parent / project_dir).resolve() if project_dir else targets[0].parent
        # The included project's own .env: compose reads it for that file alone.
        for env_file in env_files or [".env"]:
            own = (folder / env_file).resolve()
            if own.is_file() and own != (directory / ".env").resolve():
                extra = {k: v for k, v in read_dotenv(own, env).items() if k not in env}
                env.update(extra)
                notes.append(Unmapped(f"include[{index}]", f"{target.name} reads variables from "
                                      f"{own}; dockyard reads one .env, beside fleet.yaml: add "
                                      f"its lines there ({len(extra)} not set otherwise)"))
        docs = [_read_file(t, folder, env, (*seen, path.resolve()), notes) for t in targets]
        included = merge_compose(docs)
        if folder != directory:
            for svc in (included.get("services") or {}).values():
                _rebase_service(svc or {}, folder, directory)
        imported.append(included)
    out = merge_compose(imported)
    for key, value in data.items():
        mine = out.get(key)
        if key in ("services", "volumes", "networks", "secrets", "configs") \
                and isinstance(mine, dict) and isinstance(value, dict):
            clash = sorted(set(mine) & set(value))
            if clash:
                raise ManifestError(f"{key}.{clash[0]} is defined in {path.name} and in a file it "
                                    "includes", where=Location(path.name),
                                    fix="compose refuses it too: keep one definition")
            out[key] = {**mine, **value}
        else:
            out[key] = value
    return out


def _include_parts(entry: Any, env: Mapping[str, str]) -> tuple[list[str], str, list[str]]:
    """(files, project_directory, env files) of one `include:` entry, short or long form."""
    if isinstance(entry, str):
        return [_sub(entry, env)], "", []
    if not isinstance(entry, dict) or not entry.get("path"):
        raise ManifestError(f"include: expected a file or {{path: ...}}, got {entry!r}")
    files = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
    env_files = entry.get("env_file") or []
    return ([_sub(f, env) for f in files], _sub(entry.get("project_directory") or "", env),
            [_sub(f, env) for f in (env_files if isinstance(env_files, list) else [env_files])])


def _rebase_service(svc: dict[str, Any], folder: Path, directory: Path) -> None:
    """Relative paths of an included service (build context, bind sources, env files), read
    from `folder`, written relative to `directory`."""

    def moved(text: str) -> str:
        if text.startswith(("/", "~")) or "$" in text:
            return text
        rel = os.path.relpath((folder / text).resolve(), directory)
        return rel if rel.startswith("..") else f"./{rel}"

    build = svc.get("build")
    if isinstance(build, str):
        svc["build"] = moved(build) if not re.match(r"^[a-z]+://|^git@", build) else build
    elif isinstance(build, dict) and isinstance(build.get("context", "."), str):
        svc["build"] = {**build, "context": moved(build.get("context", "."))}
    volumes = []
    for vol in svc.get("volumes") or []:
        if isinstance(vol, str) and vol.startswith("."):
            source, sep, rest = vol.partition(":")
            vol = f"{moved(source)}{sep}{rest}"
        elif isinstance(vol, dict) and vol.get("type") == "bind" \
                and isinstance(vol.get("source"), str):
            vol = {**vol, "source": moved(vol["source"]) if vol["source"].startswith(".")
                   else vol["source"]}
        volumes.append(vol)
    if volumes:
        svc["volumes"] = volumes
    env_file = svc.get("env_file")
    if env_file is not None:
        entries = env_file if isinstance(env_file, list) else [env_file]
        svc["env_file"] = [{**e, "path": moved(str(e.get("path", "")))} if isinstance(e, dict)
                           else moved(str(e)) for e in entries]


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
        self.network_renames: dict[str, str] = {}
        self.profiles: list[str] = []

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
        name = fleet or self._fleet_name()
        if not is_name(name):
            raise ManifestError(f"fleet name {name!r} must be lowercase letters, digits, '-', "
                                "'_' or '.'", fix=f"pass --fleet {fleet_name(name)}")
        services_in = data.get("services") or {}
        if not services_in:
            raise ManifestError("the compose project has no services",
                                where=Location(self.project.files[0].name))
        self.unmapped.extend(self.project.notes)
        dotenv = self.project.directory / ".env"
        if dotenv.resolve() != (self.out_dir / ".env").resolve() and ".env" in \
                self.project.env_files_seen:
            self.note(".env", f"compose reads variables from {dotenv}; dockyard reads the .env "
                      "beside fleet.yaml: copy it there")
        self.profiles = [p.strip() for p in self.env.get("COMPOSE_PROFILES", "").split(",")
                         if p.strip()]
        if self.profiles:
            flags = " ".join(f"--profile {p}" for p in self.profiles)
            self.note("COMPOSE_PROFILES", f"compose starts profiles {', '.join(self.profiles)} "
                      f"when none is asked for; dockyard starts the ones asked for: "
                      f"`dockyard up {flags}`")
        for key in data:
            if key not in _TOP_LEVEL and not str(key).startswith("x-"):
                self.note(str(key), _REASONS.get(str(key), _DEFAULT_REASON))
        for vol, spec in (data.get("volumes") or {}).items():
            for key, value in (spec or {}).items():
                if (key, value) != ("driver", "local"):  # the default, said out loud
                    self.note(f"volumes.{vol}.{key}", "dockyard creates plain local named "
                              "volumes")
        for svc in services_in:
            new = fleet_name(str(svc))
            if new != svc:
                self.renames[str(svc)] = new
                self.note(f"services.{svc}", f"renamed to {new} (dockyard names are lowercase)")
        networks = self._fleet_networks(data.get("networks"))
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
        if networks:
            doc["networks"] = networks
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
        return ImportResult(doc, self.unmapped, self.profiles)

    def _fleet_name(self) -> str:
        """The compose project's name; a folder named for its tooling (docker/, deploy/,
        nvidia/) gives way to the folder above it: dockyard tags the images it builds
        <fleet>/<service>, and docker/<service> or nvidia/<service> is an organisation on
        Docker Hub, where a plain `docker compose pull` would look for it."""
        given = self.project.data.get("name")
        if given:
            return fleet_name(_sub(given, self.env))
        folder = self.project.directory
        name = fleet_name(folder.name)
        while name in _TOOLING_FOLDERS and folder.parent != folder:
            folder = folder.parent
            name = fleet_name(folder.name)
        if name in _TOOLING_FOLDERS or name == "imported":
            name = "imported"
        if name != fleet_name(self.project.directory.name):
            self.note("name", f"compose names the project {self.project.directory.name!r} after "
                      f"its folder; the fleet is {name!r}: images dockyard builds are tagged "
                      f"<fleet>/<service>, and {fleet_name(self.project.directory.name)}/... "
                      "is an organisation on Docker Hub (pass --fleet to choose)")
        return name

    def _fleet_networks(self, spec: Any) -> CommentedMap:
        """Top-level `networks:` as the manifest's: name, driver, internal, external."""
        out = CommentedMap()
        for net, value in (spec or {}).items():
            value = value or {}
            new = fleet_name(str(net))
            if new != net:
                self.network_renames[str(net)] = new
                self.note(f"networks.{net}", f"renamed to {new} (dockyard names are lowercase)")
            entry = CommentedMap()
            external = value.get("external")
            if isinstance(external, dict):  # the old `external: {name: x}`
                entry["external"] = True
                if external.get("name"):
                    entry["name"] = _sub(external["name"], self.env)
            elif external is not None and _bool(_sub(external, self.env)):
                entry["external"] = True
            if value.get("name") is not None:
                entry["name"] = _sub(value["name"], self.env)
            if value.get("driver") is not None:
                entry["driver"] = _sub(value["driver"], self.env)
            if value.get("internal") is not None and _bool(_sub(value["internal"], self.env)):
                entry["internal"] = True
            for key in sorted(set(value) - {"name", "driver", "internal", "external"}):
                self.note(f"networks.{net}.{key}", "not carried over (dockyard sets a network's "
                          "name, driver, internal and external)")
            out[new] = _flow(dict(entry)) if entry else CommentedMap()
        return out

    def _original(self, name: str) -> str:
        return next((old for old, new in self.renames.items() if new == name), name)

    def _header(self, doc: CommentedMap) -> None:
        files = ", ".join(p.name for p in self.project.files)
        lines = [
            f"imported by `dockyard import` from {files}",
            "env_file stays a file compose reads; compose defaults dockyard does not share",
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
                   "restart", "user", "networks", "cpus", "mem_limit", "runtime",
                   "container_name", *_CONTAINER_KEYS}
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
        if health is False:
            out["image_health"] = False
        elif health is not None:
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
        env_files = self._env_files(svc, at)
        if env_files:
            out["env_file"] = env_files
        if svc.get("profiles"):
            out["profiles"] = _flow_seq([str(p) for p in svc["profiles"]])
        self._resources(svc, out, at)
        self._container(svc, out, at)
        self._networks(name, svc, out, at)
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
        args = CommentedMap()
        if isinstance(svc["build"], dict):
            for key in svc["build"]:
                if key not in ("context", "dockerfile", "args"):
                    self.note(f"{at}.build.{key}", "only a build context, a Dockerfile and "
                              "args are carried over")
            for key, value in _as_mapping(svc["build"].get("args")).items():
                if value is None and key not in self.env:
                    self.note(f"{at}.build.args.{key}", "taken from the environment, where it "
                              "is not set: left to the Dockerfile's default")
                    continue
                args[str(key)] = _safe(f"${{{key}}}" if value is None else str(value))
        if svc.get("image"):
            self.note(f"{at}.image", f"{svc['image']}: dockyard tags the images it builds "
                      "<fleet>/<service>:current")
        path = (self.project.directory / context / dockerfile).resolve()
        text = self.project.dockerfiles.get(str(path))
        if text is None:
            self.note(f"{at}.build", f"no Dockerfile at {path} (an optional build?): its family "
                      "is based on debian:bookworm-slim until it is there; `dockyard build` "
                      "needs it")
            base = "debian:bookworm-slim"
        else:
            base = dockerfile_base(text, {k: _sub(v, self.env) for k, v in args.items()})
        if text is not None and not base:
            self.note(f"{at}.build", "the Dockerfile's FROM could not be read; its family is "
                      "based on debian:bookworm-slim")
            base = "debian:bookworm-slim"
        family = fleet_name(base.split("@")[0].replace("/", "-").replace(":", "-"))
        self.families[family] = base
        out["family"] = family
        out["build"] = self._relative(self.project.directory / context)
        out["dockerfile"] = dockerfile
        if args:
            out["build_args"] = args

    def _container(self, svc: dict[str, Any], out: CommentedMap, at: str) -> None:
        """Settings of the container itself, under the manifest's keys of the same names."""
        for key in ("hostname", "working_dir"):
            if svc.get(key) is not None:
                out[key] = _safe(str(svc[key]))
        hosts = svc.get("extra_hosts")
        if hosts:
            mapping = CommentedMap()
            items = hosts.items() if isinstance(hosts, dict) else \
                [_host_entry(_sub(h, self.env)) for h in hosts]
            for host, addr in items:
                addresses = addr if isinstance(addr, list) else [addr]
                if len(addresses) > 1:
                    self.note(f"{at}.extra_hosts.{host}", "one address per host name is carried "
                              "over")
                mapping[str(host)] = _safe(str(addresses[0]))
            out["extra_hosts"] = mapping
        for key in ("init", "tty", "stdin_open", "privileged"):
            if svc.get(key) is not None:
                value = _bool(_sub(svc[key], self.env))
                if value or key == "init":
                    out[key] = value
        limits = CommentedMap()
        for limit, value in (svc.get("ulimits") or {}).items():
            if isinstance(value, dict):
                limits[str(limit)] = _flow({"soft": int(_sub(value["soft"], self.env)),
                                            "hard": int(_sub(value["hard"], self.env))})
            else:
                limits[str(limit)] = int(_sub(value, self.env))
        if limits:
            out["ulimits"] = limits
        if svc.get("shm_size") is not None:
            out["shm_size"] = _size(_sub(svc["shm_size"], self.env))
        for key in ("tmpfs", "devices", "cap_add", "cap_drop", "security_opt"):
            given = svc.get(key)
            if not given:
                continue
            listed = [given] if isinstance(given, str | dict) else list(given)
            words: list[str] = []
            for index, item in enumerate(listed):
                if isinstance(item, dict):  # the long device syntax
                    text = ":".join(str(item.get(k)) for k in ("source", "target", "permissions")
                                    if item.get(k))
                    if not text:
                        self.note(f"{at}.{key}[{index}]", f"cannot read {item!r}")
                        continue
                    item = text
                word = str(item)
                if word not in words:  # compose refuses a repeated item
                    words.append(word)
            out[key] = _flow_seq(words) if len(words) < 4 else CommentedSeq(map(_safe, words))

    def _networks(self, name: str, svc: dict[str, Any], out: CommentedMap, at: str) -> None:
        """The service's networks, with aliases; its container_name and hostname stay names
        other services reach it by (compose projects dial them: `http://ollama:11434`)."""
        spec = svc.get("networks")
        if svc.get("network_mode") is not None:
            return  # noted: the container shares another's network
        entries: dict[str, list[str]] = {}
        if isinstance(spec, list):
            entries = {str(n): [] for n in spec}
        elif isinstance(spec, dict):
            for net, value in spec.items():
                value = value or {}
                aliases = [_sub(a, self.env) for a in value.get("aliases") or []]
                entries[str(net)] = aliases
                for key in sorted(set(value) - {"aliases"}):
                    self.note(f"{at}.networks.{net}.{key}", "not carried over (dockyard sets "
                              "aliases)")
        named = [_sub(svc[k], self.env) for k in ("container_name", "hostname") if svc.get(k)]
        extra = [n for n in dict.fromkeys(named) if n != name]
        if svc.get("container_name"):
            self.note(f"{at}.container_name", "dockyard names containers "
                      f"<fleet>-<service>-1; {_sub(svc['container_name'], self.env)} stays a "
                      "name other services reach it by (a network alias)")
        if not entries and not extra:
            return
        nets = CommentedMap()
        for net, aliases in (entries or {"default": []}).items():
            both = list(dict.fromkeys([*aliases, *extra]))
            renamed = self.network_renames.get(net, net)
            nets[renamed] = _flow({"aliases": _flow_seq(both)}) if both else None
        if all(v is None for v in nets.values()):
            out["networks"] = _flow_seq(list(nets))
        else:
            for key, value in nets.items():
                if value is None:
                    nets[key] = CommentedMap()
            out["networks"] = nets

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
        # An empty host address (":8080:80") is every interface, as in compose.
        match = re.match(r"^(?:(?:\[(?P<ip6>[^\]]+)\]|(?P<ip>[^:\[\]]*)):)??"
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

    def _health(self, spec: Any, at: str) -> CommentedMap | bool | None:
        """The manifest's `health:`; False: the image's own HEALTHCHECK switched off. A test
        keeps its form: exec-form stays exec-form (no /bin/sh needed); a shell-form one that
        only fetches a local URL becomes an `http:` check (rendered shell-form again)."""
        if not isinstance(spec, dict) or not spec:
            return None
        test = spec.get("test")
        if (spec.get("disable") is not None and _bool(_sub(spec["disable"], self.env))) \
                or test in (["NONE"], "NONE"):
            if test not in (None, ["NONE"], "NONE"):
                self.note(f"{at}.healthcheck.test", f"switched off by `disable: "
                          f"{spec.get('disable')}`: the manifest says `image_health: false`; "
                          "write the test as `health:` to switch it on")
            return False
        if test is None:
            if set(spec) - {"disable"}:
                self.note(f"{at}.healthcheck", "no `test:`: it only changes the image's own "
                          "HEALTHCHECK timing, which dockyard cannot express")
            return None
        if isinstance(test, str):
            form, words = "CMD-SHELL", [test]
        else:
            form, words = str(test[0]), [str(w) for w in test[1:]]
        out = CommentedMap()
        probe = _http_probe(form, [_sub(w, self.env) for w in words]) \
            if form == "CMD-SHELL" else None
        if probe:
            out["http"], out["port"] = probe[1], probe[0]
        elif form == "CMD-SHELL":
            out["cmd"] = _safe(" ".join(words))
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
            mapped = {"service_healthy": "healthy", "service_started": "started",
                      "service_completed_successfully": "completed"}.get(condition)
            if mapped is None:
                self.note(f"{at}.depends_on.{dep}", f"condition {condition}: dockyard waits "
                          "for it to start only")
                mapped = "started"
            for key in sorted(set(opts) - {"condition", "required", "restart"}):
                self.note(f"{at}.depends_on.{dep}.{key}", "not carried over")
            entry: dict[str, Any] = {"condition": mapped}
            if opts.get("required") is not None and not _bool(_sub(opts["required"], self.env)):
                entry["required"] = False
            if opts.get("restart") is not None and _bool(_sub(opts["restart"], self.env)):
                entry["restart"] = True
            out[self.renames.get(dep, dep)] = _flow(entry)
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
            if "$" in text.split(":/")[0] and self.project.directory != self.out_dir:
                # `${DATA:-.}/db:/db`: a relative bind once resolved moves with the manifest.
                resolved = _sub(text, self.env)
                if resolved.startswith(".") and "$" not in resolved:
                    text = resolved
            source, sep, rest = text.partition(":")
            if sep and source.startswith("."):
                path = self.project.directory / _sub(source, self.env)
                text = f"{self._relative(path)}:{rest}"
            out.append(text)
        return out

    def _env_files(self, svc: dict[str, Any], at: str) -> list[Any]:
        """The service's env files, as paths from the manifest: compose reads them when the
        container starts, so their values (secrets, often) stay out of fleet.yaml."""
        out: list[Any] = []
        explicit = svc.get("environment")
        named = _as_mapping(explicit if isinstance(explicit, dict | list) else None)
        for entry in _env_file_entries(svc.get("env_file")):
            path = (self.project.directory / _sub(entry["path"], self.env)).resolve()
            values = self.project.env_files.get(str(path))
            required = bool(entry.get("required", True))
            if values is None and required:
                raise ManifestError(f"{at}.env_file: {path} does not exist",
                                    where=Location(self.project.files[0].name),
                                    fix="create it or mark it `required: false`")
            item = CommentedMap(path=_safe(self._relative(path)))
            if not required:
                item["required"] = False
            if values and "COMPOSE_PROFILES" in values and "COMPOSE_PROFILES" not in named:
                # The project's .env as an env_file: its profile choice is compose's, not the
                # container's.
                item["skip"] = _flow_seq(["COMPOSE_PROFILES"])
                self.note(f"{at}.environment.COMPOSE_PROFILES", f"from {entry['path']}: it "
                          "selects compose profiles (see COMPOSE_PROFILES); the container is "
                          "not given it")
            if list(item) == ["path"]:
                out.append(item["path"])
            else:
                item.fa.set_flow_style()
                out.append(item)
        return _flow_seq(out) if all(isinstance(i, str) for i in out) else out

    def _env(self, svc: dict[str, Any], at: str) -> CommentedMap:
        env = CommentedMap()
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
                if key not in self.env:
                    self.note(f"{at}.environment.{key}", f"the host's value is passed as "
                              f"${{{key}}} (compose leaves it out when unset; dockyard sets it "
                              "empty)")
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
            elif count.lower() in ("all", "-1"):
                gpu = _flow({"count": "all"})
            else:
                gpu = _flow({"count": int(count)})
            driver = _sub(device.get("driver") or "nvidia", self.env)
            if driver != "nvidia":
                self.note(f"{where}.driver", f"{driver}: dockyard reserves NVIDIA GPUs")
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


def _printable(text: str) -> str:
    """Text for a YAML comment: a newline or control character would end or break it."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def dockerfile_base(text: str, build_args: Mapping[str, str] | None = None) -> str:
    """The image a Dockerfile's first stage starts FROM, ARG defaults (or the build's args)
    resolved ('' if unknown)."""
    given = dict(build_args or {})
    args: dict[str, str] = {}
    joined = re.sub(r"\\\n", " ", text)
    for line in joined.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        keyword = words[0].upper()
        if keyword == "ARG" and len(words) > 1:
            name, _, default = words[1].partition("=")
            args[name] = given.get(name, default.strip("\"'"))
        elif keyword == "FROM":
            image = next((w for w in words[1:] if not w.startswith("--")), "")
            try:
                image = interpolate(image, args)
            except InterpolationError:
                return ""
            return "" if not image or "$" in image or image == "scratch" else image
    return ""


def _bool(value: Any) -> bool:
    """A compose boolean: YAML's, or the strings compose takes for one."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1", "y"):
        return True
    if text in ("false", "no", "off", "0", "n", ""):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _host_entry(text: str) -> tuple[str, str]:
    """`host:address` or `host=address` (which also holds an IPv6 address: `a=::1`)."""
    host, sep, addr = text.partition("=")
    if not sep:
        host, sep, addr = text.partition(":")
    if not sep or not host:
        raise ValueError(f"extra_hosts: expected host:address, got {text!r}")
    return host.strip(), addr.strip().strip("[]") if addr.startswith("[") else addr.strip()


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

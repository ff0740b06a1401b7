"""Read fleet.yaml into a typed Fleet, with every error located at file:line:col."""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver

from dockyard.errors import InterpolationError, Location, ManifestError
from dockyard.gcpause import gc_paused
from dockyard.manifest.interpolate import (
    interpolate,
    keep_secrets,
    read_dotenv,
    secret_variables,
    variables,
)
from dockyard.manifest.models import FleetSpec

Path_ = tuple[str | int, ...]
MANIFEST_NAMES = ("fleet.yaml", "fleet.yml", "dockyard.yaml")
MAX_BYTES = 8 * 1024 * 1024
MAX_VALUES = 1_000_000  # after aliases are expanded: stops a "billion laughs" manifest
STR_TAG = "tag:yaml.org,2002:str"
MERGE_TAG = "tag:yaml.org,2002:merge"



@dataclass(frozen=True)
class Fleet:
    """A validated manifest, where it came from, and where each of its parts is written."""

    spec: FleetSpec
    path: Path
    positions: Mapping[Path_, tuple[int, int]] = field(default_factory=dict)
    # The text as written, before ${VAR} interpolation, of every string that had a `$`.
    raw: Mapping[Path_, str] = field(default_factory=dict)
    # Those of them that name a secret (interpolate.secret_variables), in compose's words:
    # the secret kept as `${VAR}`, other variables filled in. Rendered files write these.
    references: Mapping[Path_, str] = field(default_factory=dict)
    # The values compose needs for them (the variables they name that are set): what
    # `up` hands to compose through its environment, never written to a file.
    compose_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        """The folder that relative paths in the manifest start from."""
        return self.path.parent

    def where(self, *path: str | int) -> Location:
        """The location of `path` (e.g. "services", "core", "ports"), or its nearest parent."""
        probe: Path_ = tuple(path)
        while probe and probe not in self.positions:
            probe = probe[:-1]
        line, col = self.positions.get(probe, (0, 0))
        return Location(self.path.name if line else str(self.path.name), line, col)


def find_manifest(start: Path) -> Path | None:
    """The manifest in `start` or the nearest parent folder, like compose finds its file."""
    for folder in (start, *start.parents):
        for name in MANIFEST_NAMES:
            if (folder / name).is_file():
                return folder / name
    return None


def load(path: Path, environ: Mapping[str, str] | None = None, *,
         lenient: bool = False) -> Fleet:
    """Load and validate a manifest; raise ManifestError listing every problem, located.

    `lenient`: a required variable that is not set (`${API_TOKEN:?}`, a secret in `.env`)
    stays as written instead of being an error: for commands that need no values (`down`)."""
    name = path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ManifestError(
            f"cannot read manifest: {exc.strerror or exc}", where=Location(str(path)),
            fix="pass an existing fleet.yaml with -f",
        ) from None
    if len(raw) > MAX_BYTES:
        raise ManifestError(f"manifest is {len(raw)} bytes; the limit is {MAX_BYTES}",
                            where=Location(name))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        where = Location(name, raw.count(b"\n", 0, exc.start) + 1, exc.start - line_start + 1)
        raise ManifestError(f"manifest is not UTF-8 text (byte {exc.start}, {raw[exc.start]:#04x})",
                            where=where, fix="save the file as UTF-8") from None
    process = environ if environ is not None else os.environ
    env = {**read_dotenv(path.parent / ".env", process), **process}
    return loads(text, name=name, path=path, environ=env, lenient=lenient)


@gc_paused
def loads(text: str, *, name: str = "fleet.yaml", path: Path | None = None,
          environ: Mapping[str, str] | None = None, lenient: bool = False) -> Fleet:
    """Like `load`, from text (tests and the embedded example use it)."""
    env = dict(environ or {})
    _check_flow_depth(text, name)
    try:
        tree = _compose(text)
    except (YAMLError, RecursionError, ValueError) as exc:
        raise yaml_error(exc, name) from None
    if tree is None:
        raise ManifestError("manifest is empty", where=Location(name, 1, 1),
                            fix="start with `fleet: NAME`, `machines:` and `services:`")
    if not isinstance(tree, MappingNode):
        raise ManifestError("manifest must be a mapping of keys (fleet, machines, services, ...)",
                            where=Location(name, 1, 1), fix="start with `fleet: NAME`")
    positions: dict[Path_, tuple[int, int]] = {}
    problems: list[str] = []
    raw: dict[Path_, str] = {}
    try:
        data = _Walk(env, positions, problems, name, raw, lenient).value(tree, (), depth=0)
    except RecursionError:
        raise ManifestError("manifest nests too deeply", where=Location(name)) from None
    if problems:
        raise ManifestError("\n".join(problems))
    try:
        spec = FleetSpec.model_validate(data)
    except ValidationError as exc:
        raise ManifestError("\n".join(_explain(exc, positions, name))) from None
    references = _secret_references(raw, env)
    fleet = Fleet(spec=spec, path=path or Path(name), positions=positions, raw=raw,
                  references=references, compose_env=_compose_env(references, env))
    _check_references(fleet)
    return fleet


def _secret_references(raw: Mapping[Path_, str], env: Mapping[str, str]) -> dict[Path_, str]:
    secrets = secret_variables(raw.values())
    if not secrets:
        return {}
    return {at: ref for at, text in raw.items()
            if (ref := keep_secrets(text, env, secrets)) is not None}


def _compose_env(references: Mapping[Path_, str], env: Mapping[str, str]) -> dict[str, str]:
    # COMPOSE_* variables set compose itself (profiles, project, files): never handed on.
    names = {name for text in references.values() for name, _ in variables(text)
             if not name.startswith("COMPOSE_")}
    return {name: env[name] for name in sorted(names) if name in env}


def yaml_error(exc: Exception, name: str, what: str = "YAML",
               fix: str = "check indentation, quotes and duplicate keys here") -> ManifestError:
    """A parser's error as one located line: `name:LINE:COL: invalid YAML: problem`."""
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = Location(name, mark.line + 1, mark.column + 1) if mark else Location(name)
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p) or "invalid YAML"
        return ManifestError(f"invalid {what}: {problem}", where=where, fix=fix)
    first = str(exc).splitlines()[0] if str(exc) else repr(exc)
    return ManifestError(f"invalid {what}: {first}", where=Location(name))


def _check_flow_depth(text: str, name: str, limit: int = 64) -> None:
    """Refuse `[[[[...` before parsing: ruamel takes seconds on a few thousand open brackets
    before it gives up with a RecursionError. Brackets inside quotes or comments count too,
    which only matters past `limit` of them left open: no real manifest does that."""
    depth = 0
    for match in re.finditer(r"[\[\]{}]", text):
        depth += 1 if match[0] in "[{" else -1
        if depth > limit:
            line = text.count("\n", 0, match.start()) + 1
            col = match.start() - text.rfind("\n", 0, match.start())
            raise ManifestError(f"manifest nests deeper than {limit} levels",
                                where=Location(name, line, col))


class _CachedResolver(VersionedResolver):
    """ruamel's YAML 1.2 resolver, remembering its answer per scalar text: a manifest repeats
    the same words thousands of times, and resolving is most of the parse time otherwise."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._seen: dict[tuple[Any, Any, Any], Any] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        key = (kind, value, implicit)  # a node class, its text, a pair of bools: hashable
        tag = self._seen.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(self._seen) < 100_000:
                self._seen[key] = tag
        return tag


def _compose(text: str) -> Node | None:
    """The YAML node tree; nodes carry their line and column, and `_Walk` builds values from
    it (ruamel's round-trip loader is ten times slower). libyaml's parser (ruamel.yaml.clib)
    is tried first; it reads YAML 1.1, which refuses some YAML 1.2 such as `[app:app]` in a
    flow list, so on any error ruamel's own YAML 1.2 parser decides, and words the error."""
    for pure in (False, True):
        yaml = YAML(typ="safe", pure=pure)
        yaml.Resolver = _CachedResolver
        try:
            node: Node | None = yaml.compose(text)
            return node
        except YAMLError:
            if pure:
                raise
    return None


class _Walk:
    """The node tree as plain data: variables interpolated, positions recorded (1-based),
    merge keys (`<<:`) applied, duplicate and non-scalar keys reported."""

    def __init__(self, env: Mapping[str, str], positions: dict[Path_, tuple[int, int]],
                 problems: list[str], name: str, raw: dict[Path_, str],
                 lenient: bool = False) -> None:
        self.env, self.positions, self.problems = env, positions, problems
        self.name, self.raw, self.lenient = name, raw, lenient
        self.constructor = YAML(typ="safe", pure=True).constructor
        self.count = 0

    def where(self, node: Node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def value(self, node: Node, at: Path_, depth: int) -> Any:
        if depth > 64:
            raise ManifestError("manifest nests deeper than 64 levels",
                                where=Location(self.name, *self.where(node)))
        self.count += 1
        if self.count > MAX_VALUES:
            raise ManifestError(f"manifest expands to more than {MAX_VALUES} values",
                                where=Location(self.name),
                                fix="use fewer nested `*alias` references")
        if isinstance(node, MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in self.pairs(node, depth):
                line, col = self.where(key_node)
                key = self.scalar(key_node) if isinstance(key_node, ScalarNode) else key_node
                if not isinstance(key, str | int | float | bool) or key is None:
                    shown = "a mapping" if isinstance(key, Node) else repr(key)
                    self.problems.append(f"{self.name}:{line}:{col}: keys must be plain words, "
                                         f"got {shown}")
                    continue
                child_at = (*at, str(key))
                self.positions[child_at] = (line, col)
                out[str(key)] = self.value(value_node, child_at, depth + 1)
            return out
        if isinstance(node, SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.positions[(*at, index)] = self.where(item)
                items.append(self.value(item, (*at, index), depth + 1))
            return items
        found = self.scalar(node)
        if isinstance(found, str):
            if "$" in found:
                self.raw[at] = found
            try:
                return interpolate(found, self.env, lenient=self.lenient)
            except InterpolationError as exc:
                line, col = self.positions.get(at, self.where(node))
                self.problems.append(f"{Location(self.name, line, col)}: "
                                     f"{'.'.join(map(str, at))}: {exc}")
        return found

    def pairs(self, node: MappingNode, depth: int) -> list[tuple[Node, Node]]:
        """The mapping's entries, `<<:` merges expanded in place; a key written in the mapping
        itself wins over a merged one, and an earlier merged map over a later one."""
        own: dict[Any, Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG or not isinstance(key_node, ScalarNode):
                continue
            key = self.scalar(key_node)
            if isinstance(key, list | dict):
                continue
            try:
                hash(key)
            except TypeError:
                continue
            if key in own:
                line, col = self.where(key_node)
                raise ManifestError(f"duplicate key `{key}`: it is already set above in this "
                                    "mapping", where=Location(self.name, line, col),
                                    fix=f"keep one `{key}:` and merge the two")
            own[key] = key_node
        out: list[tuple[Node, Node]] = []
        taken = set(own)
        for key_node, value_node in node.value:
            if key_node.tag != MERGE_TAG:
                out.append((key_node, value_node))
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, MappingNode):
                    line, col = self.where(source)
                    raise ManifestError("`<<:` merges only mappings (an `*alias` of a mapping, "
                                        "or a list of them)", where=Location(self.name, line, col))
                if depth > 64:
                    raise ManifestError("manifest nests deeper than 64 levels",
                                        where=Location(self.name, *self.where(source)))
                for merged_key, merged_value in self.pairs(source, depth + 1):
                    key = self.scalar(merged_key) if isinstance(merged_key, ScalarNode) else None
                    try:
                        if key in taken:
                            continue
                        taken.add(key)
                    except TypeError:
                        pass
                    out.append((merged_key, merged_value))
        return out

    def scalar(self, node: Node) -> Any:
        if node.tag == STR_TAG:
            return str(node.value)
        try:
            return self.constructor.construct_object(node, deep=True)
        except YAMLError as exc:
            line, col = self.where(node)
            raise ManifestError(f"invalid YAML value: {str(exc).splitlines()[0]}",
                                where=Location(self.name, line, col),
                                fix="quote the value to keep it as text") from None


def _explain(exc: ValidationError, positions: Mapping[Path_, tuple[int, int]],
             name: str) -> list[str]:
    """One line per problem, in the order they are written in the file."""
    found_lines: list[tuple[int, int, str]] = []
    suggested: set[tuple[Any, ...]] = set()  # keys a "did you mean" already names
    errors = exc.errors()
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(loc[-1]), sorted(_allowed_keys(loc[:-1])), n=1,
                                              cutoff=0.6)
            suggested.update((*loc[:-1], c) for c in close)
    for error in errors:
        loc = tuple(error["loc"])
        found = loc
        while found and found not in positions:
            found = found[:-1]
        line, col = positions.get(found, (1, 1))
        where = Location(name, line, col)
        dotted = ".".join(str(p) for p in found) or "(top level)"
        kind = error["type"]
        value = error.get("input")
        if kind == "extra_forbidden":
            key = str(loc[-1])
            allowed = sorted(_allowed_keys(loc[:-1]))
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = f"did you mean `{close[0]}`?" if close else "allowed: " + ", ".join(allowed)
            text = f"{where}: {dotted}: unknown key `{key}` ({hint})"
        elif kind == "missing" and loc in suggested:
            continue  # `servces:` is one problem: its "did you mean `services`?" says it all
        elif kind == "missing":
            parent = ".".join(str(p) for p in loc[:-1]) or "the top level"
            text = f"{where}: {parent}: missing required key `{loc[-1]}` (add `{loc[-1]}:`)"
        elif kind in ("model_type", "model_attributes_type", "dict_type") and value is None:
            text = f"{where}: {dotted}: is empty; expected `key: value` entries here"
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            got = "a list" if isinstance(value, list) else repr(value)
            text = f"{where}: {dotted}: expected `key: value` entries here, got {got}"
        elif kind == "too_short" and isinstance(value, dict | list):
            text = f"{where}: {dotted}: needs at least one entry"
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            shown = f" (got {value!r})"
            if isinstance(value, dict | list) or shown[6:-1] in message:
                shown = ""
            text = f"{where}: {dotted}: {message}{shown}"
        found_lines.append((line, col, text))
    return [text for _, _, text in sorted(found_lines, key=lambda found: found[:2])]


def _allowed_keys(loc: tuple[Any, ...]) -> set[str]:
    """The keys the model at `loc` accepts, found by walking FleetSpec's annotations."""
    current: Any = FleetSpec
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = current.model_fields
            match = next((f for n, f in fields.items() if part in (n, f.alias)), None)
            if match is None:
                return set()
            current = match.annotation
        elif typing.get_origin(current) in (dict, list):
            current = typing.get_args(current)[-1]
        else:
            return set()
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return {f.alias or n for n, f in current.model_fields.items()}
    return set()


def _unwrap(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        models = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(models[0]) if len(models) == 1 else annotation
    return annotation


def _check_references(fleet: Fleet) -> None:
    """Names that must exist: machines, families, networks and dependencies referred to by
    name."""
    spec = fleet.spec
    problems: list[str] = []

    def unknown(what: str, value: str, known: Iterator[str] | list[str], *path: str | int) -> None:
        names = sorted(known)
        close = difflib.get_close_matches(value, names, n=1, cutoff=0.6)
        hint = f"did you mean `{close[0]}`?" if close else "known: " + (", ".join(names) or "none")
        problems.append(f"{fleet.where(*path)}: {'.'.join(map(str, path))}: "
                        f"unknown {what} `{value}` ({hint})")

    for fam_name, fam in spec.families.items():
        if fam.from_ == fam_name:
            problems.append(f"{fleet.where('families', fam_name, 'from')}: families.{fam_name}."
                            f"from: a family cannot be built from itself")
    for svc_name, svc in spec.services.items():
        if svc.family and svc.family not in spec.families:
            unknown("family", svc.family, list(spec.families), "services", svc_name, "family")
        if svc.machine and svc.machine not in spec.machines:
            unknown("machine", svc.machine, list(spec.machines), "services", svc_name, "machine")
        for index, machine in enumerate(svc.machines):
            if machine not in spec.machines:
                unknown("machine", machine, list(spec.machines),
                        "services", svc_name, "machines", index)
        for index, dep in enumerate(svc.depends_on):
            # Written as a mapping (`db: {condition: ...}`) or a list (`[db]`): point at the entry.
            entry: str | int = dep if ("services", svc_name, "depends_on", dep) in fleet.positions \
                else index
            if dep not in spec.services:
                unknown("service", dep, list(spec.services),
                        "services", svc_name, "depends_on", entry)
            elif dep == svc_name:
                problems.append(f"{fleet.where('services', svc_name, 'depends_on', entry)}: "
                                f"services.{svc_name}.depends_on: a service cannot depend on "
                                f"itself (remove `{dep}`)")
        for net in svc.networks:
            if net != "default" and net not in spec.networks:
                unknown("network", net, [*spec.networks, "default"],
                        "services", svc_name, "networks", net)
        port_name = svc.health.port if svc.health else ""
        if isinstance(port_name, str) and port_name and port_name not in svc.ports:
            unknown("port name", port_name, list(svc.ports), "services", svc_name, "health", "port")
        if svc.health and svc.health.http and not svc.health.port and not svc.ports:
            problems.append(f"{fleet.where('services', svc_name, 'health')}: services.{svc_name}."
                            "health: an http health check needs a port (add `ports:` or "
                            "`health.port`)")
    if problems:
        raise ManifestError("\n".join(problems))

"""The manifest's JSON Schema and its reference page, both made from the pydantic models.

`dockyard schema` prints the schema (for editors: yaml-language-server's `# yaml-language-server:
$schema=...` line, VS Code's `yaml.schemas`); `dockyard schema --format markdown` prints
docs/manifest.md. A unit test keeps both checked-in files equal to what the models make.

The schema describes the file as written, before dockyard reads it: sizes and durations as
strings ("16GiB", "1m30s"), commands as a string or a list, ports in their short forms, a
`depends_on` list, YAML numbers in env maps, and a `${VAR}` wherever a number or a boolean
may stand (it is interpolated before validation)."""

from __future__ import annotations

import copy
import json
from typing import Any

from pydantic import BaseModel

from dockyard.manifest.models import (
    AgentSpec,
    BackupSpec,
    DependencySpec,
    EnvFileSpec,
    FamilySpec,
    FleetBackupSpec,
    FleetSpec,
    GpuRequest,
    GpuSpec,
    HealthSpec,
    MachineSpec,
    NetworkSpec,
    PortSpec,
    ServiceNetworkSpec,
    ServiceSpec,
    UlimitSpec,
)
from dockyard.names import NAME

SCHEMA_ID = "https://dockyard.dev/schema/fleet.json"
# The reference's order: the file from the top, then what the sections hold.
MODELS: tuple[type[BaseModel], ...] = (FleetSpec, FleetBackupSpec, MachineSpec, GpuSpec,
                                       FamilySpec, ServiceSpec, PortSpec, HealthSpec,
                                       GpuRequest, DependencySpec, EnvFileSpec, UlimitSpec,
                                       ServiceNetworkSpec, AgentSpec, BackupSpec, NetworkSpec)
_VARIABLE = {"type": "string", "pattern": r"\$\{[^}]+\}",
             "description": "holds a ${VAR} read from the environment or .env"}
_SCALAR = [{"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}]
_PORT_SHORT = [{"type": "integer", "minimum": 1, "maximum": 65535},
               {"type": "string", "pattern": r"^(\[?[0-9A-Za-z.:]*\]?:)?(\d+:)?\d+$"}]
_NAMED_MAPS = ("machines", "families", "services", "networks")


def json_schema() -> dict[str, Any]:
    """The manifest's JSON Schema (draft 2020-12), deterministic: same models, same bytes."""
    schema = FleetSpec.model_json_schema(by_alias=True)
    defs = schema["$defs"]
    for name in _NAMED_MAPS:
        schema["properties"][name]["propertyNames"] = {"pattern": NAME}
    schema["properties"]["fleet"]["pattern"] = NAME
    for model in defs.values():  # env maps: YAML numbers and booleans become strings
        for key in ("env", "profile", "build_args", "extra_hosts"):
            if key in model.get("properties", {}):
                model["properties"][key]["additionalProperties"] = {"anyOf": list(_SCALAR)}
    service = defs["ServiceSpec"]["properties"]
    for key in ("depends_on", "networks"):  # a list of names, or a mapping
        prop = service[key]
        mapping = {k: prop.pop(k) for k in ("additionalProperties", "type")}
        if key == "networks":  # `name:` with nothing after it joins with no aliases
            mapping["additionalProperties"] = {"anyOf": [mapping["additionalProperties"],
                                                         {"type": "null"}]}
        prop["anyOf"] = [{"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                         mapping]
    service["tmpfs"] = {k: v for k, v in service["tmpfs"].items() if k not in ("items", "type")}
    service["tmpfs"]["anyOf"] = [{"type": "string"},
                                 {"type": "array", "items": {"type": "string"}}]
    env_file = service["env_file"]  # a path, or a list of paths and {path, required, skip}
    item = env_file.pop("items")
    del env_file["type"]
    env_file["anyOf"] = [{"type": "string"},
                         {"type": "array", "items": {"anyOf": [{"type": "string"}, item]}}]
    networks = schema["properties"]["networks"]
    networks["additionalProperties"] = {"anyOf": [networks["additionalProperties"],
                                                  {"type": "null"}]}
    schema = _walk(schema)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            **schema}


def _walk(node: Any) -> Any:
    """Ports take their short forms; numbers and booleans may be a ${VAR}."""
    if isinstance(node, list):
        return [_walk(n) for n in node]
    if not isinstance(node, dict):
        return node
    if node.get("$ref") == "#/$defs/PortSpec" and len(node) == 1:
        return {"anyOf": [dict(node), *copy.deepcopy(_PORT_SHORT), dict(_VARIABLE)]}
    out = {k: _walk(v) for k, v in node.items()}
    if out.get("type") in ("integer", "number", "boolean") and "anyOf" not in out:
        kept = {k: out.pop(k) for k in ("title", "description", "default") if k in out}
        return {**kept, "anyOf": [out, dict(_VARIABLE)]}
    if "anyOf" in out and any(b.get("type") in ("integer", "number") for b in out["anyOf"]
                              if isinstance(b, dict)) and _VARIABLE not in out["anyOf"]:
        out["anyOf"] = [*out["anyOf"], dict(_VARIABLE)]
    return out


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def reference_markdown() -> str:
    """docs/manifest.md: every key of every section, its type, default and meaning."""
    schema = json_schema()
    defs = schema["$defs"]
    lines = [
        "# `fleet.yaml`: the manifest's keys",
        "",
        "Generated from the pydantic models (`dockyard schema --format markdown`); do not edit",
        "by hand. The same models give the JSON Schema (`dockyard schema`): point an editor at",
        "it for completion and validation, e.g. a first line",
        "`# yaml-language-server: $schema=./fleet.schema.json` after",
        "`dockyard schema > fleet.schema.json`.",
        "",
        "Unknown keys are errors (with \"did you mean\"). Sizes are bytes or `512MiB`, `16GiB`",
        "(`G` is binary, like Docker; `GB` decimal); durations are seconds or `250ms`, `5s`,",
        "`1m30s`; commands are a list (exec form) or a string (run by `/bin/sh -c`).",
        "`${VAR}`, `${VAR:-default}` and `${VAR:?message}` are read from the environment and",
        "from `.env` beside the manifest.",
    ]
    for model in MODELS:
        name = model.__name__
        body = schema if model is FleetSpec else defs[name]
        title = "top level" if model is FleetSpec else name
        lines += ["", f"## {title}", ""]
        if model.__doc__:
            lines += [" ".join(model.__doc__.split()), ""]
        lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
        required = set(body.get("required", []))
        for key, prop in body["properties"].items():
            default = "required" if key in required else _default(prop.get("default"))
            meaning = prop.get("description", "").replace("|", "\\|")
            lines.append(f"| `{key}` | {_type(prop)} | {default} | {meaning} |")
    return "\n".join(lines) + "\n"


def _default(value: Any) -> str:
    if value in ("", [], {}, None):
        return "-"
    return f"`{json.dumps(value)}`"


def _type(prop: dict[str, Any]) -> str:
    """A type as a reader says it: `size`, `list of string`, `name -> ServiceSpec`."""
    if "format" in prop:
        return str(prop["format"])
    if "$ref" in prop:
        target = prop["$ref"].rsplit("/", 1)[-1]
        return f"[{target}](#{target.lower()})"
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    if "anyOf" in prop:
        kinds = [b for b in prop["anyOf"] if b != _VARIABLE and b.get("type") != "null"]
        if len(kinds) == 1:
            return _type(kinds[0]) + (" or null" if len(kinds) < len(prop["anyOf"]) - (
                _VARIABLE in prop["anyOf"]) else "")
        return " or ".join(_type(k) for k in kinds)
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    if kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        return f"map of name -> {_type(prop['additionalProperties'])}"
    return str(kind)

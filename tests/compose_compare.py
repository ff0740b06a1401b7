"""Comparing a compose project with what `dockyard import` -> render makes of it.

Shared by the import round trips (tests/engine/test_import_roundtrip.py over our fixtures,
tests/process/test_realworld.py over ../shared/realworld): `docker compose config` of both
files, `comparable` to remove dockyard's documented differences, then `differences` (every
place they disagree) or `tally` (each field of the original kept, named by import, or lost).
Real `docker compose` (the CLI plugin, which needs no engine), no containers."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.manifest.importer import Unmapped
from dockyard.manifest.load import Fleet

DOCKER_HEALTH = {"interval": "30s", "timeout": "30s", "retries": 3}
_HTTP_URL = re.compile(r"https?://(?:localhost|127\.0\.0\.1|0\.0\.0\.0)(?::(\d+))?(/[^\s'\"]*)?")


def compose_available() -> bool:
    try:
        return subprocess.run(["docker", "compose", "version"], capture_output=True,
                              timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def compose_config(files: list[Path], project: str, *, project_dir: Path | None = None,
                   profiles: Iterable[str] | None = ("*",),
                   env: Mapping[str, str] | None = None) -> tuple[Any, str]:
    """`docker compose config --format json` as compose sees the project: (data, "") when it
    passes, (None, stderr) when it refuses. `profiles` None: only what compose selects itself
    (COMPOSE_PROFILES included); `env` is added to this process's environment."""
    args = ["docker", "compose", "-p", project]
    if project_dir is not None:
        args += ["--project-directory", str(project_dir)]
    for f in files:
        args += ["-f", str(f)]
    for profile in profiles or ():
        args += ["--profile", profile]
    result = subprocess.run([*args, "config", "--format", "json"], capture_output=True,
                            text=True, timeout=120, env={**os.environ, **(env or {})})
    if result.returncode != 0:
        return None, result.stderr.strip()
    return json.loads(result.stdout), ""


def config(files: list[Path], project: str, *, project_dir: Path | None = None,
           env: Mapping[str, str] | None = None) -> Any:
    """`docker compose config` with every profile; the test fails when compose refuses."""
    data, error = compose_config(files, project, project_dir=project_dir, env=env)
    assert data is not None, error
    return data


def _http(test: list[str]) -> tuple[str, int, str] | None:
    """An HTTP probe of a local URL, whatever client runs it (curl, wget, python)."""
    text = " ".join(test[1:])
    urls = {(int(m[1] or 80), m[2] or "/") for m in _HTTP_URL.finditer(text)}
    clients = ("curl -f", "curl --fail", "curl -sf", "curl -fs", "wget", "urllib.request.urlopen")
    if len(urls) == 1 and any(c in text for c in clients):
        port, path = urls.pop()
        return ("http", port, path)
    return None


def split_path(path: str) -> list[str | int]:
    """`a.b[2].c` as its parts; a key in quotes keeps its dots (`environment."a.b"`)."""
    return [int(p[1:-1]) if p.startswith("[") else p.strip('"')
            for p in re.findall(r'"[^"]*"|\[\d+\]|[^.\[\]"]+', path)]


def drop(doc: Any, path: str) -> None:
    """Remove `a.b[2].c` from a compose config, if it is there."""
    parts = split_path(path)
    chain: list[tuple[Any, str | int]] = []
    node = doc
    for part in parts[:-1]:
        found = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node))
        if not found:
            return
        chain.append((node, part))
        node = node[part]
    last = parts[-1]
    if isinstance(node, dict):
        node.pop(last, None)
    elif isinstance(node, list) and isinstance(last, int) and last < len(node):
        node.pop(last)
    for parent, key in reversed(chain):  # a mapping left empty goes too
        if isinstance(parent, dict) and parent[key] in ({}, []):
            del parent[key]


def comparable(original: Mapping[str, Any], rendered: Mapping[str, Any], fleet: Fleet,
               unmapped: list[Unmapped], *, drop_unmapped: bool = True
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both `docker compose config` outputs with dockyard's documented differences removed.

    Both files are read with the same project name (-p) and the same profiles; the rendered
    one with the manifest's folder as project directory (rendered with no `root`, its relative
    bind paths are as written, relative to fleet.yaml). Then, on both sides unless said
    otherwise:
    1. What the importer reported as not mapped is removed from the original (unless
       `drop_unmapped` is false: `tally` counts it as named), and so are `x-*` extension
       fields.
    2. Built services: the rendered image must be `<fleet>/<service>:current` and is dropped
       (the original's image is named as not mapped); the rendered `build:` (which render
       writes for an own Dockerfile; else the manifest's context and `dockerfile:`) must
       equal the original's.
    3. Labels `dev.dockyard.*` (services and volumes) are dropped; then empty `labels`; a
       volume's `driver: local` is the default, no driver.
    4. `restart` absent is `no` (Docker's default).
    5. Health checks: `CMD-SHELL x` is `CMD /bin/sh -c x` (what Docker runs); a test that only
       fetches a local URL (curl -f, wget, python urllib) is (http, port, path), whatever
       client runs it and whether it says localhost or 127.0.0.1; absent interval, timeout
       and retries are Docker's defaults (30s, 30s, 3).
    6. Ports: `host_ip: 0.0.0.0` is no host_ip (all interfaces); a port's `name` is dropped
       (dockyard keeps it as the key under `ports:`); ports are sorted; `expose` entries
       that are also published are dropped.
    7. `mem_limit` / `cpus` are `deploy.resources.limits.memory` / `.cpus`; an empty
       `deploy.placement` is dropped; a GPU reservation of `count: 1` is dockyard's
       `device_ids: ["0"]` (the planner pins the device) and `CUDA_VISIBLE_DEVICES=0`, which
       dockyard adds to a GPU service, is dropped when the original does not set it.
    8. Volumes: an empty `volume: {}` option is dropped, and `bind.create_host_path` (compose
       sets it for the short syntax dockyard writes, not for the long one).
    9. Networks: the rendered aliases that are the original's `container_name` or `hostname`
       are dropped (import keeps those names as aliases); then a network joined with no
       aliases is `null`. An empty `healthcheck: {}` (`disable: false`) is dropped; one with
       `disable: true` is only that (Docker runs no test).
    """
    a, b = copy.deepcopy(dict(original)), copy.deepcopy(dict(rendered))
    if drop_unmapped:
        for u in unmapped:
            drop(a, u.path)
    built = {name: svc for name, svc in fleet.spec.services.items() if svc.family}
    names = {name: {svc.get(k) for k in ("container_name", "hostname")} - {None}
             for name, svc in (original.get("services") or {}).items()}
    for side, doc in (("original", a), ("rendered", b)):
        for key in [k for k in doc if k.startswith("x-")]:
            del doc[key]
        for vol in (doc.get("volumes") or {}).values():
            if vol.get("driver") == "local":
                del vol["driver"]
            labels = {k: v for k, v in (vol.get("labels") or {}).items()
                      if not k.startswith("dev.dockyard.")}
            vol.pop("labels", None)
            if labels:
                vol["labels"] = labels
        for name, svc in (doc.get("services") or {}).items():
            if side == "rendered":
                _aliases(svc, names.get(name, set()))
            if svc.get("healthcheck") == {}:
                del svc["healthcheck"]
            if name in built:
                if side == "rendered":
                    assert svc.pop("image") == f"{fleet.spec.fleet}/{name}:current"
                    spec = built[name]
                    svc.setdefault("build", {"context": str((fleet.root / spec.build).resolve()),
                                             "dockerfile": spec.dockerfile})
                else:
                    svc.pop("image", None)
            labels = {k: v for k, v in (svc.get("labels") or {}).items()
                      if not k.startswith("dev.dockyard.")}
            svc.pop("labels", None)
            if labels:
                svc["labels"] = labels
            svc.setdefault("restart", "no")
            _health(svc)
            _ports(svc)
            _resources(svc)
            for vol in svc.get("volumes") or []:
                if vol.get("volume") == {}:
                    del vol["volume"]
                if "bind" in vol:
                    vol["bind"].pop("create_host_path", None)
                    if not vol["bind"]:
                        del vol["bind"]
    for name, svc in (b.get("services") or {}).items():
        original_env = (a.get("services", {}).get(name) or {}).get("environment") or {}
        env = svc.get("environment") or {}
        if _gpu(svc) and env.get("CUDA_VISIBLE_DEVICES") == "0" \
                and "CUDA_VISIBLE_DEVICES" not in original_env:
            del env["CUDA_VISIBLE_DEVICES"]
            if not env:
                del svc["environment"]
    return a, b


def _aliases(svc: dict[str, Any], names: set[str]) -> None:
    for net, spec in (svc.get("networks") or {}).items():
        if not spec:
            continue
        aliases = [a for a in spec.get("aliases") or [] if a not in names]
        spec.pop("aliases", None)
        if aliases:
            spec["aliases"] = aliases
        svc["networks"][net] = spec or None


def _health(svc: dict[str, Any]) -> None:
    h = svc.get("healthcheck")
    if not h:
        return
    if h.get("disable"):  # Docker runs no test then, whatever else is written
        svc["healthcheck"] = {"disable": True}
        return
    test = list(h.get("test") or [])
    if test[:1] == ["CMD-SHELL"]:
        test = ["CMD", "/bin/sh", "-c", *test[1:]]
    probe = _http(test)
    h["test"] = list(probe) if probe else test
    for key, value in DOCKER_HEALTH.items():
        h.setdefault(key, value)


def _ports(svc: dict[str, Any]) -> None:
    ports = svc.get("ports") or []
    for p in ports:
        if p.get("host_ip") == "0.0.0.0":
            del p["host_ip"]
        p.pop("name", None)
    if ports:
        svc["ports"] = sorted(ports, key=lambda p: json.dumps(p, sort_keys=True))
    published = {str(p["target"]) for p in ports}
    if "expose" in svc:
        svc["expose"] = sorted(e for e in svc["expose"] if e not in published)
        if not svc["expose"]:
            del svc["expose"]


def _gpu(svc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(((svc.get("deploy") or {}).get("resources") or {}).get("reservations", {})
                .get("devices") or [])


def _resources(svc: dict[str, Any]) -> None:
    deploy = svc.get("deploy")
    legacy = {k: svc.pop(k) for k in ("mem_limit", "cpus") if k in svc}
    if legacy:
        deploy = svc.setdefault("deploy", {})
        limits = deploy.setdefault("resources", {}).setdefault("limits", {})
        if "mem_limit" in legacy:
            limits.setdefault("memory", legacy["mem_limit"])
        if "cpus" in legacy:
            limits.setdefault("cpus", legacy["cpus"])
    if deploy is None:
        return
    if deploy.get("placement") == {}:
        del deploy["placement"]
    for device in _gpu(svc):
        if device.get("count") == 1 and "device_ids" not in device:
            del device["count"]
            device["device_ids"] = ["0"]
        device["capabilities"] = sorted(device.get("capabilities") or [])


def differences(a: Any, b: Any, at: str = "") -> list[str]:
    """Where two JSON documents differ, one line per place."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            where = f"{at}.{key}" if at else key
            if key not in a:
                out.append(f"{where}: only in the rendered file: {b[key]!r}")
            elif key not in b:
                out.append(f"{where}: only in the original: {a[key]!r}")
            else:
                out += differences(a[key], b[key], where)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in differences(x, y, f"{at}[{i}]")]
    return [] if a == b else [f"{at}: original {a!r} != rendered {b!r}"]


def leaves(doc: Any, at: str = "") -> dict[str, Any]:
    """Every field of a JSON document by its path (`services.web.ports[0].target`); an empty
    mapping or list counts as one field."""
    if isinstance(doc, dict) and doc:
        out: dict[str, Any] = {}
        for key, value in doc.items():
            text = f'"{key}"' if re.search(r'[.\[\]"]', str(key)) else str(key)
            out.update(leaves(value, f"{at}.{text}" if at else text))
        return out
    if isinstance(doc, list) and doc:
        out = {}
        for index, value in enumerate(doc):
            out.update(leaves(value, f"{at}[{index}]"))
        return out
    return {at: doc}


@dataclass
class Tally:
    """The fields of an original compose config: kept by dockyard, named by import as not
    mapped (a count), lost; and the fields only the rendered file has."""

    kept: list[str] = field(default_factory=list)
    named: int = 0
    lost: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.kept) + self.named + len(self.lost)

    def __iadd__(self, other: Tally) -> Tally:
        self.kept += other.kept
        self.named += other.named
        self.lost += other.lost
        self.added += other.added
        return self


def tally(original: Mapping[str, Any], rendered: Mapping[str, Any], fleet: Fleet,
          unmapped: list[Unmapped]) -> Tally:
    """Each field of the original, after `comparable`'s normalisations: kept (the rendered
    file has the same value there, whatever import noted about it), lost (it differs, and
    import did not name it or a key above it as not mapped) or named (the rest); and each
    field only the rendered file has, where import named nothing."""
    everything, b = comparable(original, rendered, fleet, unmapped, drop_unmapped=False)
    a, _ = comparable(original, rendered, fleet, unmapped)
    full, mine, theirs = leaves(everything), leaves(a), leaves(b)
    named = [u.path for u in unmapped]
    out = Tally()
    out.kept = [p for p, v in full.items() if p in theirs and theirs[p] == v]
    out.lost = [f"{p}: {v!r} -> {theirs.get(p, '(absent)')!r}" for p, v in mine.items()
                if p not in theirs or theirs[p] != v]
    out.named = max(0, len(full) - len(out.kept) - len(out.lost))
    out.added = [f"{p}: {v!r}" for p, v in theirs.items()
                 if p not in mine and p not in full and not any(_covers(n, p) for n in named)]
    return out


def _covers(named: str, path: str) -> bool:
    """Whether a not-mapped path names `path` or a key above it."""
    return path == named or path.startswith((named + ".", named + "["))

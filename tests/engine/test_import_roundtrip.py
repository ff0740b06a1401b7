"""Import round trip: compose project -> `dockyard import` -> load -> plan -> render, and
`docker compose config` of the original and of the rendered file agree, apart from the
normalisations that `comparable` lists. Real `docker compose` (the CLI plugin), no containers."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from dockyard.manifest.importer import Unmapped, import_compose, read_project
from dockyard.manifest.load import Fleet, load
from dockyard.plan import plan
from dockyard.render.files import render_all

pytestmark = pytest.mark.engine

FIXTURES = Path(__file__).parents[1] / "fixtures" / "compose"
SECRETS = {"POSTGRES_PASSWORD": "s3cret-for-tests"}
PROJECTS = {
    "llm-stack": ["compose.yaml"],
    "speech": ["compose.yaml", "compose.gpu.yaml"],
    "api-db": ["compose.yaml"],
}
# What each project is expected to lose: a change in the importer shows up here first.
EXPECTED_UNMAPPED = {
    "llm-stack": {"services.vllm.shm_size", "services.vllm.ipc",
                  "services.webui.container_name", "services.webui.labels",
                  "services.webui.build.args"},
    "speech": {"networks.tools", "services.model-sync.networks.tools"},
    "api-db": {"secrets", "services.api.secrets", "services.api.image",
               "services.api.depends_on.db.restart",
               "services.api.deploy.resources.reservations.memory"},
}
DOCKER_HEALTH = {"interval": "30s", "timeout": "30s", "retries": 3}
_HTTP_URL = re.compile(r"https?://(?:localhost|127\.0\.0\.1|0\.0\.0\.0)(?::(\d+))?(/[^\s'\"]*)?")


def _compose_available() -> bool:
    try:
        return subprocess.run(["docker", "compose", "version"], capture_output=True,
                              timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="module")
def compose_cli() -> None:
    if not _compose_available():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but `docker compose` is missing")
        pytest.skip("`docker compose` is not installed here")


def config(files: list[Path], project: str, *, project_dir: Path | None = None) -> Any:
    """`docker compose config --format json` with every profile, as compose sees the project."""
    args = ["docker", "compose", "-p", project]
    if project_dir is not None:
        args += ["--project-directory", str(project_dir)]
    for f in files:
        args += ["-f", str(f)]
    result = subprocess.run([*args, "--profile", "*", "config", "--format", "json"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, **SECRETS})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _http(test: list[str]) -> tuple[str, int, str] | None:
    """An HTTP probe of a local URL, whatever client runs it (curl, wget, python)."""
    text = " ".join(test[1:])
    urls = {(int(m[1] or 80), m[2] or "/") for m in _HTTP_URL.finditer(text)}
    clients = ("curl -f", "curl --fail", "curl -sf", "curl -fs", "wget", "urllib.request.urlopen")
    if len(urls) == 1 and any(c in text for c in clients):
        port, path = urls.pop()
        return ("http", port, path)
    return None


def _drop(doc: Any, path: str) -> None:
    """Remove `a.b[2].c` from a compose config, if it is there."""
    parts: list[str | int] = [int(p) if p.isdigit() else p
                              for p in re.findall(r"[^.\[\]]+", path)]
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
               unmapped: list[Unmapped]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both `docker compose config` outputs with dockyard's documented differences removed.

    Both files are read with the same project name (-p) and every profile active; the
    rendered one with the manifest's folder as project directory (rendered with no `root`, its
    relative bind paths are as written, relative to fleet.yaml; the last test reads the file
    where `dockyard up` writes it, with the paths rebased). Then, on both sides unless said
    otherwise:
    1. What the importer reported as not mapped is removed from the original (the test
       checks that list against EXPECTED_UNMAPPED, so it cannot grow unnoticed), and so are
       `x-*` extension fields and networks: dockyard puts a machine's services on one network.
    2. Built services: the rendered image must be `<fleet>/<service>:current`; it is replaced
       by the manifest's `build:` context and `dockerfile:`, which the original's `build:`
       must equal.
    3. Labels `dev.dockyard.*` (services and volumes) are dropped; then empty `labels`.
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
    """
    a, b = copy.deepcopy(dict(original)), copy.deepcopy(dict(rendered))
    for u in unmapped:
        _drop(a, u.path)
    built = {name: svc for name, svc in fleet.spec.services.items() if svc.family}
    for side, doc in (("original", a), ("rendered", b)):
        for key in [k for k in doc if k.startswith("x-")]:
            del doc[key]
        doc.pop("networks", None)
        for vol in (doc.get("volumes") or {}).values():
            labels = {k: v for k, v in (vol.get("labels") or {}).items()
                      if not k.startswith("dev.dockyard.")}
            vol.pop("labels", None)
            if labels:
                vol["labels"] = labels
        for name, svc in (doc.get("services") or {}).items():
            svc.pop("networks", None)
            if name in built:
                if side == "rendered":
                    assert svc.pop("image") == f"{fleet.spec.fleet}/{name}:current"
                    spec = built[name]
                    svc["build"] = {"context": str((fleet.root / spec.build).resolve()),
                                    "dockerfile": spec.dockerfile}
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


def _health(svc: dict[str, Any]) -> None:
    h = svc.get("healthcheck")
    if not h:
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


def round_trip(folder: Path, files: list[str],
               mutate: Callable[[Any], None] | None = None) -> list[str]:
    """Import the project in `folder`, render it, compare both compose configs."""
    paths = [folder / f for f in files]
    result = import_compose(read_project(paths, environ=SECRETS), out_dir=folder)
    manifest = folder / "fleet.yaml"
    text = result.text()
    if mutate is not None:
        yaml = YAML(typ="rt")
        doc = yaml.load(text)
        mutate(doc)
        manifest.write_text("")
        with manifest.open("w") as f:
            yaml.dump(doc, f)
        text = manifest.read_text()
    manifest.write_text(text)
    fleet = load(manifest, environ=SECRETS)
    rendered = folder / ".dockyard" / "render"
    for rel, content in render_all(fleet, plan(fleet), text).items():
        (rendered / rel).parent.mkdir(parents=True, exist_ok=True)
        (rendered / rel).write_text(content)
    project = f"dyt{uuid.uuid4().hex[:6]}"
    original = config(paths, project)
    ours = config([rendered / "compose.local.yaml"], project, project_dir=folder)
    a, b = comparable(original, ours, fleet, result.unmapped)
    return differences(a, b)


@pytest.fixture
def copy_of(tmp_path: Path) -> Callable[[str], Path]:
    def make(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(FIXTURES / name, target)
        return target
    return make


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_round_trip_is_equivalent(compose_cli: None, copy_of: Callable[[str], Path],
                                  name: str) -> None:
    folder = copy_of(name)
    paths = [folder / f for f in PROJECTS[name]]
    unmapped = import_compose(read_project(paths, environ=SECRETS), out_dir=folder).unmapped
    assert {u.path for u in unmapped} == EXPECTED_UNMAPPED[name]
    assert round_trip(folder, PROJECTS[name]) == []


def _service(doc: Any, name: str) -> Any:
    return doc["services"][name]


MUTATIONS: dict[str, tuple[str, Callable[[Any], None], str]] = {
    "host port": ("api-db", lambda d: _service(d, "api")["ports"].update(
        p8000="0.0.0.0:8001:8000"), "ports"),
    "env value": ("llm-stack", lambda d: _service(d, "webui")["env"].update(
        VECTOR_DB="chroma"), "environment.VECTOR_DB"),
    "env dropped": ("api-db", lambda d: _service(d, "migrate")["env"].pop("WORKERS"),
                    "environment.WORKERS"),
    "health path": ("speech", lambda d: _service(d, "tts")["health"].update(http="/"),
                    "healthcheck.test"),
    "health timing": ("api-db", lambda d: _service(d, "db")["health"].update(retries=3),
                      "healthcheck.retries"),
    "dependency condition": ("llm-stack", lambda d: _service(d, "webui")["depends_on"]["vllm"]
                             .update(condition="started"), "depends_on.vllm.condition"),
    "read-only volume": ("llm-stack", lambda d: _service(d, "vllm")["volumes"].__setitem__(
        0, "models:/models"), "volumes[0]"),
    "memory limit": ("speech", lambda d: _service(d, "stt").update(memory="4GiB"),
                     "deploy.resources.limits.memory"),
    "command": ("api-db", lambda d: _service(d, "redis")["command"].pop(),
                "command"),
    "gpu device": ("speech", lambda d: _service(d, "tts").update(gpu={"device": 1}),
                   "device_ids"),
    "dockerfile": ("speech", lambda d: _service(d, "tts").update(dockerfile="Dockerfile"),
                   "build.dockerfile"),
    "restart": ("api-db", lambda d: _service(d, "api").update(restart="unless-stopped"),
                "restart"),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_a_changed_import_fails_the_comparison(compose_cli: None,
                                               copy_of: Callable[[str], Path],
                                               mutation: str) -> None:
    name, mutate, expected = MUTATIONS[mutation]
    diffs = round_trip(copy_of(name), PROJECTS[name], mutate)
    assert diffs, f"{mutation}: the comparison did not notice"
    assert any(expected in d for d in diffs), diffs


def test_relative_binds_resolve_where_up_reads_the_file(compose_cli: None,
                                                        copy_of: Callable[[str], Path]) -> None:
    """The same comparison, with the rendered file read the way `dockyard up` reads it."""
    from dockyard.engine.build import write_render
    from dockyard.engine.deploy import Target, compose

    folder = copy_of("api-db")
    paths = [folder / "compose.yaml"]
    result = import_compose(read_project(paths, environ=SECRETS), out_dir=folder)
    (folder / "fleet.yaml").write_text(result.text())
    fleet = load(folder / "fleet.yaml", environ=SECRETS)
    the_plan = plan(fleet)
    write_render(fleet, the_plan, folder / ".dockyard")
    project = f"dyt{uuid.uuid4().hex[:6]}"
    target = Target(fleet, the_plan, folder / ".dockyard", "local", project, ("*",))
    ours = json.loads(compose(target, "config", "--format", "json").stdout)
    a, b = comparable(config(paths, project), ours, fleet, result.unmapped)
    assert differences(a, b) == []

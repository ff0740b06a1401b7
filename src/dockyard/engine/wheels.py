"""The wheelhouse: every wheel the locks name, per platform, kept on the host.

`dockyard fetch` downloads the locked wheels of every family for each of its platforms into
`<state>/wheels/<platform>/` (shared between families and fleets' rebuilds) with
`pip download --only-binary=:all: --platform … --require-hashes --no-deps`. A wheel no index
has for a platform (CUDA wheels on arm64, say) is a finding located at the requirement, found
before any build starts. Image builds then install offline from a family's share of the
wheelhouse, linked into its build context, with `--no-index --require-hashes`."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from dockyard import compat
from dockyard.engine.lock import (
    Pin,
    family_delta,
    parse_lock,
    platforms_of,
    python_of,
    requirement_where,
    where_of,
    who,
)
from dockyard.engine.pip import Indexes
from dockyard.engine.run import run
from dockyard.errors import EngineError, ManifestError
from dockyard.findings import Finding, Severity
from dockyard.manifest.load import Fleet
from dockyard.plan.family import lock_path, own_requirements, with_service_layers
from dockyard.plan.model import Plan
from dockyard.platforms import MANYLINUX, PLATFORMS
from dockyard.render.dockerfile import LOCK_FILE, PIPS, WHEELS_DIR, PipTool, pip_for

_HASHES = ".sha256.json"


# The pips dockyard installs with (never into the images), as pins to fetch and stage.
TOOL_PINS = {tool.version: Pin("pip", tool.version, (tool.sha256,),
                               f"pip=={tool.version} --hash={tool.sha256}\n") for tool in PIPS}


def tool_pin(tool: PipTool) -> Pin:
    return TOOL_PINS[tool.version]


@dataclass
class FetchReport:
    downloaded: int = 0
    present: int = 0
    findings: list[Finding] = field(default_factory=list)


def wheelhouse(state: Path, platform: str) -> Path:
    return state / "wheels" / platform


def hashes_of(folder: Path) -> dict[str, str]:
    """sha256 -> file name of every wheel in `folder` (cached by name, size and mtime)."""
    cache_file = folder / _HASHES
    try:
        cache: dict[str, list[str | int | float]] = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    found: dict[str, str] = {}
    fresh: dict[str, list[str | int | float]] = {}
    for path in sorted(folder.glob("*.whl")) if folder.is_dir() else []:
        st = path.stat()
        entry = cache.get(path.name)
        if entry and entry[0] == st.st_size and entry[1] == st.st_mtime:
            digest = str(entry[2])
        else:
            with path.open("rb") as wheel:
                digest = "sha256:" + hashlib.file_digest(wheel, "sha256").hexdigest()
        fresh[path.name] = [st.st_size, st.st_mtime, digest]
        found[digest] = path.name
    if folder.is_dir() and fresh != cache:
        cache_file.write_text(json.dumps(fresh, sort_keys=True))
    return found


def _platform_args(platform: str) -> list[str]:
    """pip takes `--platform manylinux_2_28_x86_64` literally; a glibc 2.28 system also runs
    every older manylinux wheel, so name them all (newest first)."""
    arch = PLATFORMS[platform].machine
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(MANYLINUX, 4, -1)]
    tags += [f"manylinux{alias}_{arch}" for alias in ("2014", "2010", "1")]
    return [arg for t in tags for arg in ("--platform", t)]


def _pip_download(pins: list[Pin], dest: Path, platform: str, python: str,
                  indexes: Indexes) -> None:
    short = compat.minor(python)  # pip judges wheel tags (cp311) by X.Y
    with tempfile.TemporaryDirectory(prefix="dockyard-fetch-") as tmp:
        req = Path(tmp) / "locked.txt"
        req.write_text("".join(p.text for p in pins))
        # --isolated: the host's pip settings come in explicitly (its constraint files
        # would clash with --require-hashes).
        argv = [sys.executable, "-m", "pip", "--isolated", "download", "--quiet",
                "--disable-pip-version-check", "--no-deps", "--only-binary=:all:",
                "--require-hashes", *_platform_args(platform),
                "--python-version", short,
                "--implementation", "cp", "--abi", f"cp{short.replace('.', '')}", "--abi", "abi3",
                "--abi", "none", "--dest", str(dest), *indexes.args(), "-r", str(req)]
        if indexes.cert:
            argv += ["--cert", indexes.cert]
        run(argv, timeout=3600)


def fetch(fleet: Fleet, plan: Plan, state: Path, *, indexes: Indexes | None = None,
          platforms: list[str] | None = None,
          skip: set[tuple[str, str]] | None = None, also: str = "") -> FetchReport:
    """Download every locked wheel for each family's platforms; missing ones are findings.

    `skip`: (family, platform) pairs that have no lock because locking found a wheel missing
    (already a finding)."""
    indexes = indexes or Indexes.from_host()
    plan = with_service_layers(plan)
    report = FetchReport()
    # (platform, python) -> package -> (pin, family that brought it in)
    wanted: dict[tuple[str, str], dict[str, tuple[Pin, str]]] = {}
    for step in plan.builds:
        if step.kind != "family" or not own_requirements(plan.families[step.name]):
            continue
        for platform in platforms_of(fleet, plan, step.name, also):
            if (platforms and platform not in platforms) or (step.name, platform) in (skip or ()):
                continue
            path = lock_path(fleet.root, step.name, platform)
            if not path.is_file():
                raise ManifestError(f"family {step.name} has no lock for {platform}",
                                    where=where_of(fleet, plan, step.name),
                                    fix="run `dockyard lock` first")
            python = python_of(fleet, plan, step.name)
            own = {p.name for p in parse_lock(family_delta(fleet, plan, step.name, platform))
                   .values()}
            for name, pin in parse_lock(path.read_text()).items():
                key = f"{name}=={pin.version}"
                group = wanted.setdefault((platform, python), {})
                if key not in group or name in own:
                    group[key] = (pin, step.name)
    for (platform, python), pins in sorted(wanted.items()):
        # The pip the images install with (never into them), beside the family's wheels.
        tool = tool_pin(pip_for(python))
        pins.setdefault(f"pip=={tool.version} (dockyard's)", (tool, next(iter(pins.values()))[1]))
        dest = wheelhouse(state, platform)
        dest.mkdir(parents=True, exist_ok=True)
        have = hashes_of(dest)
        missing = [v for v in pins.values() if not set(v[0].hashes) & set(have)]
        report.present += len(pins) - len(missing)
        if not missing:
            continue
        for batch in _batches(missing):
            try:
                _pip_download([m[0] for m in batch], dest, platform, python, indexes)
                report.downloaded += len(batch)
            except EngineError:
                report.findings += _one_by_one(fleet, plan, batch, dest, platform, python,
                                               indexes, report)
    return report


def _batches(pins: list[tuple[Pin, str]]) -> list[list[tuple[Pin, str]]]:
    """pip reads a requirements file as one environment: two versions of a package in it
    (families may pin different ones) conflict. Split so that each batch names a package once;
    one pip run per batch."""
    batches: list[list[tuple[Pin, str]]] = []
    names: list[set[str]] = []
    for item in pins:
        i = next((i for i, seen in enumerate(names) if item[0].name not in seen), len(names))
        if i == len(names):
            batches.append([])
            names.append(set())
        batches[i].append(item)
        names[i].add(item[0].name)
    return batches


def _one_by_one(fleet: Fleet, plan: Plan, pins: list[tuple[Pin, str]], dest: Path,
                platform: str, python: str, indexes: Indexes,
                report: FetchReport) -> list[Finding]:
    """A batch failed: download its wheels one at a time, to name every wheel that is missing
    (not just the first)."""
    findings: list[Finding] = []
    for pin, family in pins:
        try:
            _pip_download([pin], dest, platform, python, indexes)
            report.downloaded += 1
        except EngineError as exc:
            fam, where = requirement_where(fleet, plan, family, pin.name)
            reason = [ln for ln in exc.stderr.splitlines() if "ERROR" in ln]
            why = reason[-1].split("ERROR:", 1)[-1].strip() if reason else "not found"
            if pin is TOOL_PINS.get(pin.version):  # no family asked for it: dockyard's own
                findings.append(Finding(
                    "DY304", Severity.ERROR, where_of(fleet, plan, family),
                    f"no wheel of pip=={pin.version} (with which dockyard installs every "
                    f"family's wheels) in the indexes: {why}",
                    f"add an index or --find-links folder that has pip-{pin.version}-py3-none-"
                    "any.whl (PyPI has it)"))
                continue
            findings.append(Finding(
                "DY304", Severity.ERROR, where,
                f"{who(plan, fam)}: no wheel of {pin.name}=={pin.version} for {platform} "
                f"(Python {python}, {PLATFORMS[platform].pip}): {why}",
                f"pin a version that publishes a {platform} wheel, add the index that has "
                f"one, or limit the family to the platforms it runs on (`platforms:`)"))
    return findings


def stage_family(fleet: Fleet, plan: Plan, state: Path, family: str, platform: str,
                 context: Path) -> str:
    """Put the family's locked delta (`requirements.lock`) and its wheels (hard links into the
    wheelhouse) into its build context; return the delta's text."""
    text = family_delta(fleet, plan, family, platform)
    pins = parse_lock(text)
    have = hashes_of(wheelhouse(state, platform))
    target = context / WHEELS_DIR
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for pin in [*pins.values(), tool_pin(pip_for(python_of(fleet, plan, family)))]:
        name = next((have[h] for h in pin.hashes if h in have), "")
        if not name:
            raise ManifestError(
                f"family {family}: the wheel of {pin.name}=={pin.version} for {platform} is not "
                "in the wheelhouse", where=where_of(fleet, plan, family, "requirements"),
                fix="run `dockyard fetch` (build runs it for you) and read its findings")
        source = wheelhouse(state, platform) / name
        if (target / name).exists():  # the family locks dockyard's own pip
            continue
        try:
            os.link(source, target / name)
        except OSError:
            shutil.copy2(source, target / name)
    (context / LOCK_FILE).write_text(text)
    return text

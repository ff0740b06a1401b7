"""Locks: each family's requirements resolved by uv to hash-pinned lock files, per platform.

`locks/<family>.<platform>.txt` lives beside the manifest and is committed like any lock. A
family's lock holds its whole closure (its ancestors' pins included); a child is resolved with
its parent's lock as constraints, so it can add packages but never move one its parent pins.
A lock is reused while the hash of what it was made from (requirements, the parent's lock,
platform, Python) is the one in its header.

The Python version is the base image's, because environment markers such as
`python_full_version < "3.11.3"` are judged by it (uv's --python-version sets the markers).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from dockyard import compat
from dockyard.engine.pip import Indexes
from dockyard.engine.run import run
from dockyard.errors import EngineError, Location, ManifestError, NoWheel
from dockyard.events import Locking, Sink
from dockyard.findings import Finding, Severity
from dockyard.manifest.load import Fleet
from dockyard.names import package_name
from dockyard.plan.family import (
    LOCK_DIR,
    chain,
    cuda_stack_problem,
    family_requirements,
    layer_service,
    lock_path,
    locked_ancestor,
    own_requirements,
    python_version,
    root_family,
    root_image,
    with_service_layers,
)
from dockyard.plan.model import Plan
from dockyard.platforms import PLATFORMS

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")
_HASH = re.compile(r"--hash=(sha256:[0-9a-f]{64})")
_NO_WHEEL = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) has no wheels with a matching "
                       r"platform tag")
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")



@dataclass(frozen=True)
class Pin:
    """One locked package: name (normalised), version, its allowed sha256 hashes."""

    name: str
    version: str
    hashes: tuple[str, ...]
    text: str  # the lock's lines for it, ready to write into another requirements file


@dataclass
class LockReport:
    made: list[str] = field(default_factory=list)  # lock files written
    reused: list[str] = field(default_factory=list)  # lock files whose inputs did not change
    findings: list[Finding] = field(default_factory=list)  # DY304: no wheel for a platform
    missing: set[tuple[str, str]] = field(default_factory=set)  # (family, platform) not locked




def parse_lock(text: str) -> dict[str, Pin]:
    """name -> Pin for every `name==version \\ --hash=...` entry of a requirements lock."""
    pins: dict[str, Pin] = {}
    entry: list[str] = []

    def close() -> None:
        if not entry:
            return
        match = _PIN.match(entry[0])
        if match:
            name = package_name(match.group(1))
            hashes = tuple(h for line in entry for h in _HASH.findall(line))
            pins[name] = Pin(name, match.group(2), hashes, "\n".join(entry) + "\n")
        entry.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            close()
            continue
        if line[:1].isspace() and entry:
            entry.append(line.rstrip())
        else:
            close()
            entry.append(line.rstrip())
    close()
    return pins



def written_platforms(plan: Plan, family: str) -> list[str]:
    """The family's `platforms:`, else its nearest ancestor's; [] when none wrote any."""
    for fam in chain(plan.families, family):
        if plan.families[fam].platforms:
            return sorted(set(plan.families[fam].platforms))
    return []


def platforms_of(fleet: Fleet, plan: Plan, family: str, also: str = "") -> list[str]:
    """The family's `platforms:`, else an ancestor's, else the arches of the fleet's machines
    (plus `also`, the engine's own, when none is written: images must run where built)."""
    written = written_platforms(plan, family)
    if written:
        return written
    return sorted({m.arch for m in fleet.spec.machines.values()} | ({also} if also else set()))


def python_of(fleet: Fleet, plan: Plan, family: str) -> str:
    """The Python version the family's code runs on: `python:` in it or an ancestor, else the
    base image's (known bases only)."""
    version = python_version(plan.families, family)
    if version:
        return version
    bottom = root_family(plan.families, family)
    raise ManifestError(
        f"family {family}: cannot tell which Python {root_image(plan.families, family)} has, "
        "and its lock depends on it", where=where_of(fleet, plan, bottom, "from"),
        fix=f"write it in family {bottom}: `python: \"3.11.2\"` (run `python3 -V` in the image)")


def inputs_digest(family: str, platform: str, python: str, requirements: list[str],
                  parent_lock: str, extra: dict[str, str] | None = None) -> str:
    """What a lock is made from; the lock is reused while this stays the same."""
    data = {"family": family, "platform": platform, "python": python,
            "requirements": requirements,
            "parent": hashlib.sha256(parent_lock.encode()).hexdigest() if parent_lock else "",
            **(extra or {})}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def header_digest(text: str) -> str:
    match = re.search(r"^# inputs: sha256:([0-9a-f]{64})$", text, re.MULTILINE)
    return match.group(1) if match else ""


def delta(lock: dict[str, Pin], parent: dict[str, Pin]) -> str:
    """The lock entries a child adds over its parent: what its image installs."""
    return "".join(p.text for name, p in sorted(lock.items()) if name not in parent)


def changed_pins(child: dict[str, Pin], parent: dict[str, Pin]) -> list[tuple[str, str, str]]:
    """(package, parent's version, child's version) for every parent pin the child moves."""
    return [(name, parent[name].version, child[name].version) for name in sorted(parent)
            if name in child and child[name].version != parent[name].version]


def torch_index(plan: Plan, family: str, platform: str) -> str:
    """The PyTorch wheel index for a family (or ancestor) with `torch:` (and `cuda:`), from
    the compatibility data; "" when it has no `torch:`."""
    for fam in chain(plan.families, family):
        spec = plan.families[fam]
        if spec.torch:
            found = compat.wheel_index(spec.torch, spec.cuda, platform)
            if found:
                return found
            # Not in the data: name the index anyway and let uv say what it lacks.
            major, _, rest = (spec.cuda or "cpu").partition(".")
            return compat.WHEEL_INDEX + (f"cu{major}{rest.split('.')[0] or '0'}"
                                         if spec.cuda else "cpu")
    return ""


def _indexes_for(plan: Plan, family: str, platform: str, indexes: Indexes) -> Indexes:
    url = "" if indexes.no_index else torch_index(plan, family, platform)
    if url and url not in indexes.extra_index_urls:
        return replace(indexes, extra_index_urls=(*indexes.extra_index_urls, url))
    return indexes


def uv() -> str:
    found = Path(sys.executable).parent / "uv"
    return str(found) if found.is_file() else "uv"


def compile_lock(requirements: list[str], *, platform: str, python: str, indexes: Indexes,
                 parent_pins: dict[str, Pin] | None = None) -> str:
    """Run `uv pip compile --generate-hashes` for one platform and Python; return the lock.

    `parent_pins` become constraints: the result can add packages but not move those."""
    with tempfile.TemporaryDirectory(prefix="dockyard-lock-") as tmp:
        req_in = Path(tmp) / "requirements.in"
        req_in.write_text("".join(f"{r}\n" for r in requirements))
        constraints = [Path(c) for c in indexes.constraints]
        if parent_pins:
            # Pins only, under a fixed relative name: uv writes it into the `# via` notes.
            (Path(tmp) / "parent-lock.txt").write_text(
                "".join(f"{p.name}=={p.version}\n" for p in parent_pins.values()))
            constraints.append(Path("parent-lock.txt"))
        argv = [uv(), "pip", "compile", "--quiet", "--no-config", "--generate-hashes",
                "--no-header",
                "--python-version", python, "--python-platform", PLATFORMS[platform].uv,
                # pip's semantics: the best version from every index, as the host's pip does.
                "--index-strategy", "unsafe-best-match", *indexes.args()]
        if indexes.offline:
            argv.append("--offline")
        for path in constraints:
            argv += ["--constraint", str(path)]
        # Relative: the `# via -r requirements.in` notes must not name a temporary folder.
        argv += [req_in.name]
        result = run(argv, timeout=900, cwd=Path(tmp), env={"UV_CACHE_DIR": str(_uv_cache())})
        return result.stdout


def _uv_cache() -> Path:
    path = Path(tempfile.gettempdir()) / "dockyard-uv-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _uv_reason(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith(("╰─▶", "Because", "because")) or "unsatisfiable" in ln:
            return ln.removeprefix("╰─▶").strip().removeprefix("cause: ")
    return lines[-1] if lines else "uv failed without a message"


def lock_family(fleet: Fleet, plan: Plan, family: str, platform: str, *, indexes: Indexes,
                emit: Sink, force: bool = False) -> tuple[Path, bool]:
    """Make (or reuse) `locks/<family>.<platform>.txt`; return its path and whether it was made.

    Raise ManifestError when the family cannot be resolved, or would move a parent's pin."""
    reqs = own_requirements(plan.families[family])
    path = lock_path(fleet.root, family, platform)
    parent = locked_ancestor(plan.families, family)
    parent_path = lock_path(fleet.root, parent, platform) if parent else None
    parent_text = parent_path.read_text() if parent_path and parent_path.is_file() else ""
    python = python_of(fleet, plan, family)
    cuda = {f: plan.families[f].cuda for f in chain(plan.families, family)
            if plan.families[f].cuda}
    digest = inputs_digest(family, platform, python, reqs, parent_text,
                           {"cuda": json.dumps(cuda, sort_keys=True)} if cuda else None)
    if not force and path.is_file() and header_digest(path.read_text()) == digest:
        return path, False
    where = where_of(fleet, plan, family, "requirements")
    problem = cuda_stack_problem(plan.families, family)
    if problem:
        raise ManifestError(problem, where=where_of(fleet, plan, family),
                            fix="base the family on a plain image such as debian:bookworm-slim;"
                                " the torch wheels bring CUDA with them")
    found = _indexes_for(plan, family, platform, indexes)
    full = family_requirements(plan.families, family)
    emit(Locking(family, platform, python, len(full)))
    parent_pins = parse_lock(parent_text)
    try:
        text = compile_lock(full, platform=platform, python=python, indexes=found,
                            parent_pins=parent_pins)
    except EngineError as exc:
        if parent_text:
            _explain_parent_conflict(fleet, plan, family, parent, platform, python,
                                     found, parent_pins)
        reason = _uv_reason(exc.stderr)
        no_wheel = _NO_WHEEL.search(exc.stderr)
        if no_wheel:
            package, version = package_name(no_wheel.group(1)), no_wheel.group(2)
            raise NoWheel(
                f"{who(plan, family)}: no wheel of {package}=={version} for {platform} "
                f"(Python {python}, {PLATFORMS[platform].pip}): {reason}",
                package=package, version=version,
                fix=f"pin a version that publishes a {platform} wheel, add the index that has "
                    "one, or limit the family to the platforms it runs on (`platforms:`)"
            ) from None
        raise ManifestError(
            f"{who(plan, family)}: its requirements cannot be resolved for {platform} "
            f"(Python {python}): {reason}",
            where=where, fix="loosen or correct the pins named above, or add the index "
            "that has them to pip's settings (`pip config list`)") from None
    pins = parse_lock(text)
    moved = changed_pins(pins, parent_pins)
    if moved:  # uv honours constraints; this only guards against a resolver surprise
        _refuse(fleet, plan, family, parent, moved, platform)
    comment = (f"# dockyard lock of family {family} for {platform}, Python {python}"
               + (f", on family {parent}'s lock" if parent else "") + ".\n"
               "# Made by `dockyard lock` with uv; commit it, do not edit it.\n"
               f"# inputs: sha256:{digest}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(comment + text)
    return path, True


def _explain_parent_conflict(fleet: Fleet, plan: Plan, family: str, parent: str, platform: str,
                             python: str, indexes: Indexes, parent_pins: dict[str, Pin]) -> None:
    """The child failed on its parent's constraints: resolve it alone and name what it moves."""
    try:
        alone = parse_lock(compile_lock(own_requirements(plan.families[family]),
                                        platform=platform, python=python, indexes=indexes))
    except EngineError:
        return  # it cannot be resolved on its own either: the plain message says why
    moved = changed_pins(alone, parent_pins)
    if moved:
        _refuse(fleet, plan, family, parent, moved, platform)


def _refuse(fleet: Fleet, plan: Plan, family: str, parent: str,
            moved: list[tuple[str, str, str]], platform: str) -> None:
    name, theirs, ours = moved[0]
    more = f" (and {', '.join(m[0] for m in moved[1:])})" if len(moved) > 1 else ""
    base = root_image(plan.families, parent)
    raise ManifestError(
        f"{who(plan, family)} would change {name} from {theirs} (pinned by its parent family "
        f"{parent}, {LOCK_DIR}/{parent}.{platform}.txt) to {ours}{more}; a family may add "
        f"packages to its parent's but never replace one",
        where=where_of(fleet, plan, family, "requirements"),
        fix=f"make {layer_service(family, plan) or family} a sidecar on its own family based "
            f"on `{base}` and call it over the network, or pin {name}=={theirs} in it")


def lock_all(fleet: Fleet, plan: Plan, *, indexes: Indexes | None = None, emit: Sink,
             force: bool = False, platforms: list[str] | None = None,
             also: str = "") -> LockReport:
    """Lock every family with requirements, parents first, for each of its platforms."""
    report = LockReport()
    indexes = indexes or Indexes.from_host()
    plan = with_service_layers(plan)
    for step in plan.builds:
        if step.kind != "family" or not own_requirements(plan.families[step.name]):
            continue
        for platform in platforms_of(fleet, plan, step.name, also):
            if platforms and platform not in platforms:
                continue
            parent = locked_ancestor(plan.families, step.name)
            if (parent, platform) in report.missing:
                report.missing.add((step.name, platform))  # said once, at the parent
                continue
            try:
                path, made = lock_family(fleet, plan, step.name, platform, indexes=indexes,
                                         emit=emit, force=force)
            except NoWheel as exc:
                report.missing.add((step.name, platform))
                _, where = requirement_where(fleet, plan, step.name, exc.package)
                report.findings.append(Finding("DY304", Severity.ERROR, where, exc.message,
                                               exc.fix))
                continue
            rel = str(path.relative_to(fleet.root))
            (report.made if made else report.reused).append(rel)
    return report


def requirement_where(fleet: Fleet, plan: Plan, family: str,
                      package: str) -> tuple[str, Location]:
    """The family and manifest line that ask for `package` (the family first, then its
    ancestors), else the family's `requirements`."""
    for fam in chain(plan.families, family):
        spec = plan.families[fam]
        for i, req in enumerate(spec.requirements):
            match = _REQ_NAME.match(req)
            if match and package_name(match.group(1)) == package:
                return fam, where_of(fleet, plan, fam, "requirements", i)
        if package == "torch" and spec.torch:
            return fam, where_of(fleet, plan, fam, "torch")
    return family, where_of(fleet, plan, family, "requirements")


def who(plan: Plan, family: str) -> str:
    """How messages name a family, or the layer of a service's own packages."""
    service = layer_service(family, plan)
    return f"service {service} (its own requirements)" if service else f"family {family}"


def where_of(fleet: Fleet, plan: Plan, family: str, *path: str | int) -> Location:
    """Where a family (or a service's own-packages layer) is written in the manifest."""
    service = layer_service(family, plan)
    if service:
        rest = ("family",) if path[:1] == ("from",) else path
        return fleet.where("services", service, *rest)
    return fleet.where("families", family, *path)


def family_delta(fleet: Fleet, plan: Plan, family: str, platform: str) -> str:
    """The lock entries `family`'s image installs on `platform` (over its parent's lock)."""
    path = lock_path(fleet.root, family, platform)
    if not path.is_file():
        raise ManifestError(f"family {family} has no lock for {platform} ({path.name})",
                            where=where_of(fleet, plan, family),
                            fix="run `dockyard lock` (build runs it for you)")
    parent = locked_ancestor(plan.families, family)
    parent_pins = parse_lock(lock_path(fleet.root, parent, platform).read_text()) if parent else {}
    return delta(parse_lock(path.read_text()), parent_pins)

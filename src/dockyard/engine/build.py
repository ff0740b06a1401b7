"""Build the image DAG: families in `from` order, then services, each level in parallel."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.engine import bootstrap
from dockyard.engine.client import docker
from dockyard.engine.run import run
from dockyard.engine.wheels import fill_wheelhouse
from dockyard.errors import BuildError, EngineError
from dockyard.manifest.load import Fleet
from dockyard.plan.model import BuildStep, Plan
from dockyard.render.compose import dump_yaml
from dockyard.render.dockerfile import family_requirements
from dockyard.render.files import render_all

INPUTS_LABEL = "dev.dockyard.inputs"
_SKIP_DIRS = {".git", ".dockyard", "__pycache__", ".venv", "node_modules", ".mypy_cache"}

Say = Callable[[str], None]


@dataclass
class BuildReport:
    built: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    substituted: dict[str, str] = field(default_factory=dict)  # external base -> bootstrap


def write_render(fleet: Fleet, plan: Plan, state: Path) -> Path:
    """Write every rendered file under state/render (only files whose bytes changed)."""
    out = state / "render"
    text = fleet.path.read_text(encoding="utf-8") if fleet.path.is_file() else ""
    for rel, content in render_all(fleet, plan, text).items():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or target.read_text(encoding="utf-8") != content:
            target.write_text(content, encoding="utf-8")
    return out


def image_id(ref: str) -> str:
    from docker.errors import ImageNotFound

    try:
        return str(docker().images.get(ref).id)
    except ImageNotFound:
        return ""


def image_labels(ref: str) -> dict[str, str]:
    from docker.errors import ImageNotFound

    try:
        labels = docker().images.get(ref).labels
    except ImageNotFound:
        return {}
    return dict(labels or {})


def resolve_bases(plan: Plan, *, say: Say, arch: str = "amd64") -> dict[str, str]:
    """External base -> the image to build on: itself when present or pullable, else a
    bookworm base bootstrapped with mmdebstrap (and we say so)."""
    roots = [s for s in plan.builds if s.kind == "family" and not s.parent]
    missing: dict[str, str] = {}
    for step in roots:
        if step.base in missing or bootstrap.image_exists(step.base):
            continue
        reason = bootstrap.try_pull(step.base)
        if reason:
            missing[step.base] = reason
    if not missing:
        return {}
    packages: set[str] = set()
    for step in roots:
        if step.base in missing:
            if not bootstrap.can_stand_in(step.base):
                raise BuildError(
                    f"family {step.name}: base image {step.base} is not here and cannot be "
                    f"pulled ({missing[step.base]})",
                    fix="`docker load` it, set `registry:`, or base the family on python:3.11-slim "
                        "or debian:bookworm-slim, which dockyard can bootstrap offline")
            packages.update(plan.families[step.name].apt)
    tag = bootstrap.bootstrap_tag(packages, arch)
    for base, reason in sorted(missing.items()):
        say(f"{base} cannot be pulled ({reason}); building on {tag}, Debian {bootstrap.SUITE} "
            f"made with mmdebstrap{bootstrap.caveat(base)}")
    if not bootstrap.image_exists(tag):
        say(f"bootstrapping {tag} with mmdebstrap (about a minute, once)")
        bootstrap.bootstrap_base(packages, arch)
    return dict.fromkeys(missing, tag)


def _root_base(plan: Plan, step: BuildStep, substitutes: dict[str, str]) -> str:
    """The external (or bootstrapped) image at the bottom of a family's chain."""
    while step.parent:
        step = plan.step(step.parent, "family")
    return substitutes.get(step.base, step.base)


def _hash_tree(root: Path) -> Iterator[bytes]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in sorted(files):
            path = Path(folder) / name
            yield str(path.relative_to(root)).encode()
            yield hashlib.sha256(path.read_bytes()).digest()


def inputs_hash(dockerfile: str, base_id: str, inputs: Path) -> str:
    """What an image is made of: Dockerfile, base image, and its input files (a folder or one
    file). Same hash, same image."""
    h = hashlib.sha256()
    for part in (dockerfile.encode(), base_id.encode()):
        h.update(part)
        h.update(b"\0")
    if inputs.is_dir():
        for chunk in _hash_tree(inputs):
            h.update(chunk)
    elif inputs.is_file():
        h.update(inputs.read_bytes())
    return h.hexdigest()


def build(fleet: Fleet, plan: Plan, state: Path, *, say: Say, only_missing: bool = False,
          force: bool = False, arch: str = "amd64") -> BuildReport:
    """Build every image in the plan whose inputs changed (or that is missing)."""
    report = BuildReport()
    if not plan.builds:
        return report
    rendered = write_render(fleet, plan, state)
    substitutes = resolve_bases(plan, say=say, arch=arch)
    report.substituted = substitutes
    work = state / "build"
    for level in plan.build_levels():
        services: dict[str, Any] = {}
        for step in level:
            target = f"{step.kind}-{step.name}"
            base = substitutes.get(step.base, step.base)
            if step.kind == "family":
                context = work / "families" / step.name
                context.mkdir(parents=True, exist_ok=True)
                dockerfile = (rendered / "families" / step.name / "Dockerfile").read_text()
                (context / "Dockerfile").write_text(dockerfile)
                reqs = family_requirements(plan, step.name)
                (context / "requirements.txt").write_text("".join(f"{r}\n" for r in reqs))
                dockerfile_path = context / "Dockerfile"
                # The wheels follow from requirements + base; hashing them is not needed.
                hashed: Path = dockerfile_path.parent / "requirements.txt"
            else:
                svc = plan.services[step.name].spec
                context = (fleet.root / svc.build).resolve()
                if not context.is_dir():
                    raise BuildError(
                        f"{fleet.where('services', step.name, 'build')}: service {step.name}: "
                        f"build context {svc.build} is not a folder",
                        fix="create it or correct `build:`")
                dockerfile_path = (
                    (context / svc.dockerfile) if svc.dockerfile
                    else rendered / "services" / f"{step.name}.Dockerfile")
                dockerfile = dockerfile_path.read_text()
                hashed = context
            inputs = inputs_hash(dockerfile, image_id(base), hashed)
            current = image_labels(step.image)
            if (only_missing and current) or (
                    not force and current.get(INPUTS_LABEL) == inputs):
                report.skipped.append(target)
                continue
            if step.kind == "family" and plan.families[step.name].requirements:
                reqs = family_requirements(plan, step.name)
                say(f"wheelhouse for family {step.name}: {len(reqs)} requirements")
                root = _root_base(plan, step, substitutes)
                fill_wheelhouse(context / "wheels", reqs, base_image=root,
                                base_id=image_id(root), family=step.name)
            services[target] = {
                "image": step.image,
                "build": {
                    "context": str(context),
                    "dockerfile": str(dockerfile_path),
                    "args": {"BASE_IMAGE": base},
                    # Host networking lets an apt step reach the mirror when the base lacks a
                    # package; wheels never need it (they come from the wheelhouse).
                    "network": "host",
                    "labels": {
                        INPUTS_LABEL: inputs,
                        "dev.dockyard.fleet": plan.fleet,
                        f"dev.dockyard.{step.kind}": step.name,
                        "org.opencontainers.image.title": step.name,
                    },
                },
            }
        if services:
            _compose_build(work, plan.fleet, services, say)
            report.built.extend(sorted(services))
    return report


def _compose_build(work: Path, fleet: str, services: dict[str, Any], say: Say) -> None:
    work.mkdir(parents=True, exist_ok=True)
    level_file = work / "compose.build.yaml"
    level_file.write_text(dump_yaml({"name": f"{fleet}-build", "services": services}))
    names = sorted(services)
    say("building " + ", ".join(names))
    log = work / "build.log"
    try:
        result = run(["docker", "compose", "-f", str(level_file), "build", *names],
                     timeout=3600, env={"BUILDKIT_PROGRESS": "plain"})
        log.write_text(result.stdout + result.stderr)
    except EngineError as exc:
        log.write_text(exc.stderr)
        tail = "\n".join(exc.stderr.strip().splitlines()[-20:])
        raise BuildError(
            f"building {', '.join(names)} failed; last lines:\n{tail}",
            fix=f"fix the step shown above; the whole log is in {log}",
            command=exc.command, returncode=exc.returncode, stderr=exc.stderr) from None


def built_images(plan: Plan) -> dict[str, str]:
    """image -> id for every image the plan builds (empty id: not built yet)."""
    return {s.image: image_id(s.image) for s in plan.builds}


def describe(report: BuildReport) -> str:
    return json.dumps({"built": report.built, "skipped": report.skipped,
                       "substituted": report.substituted})

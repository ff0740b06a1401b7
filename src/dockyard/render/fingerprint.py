"""What the manifest says each built image is made of, as one hash per image.

`build` labels every image it makes with its hash (SPEC_LABEL); `up` renders the hashes
again and compares them with the labels of the images it is about to run, so an image built
from an older manifest entry (an edited `command:`, `apt:` or health check) is never run
as if it were current. The inputs hash (engine/build.py) also covers files and base image
IDs, which only a build can stage; this one is pure and costs `up` no engine call beyond
the image lookup it makes anyway.

A family's hash holds its spec and its rendered Dockerfile; a service's its rendered
Dockerfile (or, with its own Dockerfile, where it is and its build args) and its context
folder's name; each also holds its parent family's hash, so an edited family makes every
image on it stale."""

from __future__ import annotations

import hashlib

from dockyard.plan.family import with_service_layers
from dockyard.plan.model import BuildStep, Plan
from dockyard.render.dockerfile import render_family_dockerfile, render_service_dockerfile

SPEC_LABEL = "dev.dockyard.spec"


def spec_hashes(plan: Plan) -> dict[str, str]:
    """image ref -> "sha256:<hex>" for every image the plan builds (its service layers too)."""
    layered = with_service_layers(plan)
    by_family: dict[str, str] = {}
    out: dict[str, str] = {}
    for step in sorted(layered.builds, key=lambda s: (s.level, s.kind != "family", s.name)):
        digest = _hash(layered, step, by_family.get(step.parent, ""))
        if step.kind == "family":
            by_family[step.name] = digest
        out[step.image] = digest
    return out


def _hash(plan: Plan, step: BuildStep, parent: str) -> str:
    h = hashlib.sha256()
    parts = [step.kind, step.name, step.base if not step.parent else "", parent]
    if step.kind == "family":
        parts += [plan.families[step.name].model_dump_json(by_alias=True),
                  render_family_dockerfile(plan, step)]
    else:
        svc = plan.services[step.name].spec
        if svc.dockerfile:
            parts += [svc.build, svc.dockerfile,
                      "\n".join(f"{k}={v}" for k, v in sorted(svc.build_args.items()))]
        else:
            parts += [svc.build, render_service_dockerfile(plan, step)]
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return "sha256:" + h.hexdigest()

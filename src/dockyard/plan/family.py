"""Family facts: the one home of what a family's `from` chain gives its images.

Checks, render and the engine all ask these questions (which families a family stands on,
which external image is at the bottom, which Python its images run, whether they have a
python3 at all, which requirements it installs) and get them answered here, so they cannot
disagree. Every function takes the families mapping (`fleet.spec.families`, or
`plan.families`, which adds the thin families of services' own requirements) and a family's
name; an unknown name has an empty chain.

A family's Python is one answer, the fullest version known: the nearest `python:`, else the
tag of a `python:X.Y[.Z]` base, else the python3 package of a known distribution release
(Debian bookworm: 3.11.2). The lock needs that full version (uv judges markers such as
`python_full_version < "3.11.3"` by it); a rule comparing wheels needs only X.Y:
`python_minor` is derived from the same answer, never worked out again.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import replace
from pathlib import Path

from dockyard import compat
from dockyard.manifest.models import FamilySpec
from dockyard.plan.model import BuildStep, Plan

Families = Mapping[str, FamilySpec]

# The python3 of well-known bases (the Debian/Ubuntu package of their current release).
_LIBRARY = r"^(?:docker\.io/)?(?:library/)?"
_DISTRO_PYTHON = (
    (re.compile(_LIBRARY + r"debian:(?:bookworm|12)"), "3.11.2"),
    (re.compile(r"^dockyard/bootstrap:bookworm"), "3.11.2"),
    (re.compile(_LIBRARY + r"debian:(?:trixie|13)"), "3.13.5"),
    (re.compile(_LIBRARY + r"ubuntu:(?:22\.04|jammy)"), "3.10.12"),
    (re.compile(_LIBRARY + r"ubuntu:(?:24\.04|noble)"), "3.12.3"),
)
_PYTHON_IMAGE = re.compile(_LIBRARY + r"python(?::|@|$)")
_PYTHON_TAG = re.compile(_LIBRARY + r"python:(\d+\.\d+(?:\.\d+)?)")
_TORCH_REQ = re.compile(r"^\s*torch\s*(?:\[.*\])?\s*(?:[=<>!~;@ ]|$)", re.IGNORECASE)
# CUDA runtime bases: torch's CUDA wheels bring their own CUDA libraries (nvidia-* wheels).
_CUDA_BASE = re.compile(r"^(?:[^/]+/)*nvidia/cuda(?::|$)|^nvcr\.io/nvidia/cuda(?::|$)")


def chain(families: Families, name: str) -> list[str]:
    """`name`, its parent, its parent's parent … up to the family on an external image
    (an unknown name: []; a cycle stops at the first family seen twice)."""
    out: list[str] = []
    while name in families and name not in out:
        out.append(name)
        name = families[name].from_
    return out


def root_family(families: Families, name: str) -> str:
    """The family at the bottom of `name`'s chain, the one `from` an external image; ""."""
    fams = chain(families, name)
    return fams[-1] if fams else ""


def root_image(families: Families, name: str) -> str:
    """The external image at the bottom of a family's chain ("" for an unknown family)."""
    bottom = root_family(families, name)
    return families[bottom].from_ if bottom else ""


def image_python(image: str) -> str:
    """The Python an external image runs, as fully as its name tells: "python:3.11.9-slim"
    -> "3.11.9", "python:3.11-slim" -> "3.11", "debian:bookworm-slim" -> "3.11.2" (the
    release's python3 package); "" when unknown."""
    match = _PYTHON_TAG.match(image)
    if match:
        return match.group(1)
    return next((version for pattern, version in _DISTRO_PYTHON if pattern.match(image)), "")


def python_version(families: Families, name: str) -> str:
    """The Python a family's images run and its packages are locked for: the nearest
    `python:` in its chain, else its root image's (`image_python`); "" when unknown."""
    for fam in chain(families, name):
        if families[fam].python:
            return families[fam].python
    return image_python(root_image(families, name))


def python_minor(families: Families, name: str) -> str:
    """`python_version` as X.Y, what wheel tags (cp311) are judged by; "" when unknown."""
    return compat.minor(python_version(families, name))


def has_python(families: Families, name: str) -> bool:
    """Whether the family's images have a python3: a venv (Python requirements in the
    chain), `python3` from apt, a python image at the root, or a `python:` the manifest
    declares. A plain Debian or Ubuntu image has none (its Python is only what apt would
    install)."""
    fams = chain(families, name)
    return any(own_requirements(families[f]) or "python3" in families[f].apt
               or families[f].python for f in fams) or bool(
        _PYTHON_IMAGE.match(root_image(families, name)))


def own_requirements(fam: FamilySpec) -> list[str]:
    """What the family itself asks for: `requirements`, plus `torch:` as a pin."""
    reqs = list(fam.requirements)
    if fam.torch and not any(_TORCH_REQ.match(r) for r in reqs):
        reqs.insert(0, f"torch=={fam.torch}")
    return reqs


def family_requirements(families: Families, name: str) -> list[str]:
    """A family's requirements with its ancestors' first, so one resolve sees every pin."""
    seen: dict[str, None] = {}
    for fam in reversed(chain(families, name)):
        for req in own_requirements(families[fam]):
            seen.setdefault(req, None)
    return list(seen)


def locked_ancestor(families: Families, name: str) -> str:
    """The nearest ancestor (not `name` itself) that has requirements, hence a lock; or ""."""
    for fam in chain(families, name)[1:]:
        if own_requirements(families[fam]):
            return fam
    return ""


def cuda_stack_problem(families: Families, name: str) -> str:
    """Why a family would ship the CUDA libraries twice, or "" when it does not."""
    base = root_image(families, name)
    torch = any(families[f].torch or any(_TORCH_REQ.match(r) for r in families[f].requirements)
                for f in chain(families, name))
    if torch and _CUDA_BASE.search(base):
        return (f"family {name} installs torch, whose CUDA wheels carry the CUDA libraries, on "
                f"{base}, which carries them too: they would ship twice (about 2 GB)")
    return ""


# --- A service's own requirements: a thin family under it ------------------------------------

LOCK_DIR = "locks"  # beside the manifest: each family's hash-pinned lock, per platform


def lock_path(root: Path, family: str, platform: str) -> Path:
    """locks/<family>.<platform>.txt beside the manifest (`dockyard lock` writes it)."""
    return root / LOCK_DIR / f"{family}.{platform}.txt"


SERVICE_LAYER = ".service"  # suffix of the family dockyard makes for a service's own packages


def service_layer(name: str) -> str:
    """The family holding service `name`'s own `requirements`: e.g. gateway.service."""
    return name + SERVICE_LAYER


def layer_service(family: str, plan: Plan) -> str:
    """The service whose own packages `family` holds, or ""."""
    name = family.removesuffix(SERVICE_LAYER)
    if family.endswith(SERVICE_LAYER) and name in plan.services:
        return name
    return ""


def with_service_layers(plan: Plan) -> Plan:
    """The plan with a thin family under each service that has its own `requirements`.

    The layer is locked against the service's family like any child family and built as
    one; the service's Dockerfile is unchanged (its BASE_IMAGE argument names the layer)."""
    layered = [n for n, sp in sorted(plan.services.items()) if sp.built and sp.spec.requirements]
    if not layered:
        return plan
    families = dict(plan.families)
    builds: list[BuildStep] = []
    for step in plan.builds:
        if step.kind == "service" and step.name in layered and not layer_service(step.parent,
                                                                                 plan):
            name = service_layer(step.name)
            svc = plan.services[step.name].spec
            families[name] = FamilySpec.model_validate(
                {"from": svc.family, "requirements": list(svc.requirements)})
            image = step.base.replace(f"family-{svc.family}:", f"family-{name}:")
            builds.append(BuildStep("family", name, image, step.base, svc.family, step.level))
            builds.append(BuildStep("service", step.name, step.image, image, name,
                                    step.level + 1))
        else:
            builds.append(step)
    builds.sort(key=lambda s: (s.level, s.kind != "family", s.name))
    return replace(plan, builds=builds, families=families)


def builds_for(plan: Plan, services: Collection[str]) -> list[BuildStep]:
    """The plan's build steps that make the images of `services` (those dockyard builds):
    theirs, and every family under them down to the external base, in the plan's order.
    A family no named service stands on is left out, and so are the other services."""
    families = {s.name: s for s in plan.builds if s.kind == "family"}
    by_image = {s.image: s.name for s in families.values()}
    wanted: set[tuple[str, str]] = set()

    def under(parent: str) -> None:
        while parent and ("family", parent) not in wanted and parent in families:
            wanted.add(("family", parent))
            parent = families[parent].parent

    for step in plan.builds:
        if step.kind == "service" and step.name in services:
            wanted.add(("service", step.name))
            under(step.parent)
    # A service that runs a family's image itself (no image of its own: the ingress's
    # haproxy) needs that family.
    for name in services:
        sp = plan.services.get(name)
        if sp is not None and ("service", name) not in wanted and sp.image in by_image:
            under(by_image[sp.image])
    return [s for s in plan.builds if (s.kind, s.name) in wanted]

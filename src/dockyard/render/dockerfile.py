"""Dockerfiles for families (shared bases) and services (their code on a family).

A family with requirements is two stages: `builder` checks every wheel its lock needs against
the lock's sha256 (offline, from the wheelhouse `dockyard fetch` filled), and the runtime stage
installs the checked wheels through a bind mount of the builder, so no wheel, pip cache or
build tool ends up in a layer. The Dockerfile does not depend on the lock's content (the lock
travels in the build context as `requirements.lock`): rendering stays a pure function of the
manifest. Labels that change per build (revision, created) are set by the engine, not here."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace

from dockyard.errors import ManifestError
from dockyard.manifest.models import FamilySpec, ServiceSpec
from dockyard.plan.model import BuildStep, Plan
from dockyard.render.health import health_test
from dockyard.units import format_duration

APP_UID = 10001
VENV = "/opt/venv"
TINI = "/usr/bin/tini"
LOCK_FILE = "requirements.lock"  # the family's locked delta, written into its build context
WHEELS_DIR = "wheels"  # that delta's wheels, linked from the wheelhouse into the context


@dataclass(frozen=True)
class PipTool:
    """The pip that checks and installs a family's wheels. It runs from its own wheel (Python
    runs a package from a zip, as ensurepip does) and is never installed: the images carry no
    pip, and no venv pays for ensurepip compiling pip (4-5 s a family). `dockyard fetch` puts
    it, checked against this sha256 (PyPI's), into the wheelhouse beside the locked wheels."""

    version: str
    sha256: str
    oldest_python: tuple[int, int]

    @property
    def wheel(self) -> str:
        return f"pip-{self.version}-py3-none-any.whl"


# Newest first; pip 26 needs Python 3.10, pip 25.0 is the last for 3.8 and 3.9.
PIPS = (
    PipTool("26.2.1", "sha256:71138adf1f4ca900cdb7d289c21b7494329f2332b6d85f0e1c42108c0384ed3e",
            (3, 10)),
    PipTool("25.0.1", "sha256:c46efd13b6aa8279f33f2864459c8ce587ea6a1a59ee20de055868d8f7688f7f",
            (3, 8)),
)


def pip_for(python: str) -> PipTool:
    """The pip dockyard installs with into an image of Python `python` ("" = unknown: the
    newest)."""
    parts = tuple(int(p) for p in python.split(".")[:2] if p.isdigit())
    if len(parts) < 2:
        return PIPS[0]
    for tool in PIPS:
        if parts >= tool.oldest_python:
            return tool
    raise ManifestError(f"Python {python} is older than any pip dockyard installs with "
                        f"(Python {'.'.join(map(str, PIPS[-1].oldest_python))} or newer)",
                        fix="base the family on a newer Python, or set `python:` if the image "
                            "has a newer one")
# CUDA runtime bases: torch's CUDA wheels bring their own CUDA libraries (nvidia-* wheels).
_CUDA_BASE = re.compile(r"^(?:[^/]+/)*nvidia/cuda(?::|$)|^nvcr\.io/nvidia/cuda(?::|$)")
_TORCH_REQ = re.compile(r"^\s*torch\s*(?:\[.*\])?\s*(?:[=<>!~;@ ]|$)", re.IGNORECASE)


def _json(words: list[str]) -> str:
    return json.dumps(words, ensure_ascii=False)


def _title(kind: str, name: str, fleet: str) -> str:
    # No `# syntax=` line: it makes BuildKit pull a frontend image, and there may be no registry.
    return (f"# {kind} {name} of fleet {fleet}: rendered by dockyard; "
            "edit fleet.yaml, not this file.")


def family_requirements(plan: Plan, name: str) -> list[str]:
    """A family's requirements with its ancestors' first, so one resolve sees every pin."""
    seen: dict[str, None] = {}
    for fam in reversed(family_chain(plan, name)):
        for req in own_requirements(plan.families[fam]):
            seen.setdefault(req, None)
    return list(seen)


def own_requirements(fam: FamilySpec) -> list[str]:
    """What the family itself asks for: `requirements`, plus `torch:` as a pin."""
    reqs = list(fam.requirements)
    if fam.torch and not any(_TORCH_REQ.match(r) for r in reqs):
        reqs.insert(0, f"torch=={fam.torch}")
    return reqs


def family_chain(plan: Plan, name: str) -> list[str]:
    """`name`, its parent, its parent's parent … up to the family on an external image."""
    chain: list[str] = []
    current: str | None = name
    while current and current not in chain:
        chain.append(current)
        parent = plan.families[current].from_
        current = parent if parent in plan.families else None
    return chain


def root_image(plan: Plan, name: str) -> str:
    """The external image at the bottom of a family's chain."""
    return plan.families[family_chain(plan, name)[-1]].from_


def locked_ancestor(plan: Plan, name: str) -> str:
    """The nearest ancestor (not `name` itself) that has requirements, hence a lock; or ""."""
    for fam in family_chain(plan, name)[1:]:
        if own_requirements(plan.families[fam]):
            return fam
    return ""


# The python3 of well-known bases (the Debian/Ubuntu package of their current release).
_DISTRO_PYTHON = (
    (re.compile(r"^(?:docker\.io/library/)?debian:(?:bookworm|12)"), "3.11.2"),
    (re.compile(r"^dockyard/bootstrap:bookworm"), "3.11.2"),
    (re.compile(r"^(?:docker\.io/library/)?debian:(?:trixie|13)"), "3.13.5"),
    (re.compile(r"^(?:docker\.io/library/)?ubuntu:(?:22\.04|jammy)"), "3.10.12"),
    (re.compile(r"^(?:docker\.io/library/)?ubuntu:(?:24\.04|noble)"), "3.12.3"),
)
_PYTHON_TAG = re.compile(r"^(?:docker\.io/library/)?python:(\d+\.\d+(?:\.\d+)?)")


def family_python(plan: Plan, name: str) -> str:
    """The Python a family's packages are locked for: `python:` in it or an ancestor, else its
    base image's when dockyard knows it; "" when unknown."""
    for fam in family_chain(plan, name):
        if plan.families[fam].python:
            return plan.families[fam].python
    base = root_image(plan, name)
    match = _PYTHON_TAG.match(base)
    if match:
        return match.group(1)
    return next((version for pattern, version in _DISTRO_PYTHON if pattern.match(base)), "")


def _python_guard(version: str) -> str:
    """A shell step failing when the image's Python is not the one the lock was made for
    (markers such as python_full_version < "3.11.3" were judged for that one)."""
    test = f"v == '{version}'" if version.count(".") == 2 else f"v.startswith('{version}.')"
    return ("python3 -c \"import platform, sys; v = platform.python_version(); "
            f"sys.exit(0 if {test} else 'this image has Python ' + v + ', the lock is for "
            f"{version}: set python: in fleet.yaml and lock again')\"")


def cuda_stack_problem(plan: Plan, name: str) -> str:
    """Why a family would ship the CUDA libraries twice, or "" when it does not."""
    chain = family_chain(plan, name)
    base = root_image(plan, name)
    torch = any(plan.families[f].torch or any(_TORCH_REQ.match(r) for r in plan.families[f]
                                                  .requirements) for f in chain)
    if torch and _CUDA_BASE.search(base):
        return (f"family {name} installs torch, whose CUDA wheels carry the CUDA libraries, on "
                f"{base}, which carries them too: they would ship twice (about 2 GB)")
    return ""


def render_family_dockerfile(plan: Plan, step: BuildStep) -> str:
    fam: FamilySpec = plan.families[step.name]
    problem = cuda_stack_problem(plan, step.name)
    if problem:
        raise ManifestError(problem, fix="base the family on a plain image such as "
                            "debian:bookworm-slim; the torch wheels bring CUDA with them")
    reqs = own_requirements(fam)
    lines = [_title("family", step.name, plan.fleet), f"ARG BASE_IMAGE={step.base}", ""]
    python = family_python(plan, step.name)
    pip = pip_for(python).wheel if reqs else ""
    if reqs:
        lines += [
            "# builder: every wheel of this family's lock, checked against its sha256, offline.",
            "# Nothing of this stage reaches the image but the checked wheels.",
            "FROM ${BASE_IMAGE} AS builder",
            f"RUN --mount=type=bind,source={WHEELS_DIR},target=/wheels \\",
            f"    --mount=type=bind,source={LOCK_FILE},target=/tmp/{LOCK_FILE} \\",
            *([f"    {_python_guard(python)} \\"] if python else []),
            f"    {'&& ' if python else ''}python3 /wheels/{pip}/pip download --no-index "
            "--no-deps \\",
            "      --require-hashes --no-cache-dir --disable-pip-version-check \\",
            "      --find-links /wheels \\",
            f"      --dest /tmp/verified -r /tmp/{LOCK_FILE}",
            "",
        ]
    lines += ["FROM ${BASE_IMAGE}", "USER 0:0"]
    apt = sorted(set(fam.apt) | ({"tini"} if not step.parent else set()))
    if apt:
        packages = " ".join(apt)
        # Skipped when the base already has them (a bootstrapped base bakes them in offline).
        lines += [
            "# DL3008 (pin apt versions) is ignored: the base image's Debian release pins them,",
            "# and a point release removes the old versions from the mirror.",
            "# hadolint ignore=DL3008",
            "RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \\",
            "    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \\",
            f"    if ! dpkg -s {packages} >/dev/null 2>&1; then \\",
            "      apt-get update \\",
            f"      && apt-get install -y --no-install-recommends {packages}; \\",
            "    fi",
        ]
    if not step.parent:
        lines += [
            f"RUN (getent group {APP_UID} >/dev/null || groupadd -g {APP_UID} app) \\",
            f"    && (getent passwd {APP_UID} >/dev/null \\",
            f"        || useradd -u {APP_UID} -g {APP_UID} -m -d /home/app \\",
            "           -s /usr/sbin/nologin app)",
        ]
    env = {"PATH": f"{VENV}/bin:" + "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    env.update(sorted(fam.env.items()))
    lines += [f"ENV {k}={json.dumps(v)}" for k, v in env.items()]
    if reqs:
        if not locked_ancestor(plan, step.name):
            lines.append(f"RUN python3 -m venv --without-pip {VENV}")
        # Only this family's delta over its parent's lock: the parent's packages are below.
        lines += [
            "RUN --mount=type=bind,from=builder,source=/tmp/verified,target=/wheels \\",
            f"    --mount=type=bind,source={LOCK_FILE},target=/tmp/{LOCK_FILE} \\",
            f"    --mount=type=bind,source={WHEELS_DIR}/{pip},target=/tmp/{pip} \\",
            f"    {VENV}/bin/python /tmp/{pip}/pip install --no-index --no-deps \\",
            "      --require-hashes --no-cache-dir --disable-pip-version-check \\",
            "      --find-links /wheels \\",
            f"      -r /tmp/{LOCK_FILE}",
        ]
    lines += [f"USER {APP_UID}:{APP_UID}", f'ENTRYPOINT ["{TINI}", "--"]', ""]
    return "\n".join(lines)


def render_service_dockerfile(plan: Plan, step: BuildStep) -> str:
    svc: ServiceSpec = plan.services[step.name].spec
    lines = [_title("service", step.name, plan.fleet), f"ARG BASE_IMAGE={step.base}",
             "FROM ${BASE_IMAGE}"]
    targets = sorted({v.split(":")[1] for v in svc.volumes if ":" in v and not _is_bind(v)})
    if targets:
        # A named volume starts as a copy of the image's folder: make it the app user's.
        lines += ["USER 0:0", f"RUN mkdir -p {' '.join(targets)} \\",
                  f"    && chown {APP_UID}:{APP_UID} {' '.join(targets)}"]
    lines += ["WORKDIR /app", f"COPY --chown={APP_UID}:{APP_UID} . /app",
              f"USER {APP_UID}:{APP_UID}"]
    if svc.health:
        h = svc.health
        test = health_test(svc, has_python=_family_has_python(plan, svc.family))
        form = test[0]
        body = _json(test[1:]) if form == "CMD" else test[1]
        # Docker 20.10 rejects --start-period=0s: leave it out when there is none.
        start = f" --start-period={format_duration(h.start_period)}" if h.start_period else ""
        lines.append(
            f"HEALTHCHECK --interval={format_duration(h.interval)} "
            f"--timeout={format_duration(h.timeout)}{start} --retries={h.retries} \\\n"
            f"  CMD {body}"
        )
    lines.append(f'ENTRYPOINT ["{TINI}", "--"]')
    if svc.command:
        lines.append(f"CMD {_json(svc.command)}")
    lines.append("")
    return "\n".join(lines)


def _is_bind(volume: str) -> bool:
    source = volume.split(":")[0]
    return source.startswith((".", "/", "~", "$"))


def _family_has_python(plan: Plan, family: str) -> bool:
    """Families with Python requirements (or under one) carry python3 in their venv."""
    current: str | None = family
    while current:
        fam = plan.families[current]
        if fam.requirements or fam.torch or fam.from_.startswith("python:") or "python3" in fam.apt:
            return True
        current = fam.from_ if fam.from_ in plan.families else None
    return False


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

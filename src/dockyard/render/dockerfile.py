"""Dockerfiles for families (shared bases) and services (their code on a family).

A family with requirements is two stages: `builder` checks every wheel its lock needs against
the lock's sha256 (offline, from the wheelhouse `dockyard fetch` filled), and the runtime stage
installs the checked wheels through a bind mount of the builder, so no wheel, pip cache or
build tool ends up in a layer. The Dockerfile does not depend on the lock's content (the lock
travels in the build context as `requirements.lock`): rendering stays a pure function of the
manifest. Labels that change per build (revision, created) are set by the engine, not here."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass

from dockyard.errors import ManifestError
from dockyard.manifest.models import FamilySpec, ServiceSpec
from dockyard.plan.family import (
    cuda_stack_problem,
    has_python,
    locked_ancestor,
    own_requirements,
    python_version,
)
from dockyard.plan.health import health_test
from dockyard.plan.model import BuildStep, Plan
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


def _json(words: list[str]) -> str:
    return json.dumps(words, ensure_ascii=False)


def _title(kind: str, name: str, fleet: str) -> str:
    # No `# syntax=` line: it makes BuildKit pull a frontend image, and there may be no registry.
    return (f"# {kind} {name} of fleet {fleet}: rendered by dockyard; "
            "edit fleet.yaml, not this file.")


def _python_guard(version: str) -> str:
    """A shell step failing when the image's Python is not the one the lock was made for
    (markers such as python_full_version < "3.11.3" were judged for that one)."""
    test = f"v == '{version}'" if version.count(".") == 2 else f"v.startswith('{version}.')"
    return ("python3 -c \"import platform, sys; v = platform.python_version(); "
            f"sys.exit(0 if {test} else 'this image has Python ' + v + ', the lock is for "
            f"{version}: set python: in fleet.yaml and lock again')\"")


def render_family_dockerfile(plan: Plan, step: BuildStep) -> str:
    fam: FamilySpec = plan.families[step.name]
    problem = cuda_stack_problem(plan.families, step.name)
    if problem:
        raise ManifestError(problem, fix="base the family on a plain image such as "
                            "debian:bookworm-slim; the torch wheels bring CUDA with them")
    reqs = own_requirements(fam)
    lines = [_title("family", step.name, plan.fleet), f"ARG BASE_IMAGE={step.base}", ""]
    python = python_version(plan.families, step.name)
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
        if not locked_ancestor(plan.families, step.name):
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


def render_service_dockerfile(plan: Plan, step: BuildStep,
                              runtime_only: Collection[str] = ()) -> str:
    """`runtime_only`: of "command" and "health", those that use a secret: they are left to
    the compose file (as references), never baked into the image's CMD or HEALTHCHECK."""
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
    if svc.health and "health" not in runtime_only:
        h = svc.health
        test = health_test(svc, has_python=has_python(plan.families, svc.family))
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
    if svc.command and "command" not in runtime_only:
        lines.append(f"CMD {_json(svc.command)}")
    lines.append("")
    return "\n".join(lines)


def _is_bind(volume: str) -> bool:
    source = volume.split(":")[0]
    return source.startswith((".", "/", "~", "$"))

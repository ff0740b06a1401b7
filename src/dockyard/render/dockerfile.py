"""Dockerfiles for families (shared bases) and services (their code on a family)."""

from __future__ import annotations

import json

from dockyard.manifest.models import FamilySpec, ServiceSpec
from dockyard.plan.model import BuildStep, Plan
from dockyard.render.health import health_test
from dockyard.units import format_duration

APP_UID = 10001
VENV = "/opt/venv"
TINI = "/usr/bin/tini"


def _json(words: list[str]) -> str:
    return json.dumps(words, ensure_ascii=False)


def _header(kind: str, name: str, fleet: str, base: str) -> list[str]:
    # No `# syntax=` line: it makes BuildKit pull a frontend image, and there may be no registry.
    return [
        f"# {kind} {name} of fleet {fleet}: rendered by dockyard; edit fleet.yaml, not this file.",
        f"ARG BASE_IMAGE={base}",
        "FROM ${BASE_IMAGE}",
    ]


def family_requirements(plan: Plan, name: str) -> list[str]:
    """A family's requirements with its ancestors' first, so one resolve sees every pin."""
    chain: list[str] = []
    current: str | None = name
    while current:
        chain.append(current)
        parent = plan.families[current].from_
        current = parent if parent in plan.families else None
    seen: dict[str, None] = {}
    for fam in reversed(chain):
        for req in plan.families[fam].requirements:
            seen.setdefault(req, None)
    return list(seen)


def render_family_dockerfile(plan: Plan, step: BuildStep) -> str:
    fam: FamilySpec = plan.families[step.name]
    lines = _header("family", step.name, plan.fleet, step.base)
    lines.append("USER root")
    apt = sorted(set(fam.apt) | ({"tini"} if not step.parent else set()))
    if apt:
        packages = " ".join(apt)
        # Skipped when the base already has them (a bootstrapped base bakes them in offline).
        lines += [
            f"RUN if ! dpkg -s {packages} >/dev/null 2>&1; then \\",
            "      apt-get update \\",
            f"      && apt-get install -y --no-install-recommends {packages} \\",
            "      && rm -rf /var/lib/apt/lists/*; \\",
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
    if fam.requirements:
        lines += [
            f"RUN [ -x {VENV}/bin/python ] || python3 -m venv {VENV}",
            # Wheels come from the host-side wheelhouse in the build context: no network here.
            "RUN --mount=type=bind,source=wheels,target=/wheels \\",
            "    --mount=type=bind,source=requirements.txt,target=/tmp/requirements.txt \\",
            f"    {VENV}/bin/pip install --no-index --no-cache-dir --disable-pip-version-check \\",
            "      --find-links /wheels -r /tmp/requirements.txt",
        ]
    lines += [f"USER {APP_UID}:{APP_UID}", f'ENTRYPOINT ["{TINI}", "--"]', ""]
    return "\n".join(lines)


def render_service_dockerfile(plan: Plan, step: BuildStep) -> str:
    svc: ServiceSpec = plan.services[step.name].spec
    lines = _header("service", step.name, plan.fleet, step.base)
    targets = sorted({v.split(":")[1] for v in svc.volumes if ":" in v and not _is_bind(v)})
    if targets:
        # A named volume starts as a copy of the image's folder: make it the app user's.
        lines += ["USER root", f"RUN mkdir -p {' '.join(targets)} \\",
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
        if fam.requirements or fam.from_.startswith("python:"):
            return True
        current = fam.from_ if fam.from_ in plan.families else None
    return False

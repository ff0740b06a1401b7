"""DY5xx: health checks and dependencies.

What a health check runs inside the container is what plan/health.py says: a python3
probe in images built on a Python family, `curl || wget` in other images, or the user's
`cmd`. DY503/DY504 find a probe whose program the image does not have — from what is known
about stock images (images.KNOWN), or, once an image is built, from the set of programs the
engine found in it (`health_binaries(..., present=...)`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Set

from dockyard.checks.images import known
from dockyard.checks.rules import Rule
from dockyard.findings import Code, Finding, Severity
from dockyard.manifest.load import Fleet
from dockyard.manifest.models import ServiceSpec
from dockyard.plan.family import chain, has_python, root_image
from dockyard.plan.health import health_test
from dockyard.plan.model import Plan

CODES = {c.code: c for c in (
    Code("DY501", Severity.ERROR, "a service waits for a dependency to be healthy, but the "
         "dependency has no health check",
         "add `health:` to the dependency or use `condition: started`"),
    Code("DY502", Severity.WARNING, "a service that others depend on has no health check",
         "add `health: {http: /health}` or `health: {cmd: [...]}`"),
    Code("DY505", Severity.INFO, "a service nobody depends on has no health check: `up` "
         "counts it healthy once it runs, and an upgrade cannot be gated on it",
         "add `health: {http: /health}` or `health: {cmd: [...]}`"),
    Code("DY503", Severity.ERROR, "an http health check needs python3, curl or wget, and the "
         "image has none of them", "add `curl` to the family's `apt:`, or use `cmd:` with a "
         "program the image has"),
    Code("DY504", Severity.ERROR, "a `cmd` health check runs a program the image does not "
         "have", "use a program the image has (e.g. the server's own CLI), or install it"),
    Code("DY506", Severity.ERROR, "a one-shot (others wait for it with `condition: "
         "completed`) has a restart policy that starts it again after it exits 0, so it never "
         "completes", 'give it `restart: "no"` (or `on-failure`)'),
)}

# Shell words that are not programs to look for.
_BUILTINS = {"exit", "true", "false", "test", "[", ":", "echo", "printf", "exec", "set", "cd",
             "command", "!"}


def dependency_without_health(fleet: Fleet, plan: Plan,
                              own_health: Set[str] = frozenset()) -> Iterator[Finding]:
    """DY501: waiting for `healthy` on a service that has no health check (the image's own
    HEALTHCHECK, seen by `check --images`, counts)."""
    for name, svc in sorted(fleet.spec.services.items()):
        for dep, how in sorted(svc.depends_on.items()):
            theirs = fleet.spec.services[dep]
            if how.condition == "healthy" and theirs.health is None and not (
                    dep in own_health and theirs.image_health):
                yield Finding(
                    "DY501", Severity.ERROR, fleet.where("services", name, "depends_on"),
                    f"service {name} waits for {dep} to be healthy, but {dep} has no health "
                    "check (compose fails only at `up` time)",
                    f"add `health:` to {dep}, or write `depends_on: {{{dep}: "
                    "{condition: started}}`", service=name)


def one_shot_restarts(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY506: `always` or `unless-stopped` starts a one-shot again once it exits 0 (the
    manifest's default is unless-stopped), so what waits for it to complete never starts."""
    waiting: dict[str, list[str]] = {}
    for name, svc in sorted(fleet.spec.services.items()):
        for dep, how in svc.depends_on.items():
            if how.condition == "completed":
                waiting.setdefault(dep, []).append(name)
    for name, dependents in sorted(waiting.items()):
        restart = fleet.spec.services[name].restart
        if restart in ("always", "unless-stopped"):
            yield Finding(
                "DY506", Severity.ERROR, fleet.where("services", name, "restart"),
                f"service {name} is a one-shot ({', '.join(dependents)} wait for it to "
                f"complete), but `restart: {restart}` starts it again after it exits 0",
                f'give {name} `restart: "no"` (or `on-failure`)', service=name)


def missing_health(fleet: Fleet, plan: Plan,
                   own_health: Set[str] = frozenset()) -> Iterator[Finding]:
    """DY502: a service with no health check is called healthy as soon as it runs, so what
    depends on it starts too early. Nobody depending on it, nothing starts early: only the
    note DY505 (an upgrade cannot be gated on it)."""
    dependents: dict[str, list[str]] = {}
    one_shots = set()
    for name, svc in sorted(fleet.spec.services.items()):
        for dep, how in svc.depends_on.items():
            if how.condition == "completed":  # a one-shot: exiting 0 is its health
                one_shots.add(dep)
            else:
                dependents.setdefault(dep, []).append(name)
    for name, svc in sorted(fleet.spec.services.items()):
        if svc.health is not None or (name in one_shots and name not in dependents):
            continue
        if name in own_health and svc.image_health:
            continue  # the image's own HEALTHCHECK (`check --images` saw it): `up` waits on it
        if name in dependents:
            yield Finding(
                "DY502", Severity.WARNING, fleet.where("services", name),
                f"service {name} has no health check: {', '.join(dependents[name])} "
                "start as soon as it runs",
                "add `health: {http: /health}` or `health: {cmd: [...]}`", service=name)
        else:
            yield Finding(
                "DY505", Severity.INFO, fleet.where("services", name),
                f"service {name} has no health check: `up` counts it healthy once it runs, "
                "and an upgrade cannot be gated on it",
                "add `health: {http: /health}` or `health: {cmd: [...]}`", service=name)


def needed_programs(test: list[str]) -> list[tuple[str, ...]]:
    """The programs a rendered health test runs: each tuple holds alternatives (a || b)."""
    if not test or test[0] == "NONE":
        return []
    if test[0] == "CMD-SHELL":
        return [("sh",), *_script(test[1] if len(test) > 1 else "")]
    argv = test[1:]
    if not argv:
        return []
    first = os.path.basename(argv[0])
    needs: list[tuple[str, ...]] = [(first,)]
    if first in ("sh", "bash", "ash", "dash") and len(argv) >= 3 and argv[1] == "-c":
        needs += _script(argv[2])
    return needs


def _script(script: str) -> list[tuple[str, ...]]:
    """The first programs of `a ... || b ... || exit 1`: one of them must exist."""
    alternatives: list[str] = []
    for part in script.split("||"):
        words = part.split("&&")[0].split(";")[0].split("|")[0].split()
        words = [w.strip("'\"") for w in words]
        while words and "=" in words[0] and not words[0].startswith("="):
            words = words[1:]  # VAR=value prefix
        if words and words[0] not in _BUILTINS:
            alternatives.append(os.path.basename(words[0]))
    return [tuple(alternatives)] if alternatives else []


def _probes(name: str, svc: ServiceSpec) -> Iterator[tuple[tuple[str | int, ...], ServiceSpec]]:
    """(manifest path of the health, a ServiceSpec whose health/ports are that probe's)."""
    if svc.health:
        yield ("services", name, "health"), svc
    for agent_name, agent in sorted(svc.agents.items()):
        if agent.health:
            yield (("services", name, "agents", agent_name, "health"),
                   svc.model_copy(update={"health": agent.health, "ports": agent.ports}))


def _image_facts(fleet: Fleet, plan: Plan, svc: ServiceSpec) -> tuple[bool, Set[str], Set[str]]:
    """(built on a Python family, programs known present, programs known absent).

    A service's own Dockerfile installs what it likes (`apt-get install curl`): nothing is
    known to be absent from it until the engine looks inside the built image."""
    if svc.dockerfile:
        return has_python(plan.families, svc.family), set(), set()
    if not svc.family:
        facts = known(svc.image)
        return False, facts.present, facts.absent
    python = has_python(plan.families, svc.family)
    present: set[str] = {"python3", "python"} if python else set()
    for fam in chain(plan.families, svc.family):
        present.update(a.split("=")[0] for a in plan.families[fam].apt)
    root = root_image(plan.families, svc.family)
    facts = known(root)
    return python, present | facts.present, facts.absent - present


def _probeable(probe: ServiceSpec) -> bool:
    """An http probe needs a port; without one the loader (services) reports it."""
    health = probe.health
    if health is None:
        return False
    if not health.http or isinstance(health.port, int):
        return True
    return health.port in probe.ports if health.port else bool(probe.ports)


def programs_to_look_for(fleet: Fleet, plan: Plan) -> dict[str, set[str]]:
    """For the engine: the programs each service's health probes run, to look up on its
    image (e.g. `command -v` in a throw-away container) and pass back to health_binaries."""
    wanted: dict[str, set[str]] = {}
    for name, svc in sorted(fleet.spec.services.items()):
        python = has_python(plan.families, svc.family)
        for _, probe in _probes(name, svc):
            if not _probeable(probe):
                continue
            for alternatives in needed_programs(health_test(probe, has_python=python)):
                wanted.setdefault(name, set()).update(alternatives)
    return wanted


def health_binaries(fleet: Fleet, plan: Plan,
                    present: Mapping[str, Set[str]] | None = None) -> Iterator[Finding]:
    """DY503 / DY504: the health probe's program is missing from the image.

    `present` maps a service to the programs found on its built image (the engine can
    list them); for the services it names it is the truth, otherwise known facts are used.
    """
    for name, svc in sorted(fleet.spec.services.items()):
        if svc.health is None and not svc.agents:
            continue
        python, have, known_absent = _image_facts(fleet, plan, svc)
        absent: Set[str] | None = known_absent
        if present is not None and name in present:
            have, absent = present[name], None
        elif not known_absent:
            continue  # nothing is known to be missing: no finding from a guess
        for path, probe in _probes(name, svc):
            if not _probeable(probe):
                continue
            assert probe.health is not None
            test = health_test(probe, has_python=python)
            for alternatives in needed_programs(test):
                if absent is None:
                    missing = not any(p in have for p in alternatives)
                else:
                    missing = all(p in absent and p not in have for p in alternatives)
                if not missing:
                    continue
                image = svc.image or f"family {svc.family}"
                if probe.health.http:
                    yield Finding(
                        "DY503", Severity.ERROR, fleet.where(*path, "http"),
                        f"service {name}: the http health check runs "
                        f"{' or '.join(alternatives)}, which {image} does not have",
                        "add `curl` to the family's `apt:` (or Python requirements), or write "
                        "`health: {cmd: [...]}` with a program the image has", service=name)
                else:
                    yield Finding(
                        "DY504", Severity.ERROR, fleet.where(*path, "cmd"),
                        f"service {name}: the health check runs {' or '.join(alternatives)}, "
                        f"which {image} does not have",
                        known(svc.image).hint if svc.image and known(svc.image).hint else
                        "use a program the image has (e.g. the server's own CLI), or install "
                        "it in the image", service=name)
                break


RULES: list[Rule] = [dependency_without_health, missing_health, health_binaries,
                     one_shot_restarts]

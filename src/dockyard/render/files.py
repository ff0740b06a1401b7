"""Everything `dockyard render` writes, as {relative path: text}."""

from __future__ import annotations

from collections.abc import Mapping

from dockyard.gcpause import gc_paused
from dockyard.manifest.load import Fleet
from dockyard.plan.model import Plan
from dockyard.render.compose import render_compose, supervisor_path, uses_secret
from dockyard.render.dockerfile import (
    render_family_dockerfile,
    render_service_dockerfile,
)
from dockyard.render.env import render_env_example
from dockyard.render.supervisor import render_supervisor


@gc_paused
def render_all(fleet: Fleet, plan: Plan, manifest_text: str, root: str = "",
               addresses: Mapping[str, str] | None = None,
               unresolved: bool = False) -> dict[str, str]:
    """`root`: the fleet's folder seen from the output folder (see compose_service);
    `addresses`: machine -> its resolved `host:` address, `unresolved`: leave out routes to
    names not resolved instead of refusing them (see compose_project)."""
    files: dict[str, str] = {}
    for step in plan.builds:
        if step.kind == "family":
            # What a family installs is its lock (`dockyard lock`), not a rendered list.
            files[f"families/{step.name}/Dockerfile"] = render_family_dockerfile(plan, step)
        elif not plan.services[step.name].spec.dockerfile:  # else the service's own is used
            runtime = [key for key in ("command", "health") if uses_secret(fleet, step.name, key)]
            files[f"services/{step.name}.Dockerfile"] = render_service_dockerfile(plan, step,
                                                                                  runtime)
    for name, sp in plan.services.items():
        if sp.spec.agents:
            files[supervisor_path(name)] = render_supervisor(name, sp.spec)
    for machine in sorted(fleet.spec.machines):
        if plan.on(machine):
            files[f"compose.{machine}.yaml"] = render_compose(fleet, plan, machine, root,
                                                                addresses, unresolved)
    files[".env.example"] = render_env_example(manifest_text)
    return dict(sorted(files.items()))

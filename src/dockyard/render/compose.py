"""compose.<machine>.yaml: the services placed on one machine, ready for `docker compose`."""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML

from dockyard.manifest.load import Fleet
from dockyard.plan.model import Plan, ServicePlan
from dockyard.render.dockerfile import _family_has_python, _is_bind
from dockyard.render.health import health_test
from dockyard.units import format_duration

LABEL = "dev.dockyard"
MiB = 1024 * 1024


def _memory(n: int) -> str:
    return f"{n // MiB}m" if n % MiB == 0 else str(n)


def compose_service(fleet: Fleet, plan: Plan, sp: ServicePlan) -> dict[str, Any]:
    svc = sp.spec
    out: dict[str, Any] = {"image": sp.image}
    if svc.entrypoint:
        out["entrypoint"] = list(svc.entrypoint)
    # Built images carry the command as CMD, but an own Dockerfile has its own CMD, and an
    # `entrypoint:` set here makes compose drop the image's CMD: then compose must say it.
    if svc.command and (not sp.built or svc.dockerfile or svc.entrypoint):
        out["command"] = list(svc.command)
    if svc.user:
        out["user"] = svc.user
    env = {**fleet.spec.machines[sp.machine].profile, **svc.env}
    if sp.gpu_device is not None:
        # The container sees only the reserved GPU (device_ids below), and sees it as GPU 0.
        env.setdefault("CUDA_VISIBLE_DEVICES", "0")
    if env:
        out["environment"] = dict(sorted(env.items()))
    ports = [f"{p.bind}:{p.host_port}:{p.port}" + ("/udp" if p.protocol == "udp" else "")
             for _, p in sp.published]
    if ports:
        out["ports"] = ports
    hidden = sorted(f"{p.port}/udp" if p.protocol == "udp" else str(p.port)
                    for p in svc.ports.values() if not p.publish)
    if hidden:
        out["expose"] = hidden
    if svc.volumes:
        out["volumes"] = list(svc.volumes)
    deps = {name: {"condition": "service_healthy" if d.condition == "healthy"
                   and fleet.spec.services[name].health else "service_started"}
            for name, d in sorted(svc.depends_on.items())
            if plan.services[name].machine == sp.machine}
    if deps:
        out["depends_on"] = deps
    if svc.health:
        h = svc.health
        has_python = sp.built and _family_has_python(plan, svc.family)
        out["healthcheck"] = {
            "test": health_test(svc, has_python=has_python),
            "interval": format_duration(h.interval),
            "timeout": format_duration(h.timeout),
            "retries": h.retries,
        }
        if h.start_period:
            out["healthcheck"]["start_period"] = format_duration(h.start_period)
    limits: dict[str, Any] = {}
    if svc.cpus:
        limits["cpus"] = f"{svc.cpus:g}"
    if svc.memory:
        limits["memory"] = _memory(svc.memory)
    resources: dict[str, Any] = {"limits": limits} if limits else {}
    if sp.gpu_device is not None:
        resources["reservations"] = {"devices": [{
            "driver": "nvidia", "device_ids": [str(sp.gpu_device)], "capabilities": ["gpu"]}]}
    if resources:
        out["deploy"] = {"resources": resources}
    if svc.profiles:
        out["profiles"] = list(svc.profiles)
    out["restart"] = svc.restart
    out["labels"] = {f"{LABEL}.fleet": plan.fleet, f"{LABEL}.service": sp.name,
                     f"{LABEL}.level": str(sp.level)}
    return out


def _escape(value: Any) -> Any:
    """`$` as `$$`: the manifest is already interpolated, compose must not do it again."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape(v) for v in value]
    return value


def compose_project(fleet: Fleet, plan: Plan, machine: str) -> dict[str, Any]:
    services = {sp.name: _escape(compose_service(fleet, plan, sp)) for sp in plan.on(machine)}
    volumes = sorted({v.split(":")[0] for sp in plan.on(machine) for v in sp.spec.volumes
                      if ":" in v and not _is_bind(v)})
    doc: dict[str, Any] = {"name": plan.fleet, "services": services}
    if volumes:
        doc["volumes"] = {v: {"labels": {f"{LABEL}.fleet": plan.fleet}} for v in volumes}
    return doc


def render_compose(fleet: Fleet, plan: Plan, machine: str) -> str:
    header = (f"# compose file for machine {machine} of fleet {plan.fleet}: rendered by "
              "dockyard; edit fleet.yaml, not this file.\n")
    return header + dump_yaml(compose_project(fleet, plan, machine))


def dump_yaml(doc: Any) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096  # long health commands stay on one line
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    buf = io.StringIO()
    yaml.dump(doc, buf)
    return buf.getvalue()

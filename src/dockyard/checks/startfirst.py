"""DY95x: where `upgrade: start-first` cannot keep its promise.

A start-first upgrade runs two containers of the service at once, for the time the new one
takes to become healthy and the old one to drain, and the ingress moves its host ports'
traffic between them (plan/ingress.py). That works for a stateless HTTP service; these
rules name the cases where it cannot:
- no health check: nothing says when traffic may move, so it would move to a copy that does
  not answer yet (the image's own HEALTHCHECK is not known before a build: write `health:`);
- no published TCP port: the ingress only moves host-port traffic; the fleet's own clients
  reach the service by its network name, which both copies answer to (start-first would
  then send them to a copy that is still starting);
- a named volume written by both copies: two Redis or Postgres processes on one data
  folder corrupt it or refuse to start (read-only `:ro` mounts are fine);
- a UDP port, or an agent's published port: the ingress proxies TCP (HTTP) only, and the
  two copies cannot both publish the port themselves.
"""

from __future__ import annotations

from collections.abc import Iterator

from dockyard.checks.rules import Rule
from dockyard.findings import Code, Finding, Severity
from dockyard.manifest.load import Fleet
from dockyard.plan.ingress import fronted_ports, start_first
from dockyard.plan.model import Plan

CODES = {c.code: c for c in (
    Code("DY951", Severity.ERROR, "a start-first service has no health check, so nothing "
         "says when traffic may move to its new container",
         "add `health: {http: /health}` (or `cmd:`), or use `upgrade: stop-first`"),
    Code("DY952", Severity.ERROR, "a start-first service publishes no TCP host port, or a "
         "port the ingress cannot own (UDP, an agent's)", "publish its HTTP port (the "
         "ingress then owns it), or use `upgrade: stop-first`"),
    Code("DY953", Severity.ERROR, "a start-first service writes a named volume, which its "
         "old and new containers would share while both run",
         "mount it read-only (`:ro`), keep the state in a stateful service, or use "
         "`upgrade: stop-first`"),
)}


def start_first_limits(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY951-DY953, one pass over the start-first services."""
    for name, svc in sorted(fleet.spec.services.items()):
        if not start_first(svc):
            continue
        at = ("services", name, "upgrade")
        if svc.health is None:
            yield Finding("DY951", Severity.ERROR, fleet.where(*at),
                          f"service {name} upgrades start-first but has no health check: "
                          "traffic would move to its new container before it answers",
                          "add `health: {http: /health}` (or `cmd:`), or write "
                          "`upgrade: stop-first`", service=name)
        odd = [f"{n} (udp)" for n, p in sorted(svc.ports.items())
               if p.publish and p.protocol == "udp"]
        odd += [f"{a}.{n} (an agent's)" for a, agent in sorted(svc.agents.items())
                for n, p in sorted(agent.ports.items()) if p.publish]
        if odd:
            yield Finding("DY952", Severity.ERROR, fleet.where("services", name, "ports"),
                          f"service {name} upgrades start-first, but the ingress cannot own "
                          f"its published port(s) {', '.join(odd)}, and two containers "
                          "cannot both publish them", "set `publish: false` on them, or "
                          "write `upgrade: stop-first`", service=name)
        elif not fronted_ports(svc):
            yield Finding("DY952", Severity.ERROR, fleet.where(*at),
                          f"service {name} upgrades start-first but publishes no TCP host "
                          "port: the fleet reaches it by name, which both containers answer "
                          "to while the new one starts", "publish its HTTP port (the "
                          "ingress then owns it), or write `upgrade: stop-first`",
                          service=name)
        for i, volume in enumerate(svc.volumes):
            parts = volume.split(":")
            options = parts[2].split(",") if len(parts) > 2 else []
            if len(parts) < 2 or parts[0].startswith(('.', '/', '~', '$')) or "ro" in options:
                continue
            yield Finding("DY953", Severity.ERROR, fleet.where("services", name, "volumes", i),
                          f"service {name} upgrades start-first and writes the named volume "
                          f"{parts[0]}: its old and new containers would both write it",
                          f"mount it read-only (`{parts[0]}:{parts[1]}:ro`), keep that state "
                          "in a stateful service, or write `upgrade: stop-first`",
                          service=name)


RULES: list[Rule] = [start_first_limits]

"""check(fleet, plan) -> every finding, sorted by place."""

from __future__ import annotations

from dockyard.checks.finding import Finding
from dockyard.checks.rules import RULES
from dockyard.manifest.load import Fleet
from dockyard.plan.model import Plan


def check(fleet: Fleet, plan: Plan) -> list[Finding]:
    findings = [f for rule in RULES for f in rule(fleet, plan)]
    return sorted(findings, key=lambda f: (f.where.line, f.where.col, f.code))

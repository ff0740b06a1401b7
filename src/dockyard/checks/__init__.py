"""Checks: rules over the fleet and its plan, each yielding located Findings."""

from dockyard.checks.finding import Finding, Severity
from dockyard.checks.run import check

__all__ = ["Finding", "Severity", "check"]

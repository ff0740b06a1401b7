"""Checks: rules over the fleet and its plan, each yielding located Findings."""

from dockyard.checks.run import Report, check, check_report
from dockyard.findings import Finding, Severity

__all__ = ["Finding", "Report", "Severity", "check", "check_report"]

"""Checks: rules over the fleet and its plan, each yielding located Findings."""

from dockyard.checks.finding import Finding, Severity
from dockyard.checks.run import Report, check, check_report

__all__ = ["Finding", "Report", "Severity", "check", "check_report"]

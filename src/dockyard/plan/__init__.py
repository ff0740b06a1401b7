"""Plan: where each service runs, in which order it starts, and which images to build."""

from dockyard.plan.model import BuildStep, Plan, ServicePlan
from dockyard.plan.plan import plan

__all__ = ["BuildStep", "Plan", "ServicePlan", "plan"]

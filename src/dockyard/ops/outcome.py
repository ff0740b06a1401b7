"""What a failed or interrupted `up` leaves behind, in words: one container list in, one
sentence out. Pure, so every case is a unit test (tests/unit/test_outcome.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set

from dockyard.ops.observed import ContainerState


def left_behind(services: Sequence[str], found: Mapping[str, ContainerState], *,
                failed: Set[str] = frozenset(), waiting: Set[str] = frozenset(),
                one_shot: Set[str] = frozenset()) -> str:
    """Say, for the machine's services in start order, what runs (healthy, or not healthy:
    `failed`, or not yet: `waiting`), what crash-loops, what exited or completed, what was
    created and never started, and what has no container."""
    groups: dict[str, list[str]] = {key: [] for key in _ORDER}
    for name in services:
        c = found.get(name)
        if c is None:
            groups["not created"].append(name)
        elif c.state == "restarting" or (c.restart_count and c.state == "running"):
            groups[_LOOPING].append(f"{name} ({c.restart_count} restart(s))")
        elif c.state == "running":
            note = " (not healthy)" if name in failed else \
                " (not healthy yet)" if name in waiting else ""
            groups["left running"].append(name + note)
        elif c.state in ("exited", "dead") and name in one_shot and c.exit_code == 0:
            groups["completed"].append(name)
        elif c.state in ("exited", "dead"):
            groups["exited"].append(f"{name} (exit code {c.exit_code})")
        elif c.state == "created":
            groups["created, never started"].append(name)
        else:
            groups.setdefault(c.state, []).append(name)
    if not groups["left running"] and not groups[_LOOPING]:
        groups["left running"] = ["nothing"]
    return "; ".join(f"{key}: {', '.join(names)}" for key, names in groups.items() if names)


_LOOPING = "crash-looping (its restart policy keeps starting it)"
_ORDER = ("left running", _LOOPING, "exited", "completed", "created, never started",
          "not created")

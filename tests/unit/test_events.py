"""Each event's line: the text `dockyard <line>` prints, which users and tests grep for."""

from __future__ import annotations

from dockyard.events import (
    LevelHealthy,
    LevelStarted,
    Locking,
    Progress,
    Pulling,
    Pushing,
    RolledBack,
)


def test_lines() -> None:
    assert Progress("nothing was retagged").line() == "nothing was retagged"
    assert Locking("web", "amd64", "3.11.2", 4).line() == (
        "locking family web for amd64, Python 3.11.2: 4 requirement(s)")
    assert Pulling("r:5000/q/web:prev", "r:5000").line() == "pulling r:5000/q/web:prev from r:5000"
    assert Pushing("r:5000/q/web:current").line() == "pushing r:5000/q/web:current"
    assert LevelStarted(("store", "web")).line() == "starting store, web"
    assert LevelHealthy((("store", 0.42), ("web", 12.0))).line() == (
        "healthy: store (0.4s), web (12.0s)")


def test_a_rollback_shows_short_image_ids() -> None:
    old, new = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    assert RolledBack("web", old, new).line() == (
        "web: current is now bbbbbbbbbbbb (was aaaaaaaaaaaa)")
    assert RolledBack("web", "", new).line() == "web: current is now bbbbbbbbbbbb (was none)"
    assert RolledBack("web", old, new, "a, b").line() == (
        "web on a, b: current is now bbbbbbbbbbbb (was aaaaaaaaaaaa)")

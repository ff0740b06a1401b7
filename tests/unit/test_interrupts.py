"""Ctrl-C held over the steps that must not be cut in half (engine/interrupts.py), the points
where tests stop dockyard, and the words around a build's tags. The real SIGINTs to a real
`dockyard` are in tests/engine/test_interrupts.py."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dockyard.engine import interrupts
from dockyard.engine.bootstrap import substitution_lines
from dockyard.engine.build import dated_tag
from dockyard.events import HealthWaiting


def test_ctrl_c_in_a_held_block_lets_it_finish_then_interrupts() -> None:
    done = []
    with pytest.raises(KeyboardInterrupt), interrupts.held():
        signal.raise_signal(signal.SIGINT)  # what Ctrl-C sends, to this process
        done.append("first move")
        done.append("second move")
    assert done == ["first move", "second move"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_a_held_block_without_ctrl_c_is_just_the_block() -> None:
    with interrupts.held():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_pause_point_ends_at_ctrl_c(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(interrupts.PAUSE_AT, "build.promote:2")
    monkeypatch.setattr(interrupts, "PAUSE_SECONDS", 30.0)
    interrupts._reached.clear()
    interrupts.reach("build.promote")  # the first time: not the one asked for
    assert capsys.readouterr().err == ""
    with pytest.raises(KeyboardInterrupt), interrupts.held():
        signal.raise_signal(signal.SIGINT)  # came before the pause: it does not wait 30 s
        interrupts.reach("build.promote")
    assert capsys.readouterr().err == "dockyard: paused at build.promote (DOCKYARD_PAUSE_AT)\n"


def test_points_not_named_do_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(interrupts.KILL_AT, "upgrade.recreate")
    interrupts._reached.clear()
    interrupts.reach("build.promote")  # not killed: it is another point
    assert interrupts._reached["build.promote"] == 1


def test_the_dated_tag_is_sortable_utc_and_one_per_second() -> None:
    now = datetime(2026, 12, 1, 9, 30, 15, tzinfo=UTC)
    assert dated_tag(now, "1a2b3c4d5e6f") == "20261201-093015-1a2b3c4d5e6f"
    later = dated_tag(now + timedelta(seconds=1), "nogit")
    assert later == "20261201-093016-nogit" and later > dated_tag(now, "nogit")
    paris = now.astimezone(timezone(timedelta(hours=1)))
    assert dated_tag(paris, "nogit") == "20261201-093015-nogit"


def test_bases_of_one_unreachable_registry_are_said_once() -> None:
    why = "docker.io cannot be reached: dial tcp: lookup registry-1.docker.io: no such host"
    lines = substitution_lines({"debian:bookworm-slim": why, "python:3.11-slim": why,
                                "ghcr.io/x/base:1": "manifest unknown"}, "dockyard/bootstrap:b")
    assert lines == [
        "debian:bookworm-slim and python:3.11-slim cannot be pulled (" + why + "); building "
        "on dockyard/bootstrap:b, Debian bookworm made with mmdebstrap",
        "ghcr.io/x/base:1 cannot be pulled (manifest unknown); building on "
        "dockyard/bootstrap:b, Debian bookworm made with mmdebstrap"]


def test_the_health_wait_says_who_and_how_long_each_has_left() -> None:
    assert HealthWaiting((("embedder", 55.4), ("gateway", -0.2)), 3.0).line() == (
        "waiting for health: embedder (55 s left), gateway (0 s left)")

"""The registry ping over a real socket: a port where nothing listens is refused, and said
so. Address handling: tests/unit/test_registry.py; the round trip: tests/engine."""

from __future__ import annotations

import socket

import pytest

from dockyard.engine.registry import ping

pytestmark = pytest.mark.process


def test_ping_says_why_when_nothing_listens() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    reason = ping(f"127.0.0.1:{port}", timeout=2)
    assert reason and "refused" in reason.lower()

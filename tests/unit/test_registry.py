"""The registry's address handling (the round trip itself is tests/engine/test_registry.py)."""

from __future__ import annotations

import socket

from dockyard.engine.registry import _ping_urls, ping, registry_host


def test_registry_host_drops_namespace_and_slashes() -> None:
    assert registry_host("ghcr.io/acme/") == "ghcr.io"
    assert registry_host(" 127.0.0.1:5000 ") == "127.0.0.1:5000"


def test_loopback_is_asked_over_http_first_others_over_https() -> None:
    assert _ping_urls("127.0.0.1:5000")[0] == "http://127.0.0.1:5000/v2/"
    assert _ping_urls("localhost:5000")[0].startswith("http://")
    assert _ping_urls("ghcr.io") == ["https://ghcr.io/v2/", "http://ghcr.io/v2/"]


def test_ping_says_why_when_nothing_listens() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    reason = ping(f"127.0.0.1:{port}", timeout=2)
    assert reason and "refused" in reason.lower()

"""The registry's address handling (a ping over a socket: tests/process/test_registry.py; the
round trip itself: tests/engine/test_registry.py)."""

from __future__ import annotations

from dockyard.engine.registry import _ping_urls, registry_host


def test_registry_host_drops_namespace_and_slashes() -> None:
    assert registry_host("ghcr.io/acme/") == "ghcr.io"
    assert registry_host(" 127.0.0.1:5000 ") == "127.0.0.1:5000"


def test_loopback_is_asked_over_http_first_others_over_https() -> None:
    assert _ping_urls("127.0.0.1:5000")[0] == "http://127.0.0.1:5000/v2/"
    assert _ping_urls("localhost:5000")[0].startswith("http://")
    assert _ping_urls("ghcr.io") == ["https://ghcr.io/v2/", "http://ghcr.io/v2/"]

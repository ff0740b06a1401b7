"""The pure bits of the build engine: image events as lines, repositories of refs."""

from __future__ import annotations

from dockyard.engine.build import ImageEvent, repo_of


def test_image_event_lines() -> None:
    assert ImageEvent("family", "web", "built", 3, 7, 12.34).line() == (
        "[3/7] family web: built in 12.3 s")
    assert ImageEvent("service", "api", "unchanged", 4, 7).line() == "[4/7] service api: unchanged"
    assert ImageEvent("family", "web", "building", 2, 7, base="q/family-base:dy-build-1").line() \
        == "family web: building on q/family-base:dy-build-1"
    assert ImageEvent("service", "api", "failed", 2, 7).line() == "service api: failed"


def test_repo_of_keeps_a_registry_port() -> None:
    assert repo_of("quickstart/web:current") == "quickstart/web"
    assert repo_of("registry.lab:5000/c/family-ml:current") == "registry.lab:5000/c/family-ml"
    assert repo_of("registry.lab:5000/chain/web") == "registry.lab:5000/chain/web"

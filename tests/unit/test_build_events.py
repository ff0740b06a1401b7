"""The pure bits of the build engine: image events as lines, repositories of refs."""

from __future__ import annotations

import heapq

from dockyard.engine.build import BATCH, _priorities, _take, repo_of
from dockyard.events import ImageEvent
from dockyard.plan.model import BuildStep


def test_image_event_lines() -> None:
    assert ImageEvent("family", "web", "built", 3, 7, 12.34).line() == (
        "[3/7] family web: built in 12.3 s")
    assert ImageEvent("service", "api", "unchanged", 4, 7).line() == "[4/7] service api: unchanged"
    assert ImageEvent("family", "web", "building", 2, 7, base="q/family-base:dy-build-1").line() \
        == "family web: building on q/family-base:dy-build-1"
    assert ImageEvent("service", "api", "failed", 2, 7).line() == "service api: failed"
    assert ImageEvent("service", "api", "built", 5, 7, 2.5, together=3).line() == (
        "[5/7] service api: built in 2.5 s (one build of 3 images)")


def test_repo_of_keeps_a_registry_port() -> None:
    assert repo_of("quickstart/web:current") == "quickstart/web"
    assert repo_of("registry.lab:5000/c/family-ml:current") == "registry.lab:5000/c/family-ml"
    assert repo_of("registry.lab:5000/chain/web") == "registry.lab:5000/chain/web"


def test_priorities_put_the_family_chain_before_thin_services() -> None:
    # base -> web (3 services); base -> torch -> llm (1 service); torch has 1 service too.
    graph = {"family-base": set(), "family-web": {"family-base"},
             "family-torch": {"family-base"}, "family-llm": {"family-torch"},
             "service-a": {"family-web"}, "service-b": {"family-web"},
             "service-c": {"family-web"}, "service-t": {"family-torch"},
             "service-l": {"family-llm"}}
    rank = _priorities(graph)
    assert rank["family-base"] == (3, 8)
    assert rank["family-torch"] == (2, 3)
    assert rank["family-web"] == (1, 3)
    assert rank["family-llm"] == (1, 1)
    assert rank["service-a"] == (0, 0)
    # torch, web and a's siblings ready at once: the longest chain (torch) goes first, then
    # the family gating more images, and services last.
    ready = ["service-t", "family-web", "family-torch"]
    heap = [(-rank[k][0], -rank[k][1], k) for k in ready]
    heapq.heapify(heap)
    assert [heapq.heappop(heap)[2] for _ in ready] == ["family-torch", "family-web", "service-t"]


def test_thin_services_of_one_family_are_taken_together() -> None:
    def step(kind: str, name: str, parent: str) -> BuildStep:
        return BuildStep(kind, name, f"f/{name}:current", "", parent, 0)  # type: ignore[arg-type]

    steps = {"family-llm": step("family", "llm", "torch")}
    graph: dict[str, set[str]] = {"family-llm": {"family-torch"}}
    for i in range(BATCH + 3):
        steps[f"service-w{i:02}"] = step("service", f"w{i:02}", "web")
        graph[f"service-w{i:02}"] = {"family-web"}
    steps["service-t"] = step("service", "t", "torch")
    graph["service-t"] = {"family-torch"}
    waiting = [(0, 0, key) for key in steps if key != "family-llm"] + [(-1, -8, "family-llm")]
    heapq.heapify(waiting)
    assert _take(waiting, steps, graph) == ["family-llm"]  # a family goes alone, first
    assert _take(waiting, steps, graph) == ["service-t"]  # alone on its family
    first = _take(waiting, steps, graph)
    assert len(first) == BATCH and all(k.startswith("service-w") for k in first)
    rest = _take(waiting, steps, graph)
    assert len(rest) == 3 and not waiting
    assert sorted(first + rest) == [f"service-w{i:02}" for i in range(BATCH + 3)]

"""Pins and history, pure parts: which dated tags GC drops, what `rollback --to TAG` goes
back to, `image_tag:` in the manifest and the plan, and what `up` does with a pinned image
that is not here. The tag lists are recorded ones (tests/fixtures/history)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockyard.errors import DockyardError, ManifestError
from dockyard.manifest.load import loads
from dockyard.ops.history import DatedTag, repo_of, rollback_to, tags_to_drop
from dockyard.ops.images import image_needs
from dockyard.ops.observed import ImageState
from dockyard.plan import plan

FIXTURES = Path(__file__).parents[1] / "fixtures" / "history"

# Seven builds of one image (IDs a..g), newest last, as `docker image ls` listed them.
TAGS = [DatedTag(f"2026120{i}-120000-abc123", f"sha256:{c * 8}")
        for i, c in enumerate("abcdefg", start=1)]


def test_gc_keeps_the_newest_n_and_drops_the_rest_oldest_first() -> None:
    dropped = tags_to_drop(TAGS, 5)
    assert [t.tag for t in dropped] == ["20261201-120000-abc123", "20261202-120000-abc123"]
    assert tags_to_drop(TAGS, 7) == [] and tags_to_drop(TAGS, 10) == []
    assert len(tags_to_drop(TAGS, 1)) == 6


def test_gc_keeps_an_old_tag_a_container_uses_or_a_service_pins() -> None:
    used = {"sha256:" + "a" * 8}  # a stopped container made from the oldest build
    dropped = tags_to_drop(TAGS, 3, protected=used, pinned={"20261203-120000-abc123"})
    assert [t.tag for t in dropped] == ["20261202-120000-abc123", "20261204-120000-abc123"]


def test_gc_ignores_tags_that_are_not_dated_and_order_comes_from_the_name() -> None:
    shuffled = [TAGS[3], DatedTag("current", "sha256:x"), TAGS[0], DatedTag("dy-build-1", "y"),
                TAGS[6], TAGS[1]]
    assert [t.tag for t in tags_to_drop(shuffled, 2)] == [TAGS[0].tag, TAGS[1].tag]


def test_recorded_tags_from_a_real_engine_are_judged() -> None:
    """A listing recorded from the engine test (three builds, keep 2, one old tag in use)."""
    data = json.loads((FIXTURES / "tags.json").read_text())
    tags = [DatedTag(t["tag"], t["image"]) for t in data["tags"]]
    dropped = tags_to_drop(tags, data["keep"], protected=set(data["in_use"]))
    assert [t.tag for t in dropped] == data["dropped"]


def test_rollback_to_a_named_service_needs_that_exact_tag() -> None:
    kept = {"api": ["20261203-120000-c", "20261201-120000-a"], "worker": ["20261203-120000-c"]}
    assert rollback_to(kept, "20261201-120000-a", ["api"]).tags == {"api": "20261201-120000-a"}
    with pytest.raises(DockyardError) as err:
        rollback_to(kept, "20261201-120000-a", ["worker"])
    assert "service worker has no image tagged 20261201-120000-a kept" in err.value.message
    assert "its kept tags, newest first: 20261203-120000-c" in err.value.message


def test_rollback_to_for_the_fleet_goes_back_to_how_that_build_left_each_image() -> None:
    # api rebuilt at 1, 2, 3; worker only at 1 and 3; new (added later) only at 3.
    kept = {"api": ["20261203-0", "20261202-0", "20261201-0"],
            "worker": ["20261203-0", "20261201-0"], "new": ["20261203-0"]}
    result = rollback_to(kept, "20261202-0")
    assert result.tags == {"api": "20261202-0", "worker": "20261201-0"}
    assert result.left == {"new": "its oldest kept image is 20261203-0"}


def test_rollback_to_a_tag_no_image_keeps_lists_the_kept_ones() -> None:
    with pytest.raises(DockyardError) as err:
        rollback_to({"api": ["20261203-0", "20261202-0"]}, "20251111-0")
    assert err.value.message == ("no image of the fleet is tagged 20251111-0: nothing was "
                                 "retagged (kept tags, newest first: 20261203-0, 20261202-0)")


def test_repo_of_keeps_a_registry_port() -> None:
    assert repo_of("localhost:5000/f/web:current") == "localhost:5000/f/web"
    assert repo_of("localhost:5000/f/web") == "localhost:5000/f/web"


PINNED = """\
fleet: pins
machines: {box: {}}
image_history: 3
families:
  web: {from: "python:3.11-slim"}
services:
  api: {family: web, build: api, image_tag: "${FORCE_IMAGE_TAG:-}"}
  worker: {family: web, build: worker}
"""


def test_image_tag_pins_the_planned_image_and_an_unset_variable_pins_nothing() -> None:
    fleet = loads(PINNED, environ={"FORCE_IMAGE_TAG": "20261201-093015-1a2b3c4d5e6f"})
    assert fleet.spec.image_history == 3
    the_plan = plan(fleet)
    assert the_plan.services["api"].image == "pins/api:20261201-093015-1a2b3c4d5e6f"
    assert the_plan.services["worker"].image == "pins/worker:current"
    # The build still makes and moves :current.
    assert {s.image for s in the_plan.builds if s.name == "api"} == {"pins/api:current"}
    unpinned = plan(loads(PINNED, environ={}))
    assert unpinned.services["api"].image == "pins/api:current"
    assert loads("fleet: x\nmachines: {m: {}}\nservices: {a: {image: x}}\n",
                 environ={}).spec.image_history == 5


@pytest.mark.parametrize(("service", "message"), [
    ('{image: "redis:7", image_tag: 20261201-093015-abc}',
     "`image_tag:` pins a dated tag of an image dockyard builds"),
    ("{family: web, build: api, image_tag: latest}",
     "image_tag 'latest' is not a dated tag such as 20261201-093015-1a2b3c4d5e6f"),
])
def test_image_tag_errors_are_located(service: str, message: str) -> None:
    text = ("fleet: pins\nmachines: {box: {}}\nfamilies:\n  web: {from: \"python:3.11-slim\"}\n"
            f"services:\n  api: {service}\n")
    with pytest.raises(ManifestError) as err:
        loads(text, environ={})
    assert "fleet.yaml:6:" in str(err.value) and message in str(err.value)


def test_a_pinned_image_missing_is_never_built_and_never_stale() -> None:
    the_plan = plan(loads(PINNED, environ={"FORCE_IMAGE_TAG": "20261201-093015-abc"}))
    services = list(the_plan.services.values())
    found = {"pins/worker:current": ImageState(id="sha256:w", spec="old")}
    needs = image_needs(services, found, {"pins/worker:current": "new",
                                          "pins/api:current": "new"})
    assert (needs.missing, needs.stale, needs.pinned) == ([], ["worker"], ["api"])
    assert "the pinned `image_tag:` is not here for api" in needs.line("up stops")
    # Here, even built from an older manifest entry: it runs as it is.
    found["pins/api:20261201-093015-abc"] = ImageState(id="sha256:a", spec="older")
    assert not image_needs(services[:1] if services[0].name == "api" else services[1:],
                           found, {"pins/api:current": "new"})


def test_a_plain_rollback_leaves_a_pinned_service_alone() -> None:
    from dockyard.engine.build import rollback_services

    pinned = plan(loads(PINNED, environ={"FORCE_IMAGE_TAG": "20261201-093015-abc"}))
    assert rollback_services(pinned) == ["worker"]
    assert rollback_services(plan(loads(PINNED, environ={}))) == ["api", "worker"]

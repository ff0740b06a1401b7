"""An image is stale when the manifest says something else about it than when it was built:
render/fingerprint.py's hashes, and ops/images.py's decision over them (issue 10 F)."""

from __future__ import annotations

from pathlib import Path

from dockyard.manifest.load import loads
from dockyard.ops.images import image_needs
from dockyard.ops.observed import ImageState
from dockyard.plan import plan
from dockyard.render.fingerprint import spec_hashes

CHAIN = (Path(__file__).parents[1] / "golden" / "family-chain" / "fleet.yaml").read_text()
PREFIX = "registry.lab.internal:5000/chain"


def hashes(text: str) -> dict[str, str]:
    return spec_hashes(plan(loads(text, environ={})))


def test_every_built_image_has_a_hash_and_the_same_manifest_the_same_hashes() -> None:
    got = hashes(CHAIN)
    assert set(got) == {f"{PREFIX}/{name}:current" for name in ("worker", "api")} | {
        f"{PREFIX}/family-{name}:current" for name in ("base", "ml", "serve")}
    assert all(h.startswith("sha256:") and len(h) == 71 for h in got.values())
    assert hashes(CHAIN) == got


def test_an_edited_command_makes_only_that_service_stale() -> None:
    before = hashes(CHAIN)
    after = hashes(CHAIN.replace('command: "python3 -m worker --queue jobs"',
                                 'command: "python3 -m worker --queue other"'))
    changed = {ref for ref in before if before[ref] != after[ref]}
    assert changed == {f"{PREFIX}/worker:current"}


def test_an_edited_family_makes_it_and_every_image_on_it_stale() -> None:
    before = hashes(CHAIN)
    after = hashes(CHAIN.replace("apt: [libgomp1]", "apt: [libgomp1, jq]"))
    changed = {ref.removeprefix(PREFIX + "/") for ref in before if before[ref] != after[ref]}
    # ml is under base; serve is on ml and worker on serve; api on ml.
    assert changed == {"family-ml:current", "family-serve:current", "worker:current",
                       "api:current"}


def test_a_runtime_only_edit_leaves_every_image_current() -> None:
    """Env, ports and memory are the container's, not the image's: no rebuild for them."""
    before = hashes(CHAIN)
    after = hashes(CHAIN.replace("memory: 1536MiB", "memory: 2GiB").replace(
        'ports: {http: "18000:8000"}', 'ports: {http: "18001:8000"}'))
    assert after == before


def test_missing_and_stale_images_are_told_apart() -> None:
    the_plan = plan(loads(CHAIN, environ={}))
    services = the_plan.on("box")
    specs = spec_hashes(the_plan)
    worker, api = f"{PREFIX}/worker:current", f"{PREFIX}/api:current"
    current = {worker: ImageState(id="sha256:1", spec=specs[worker]),
               api: ImageState(id="sha256:2", spec=specs[api])}
    assert not image_needs(services, current, specs)
    needs = image_needs(services, {**current, api: None}, specs)
    assert (needs.missing, needs.stale) == (["api"], [])
    needs = image_needs(services, {**current, worker: ImageState(id="sha256:1", spec="old")},
                        specs)
    assert (needs.missing, needs.stale) == ([], ["worker"])
    assert needs.line("building them first") == (
        "images built from an older manifest entry for worker: building them first")
    # Built by a dockyard that did not label: it cannot say what it was made from.
    needs = image_needs(services, {**current, worker: ImageState(id="sha256:1")}, specs)
    assert needs.stale == ["worker"]


def test_stock_images_are_never_stale() -> None:
    fleet = loads("fleet: f\nmachines: {m: {}}\nservices:\n  db: {image: redis:7.4.1}\n",
                  environ={})
    the_plan = plan(fleet)
    assert spec_hashes(the_plan) == {}
    assert not image_needs(the_plan.on("m"), {"redis:7.4.1": ImageState(id="x")}, {})

"""What to ship where (ops/ship.py), on facts recorded from real engines: two images built on
the bootstrap base, and a machine that has only that base."""

from __future__ import annotations

import json
from pathlib import Path

from dockyard.events import Shipped, Shipping, ShipProgress
from dockyard.ops.ship import Holding, ImageFacts, plan_shipment, skippable

RECORDED = json.loads((Path(__file__).parents[1] / "fixtures" / "ship" / "base-only.json")
                      .read_text())
SOURCE = [ImageFacts(f["ref"], f["id"], tuple(f["layers"]), tuple(f["sizes"]))
          for f in RECORDED["source"]]
CHILD, GRANDCHILD = SOURCE
MACHINE = RECORDED["machine"]
BASE_ONLY = Holding(MACHINE["refs"], frozenset(MACHINE["ids"]), frozenset(MACHINE["chains"]))
ARCHIVE = RECORDED["archive"]


def test_a_machine_with_the_base_gets_only_the_layers_on_top() -> None:
    shipment = plan_shipment("b", SOURCE, BASE_ONLY)
    assert shipment.send == (CHILD.ref, GRANDCHILD.ref)
    assert not shipment.tag and not shipment.kept
    # The child's 5 MiB layer and the grandchild's 4 bytes, each once; not the 207 MiB base.
    assert shipment.bytes == CHILD.sizes[1] + GRANDCHILD.sizes[2] == 5242890
    assert shipment.full == sum(GRANDCHILD.sizes)
    assert shipment.present == {CHILD.chains[0]}


def test_a_fresh_machine_gets_every_layer_once() -> None:
    shipment = plan_shipment("c", SOURCE, Holding())
    assert shipment.send == (CHILD.ref, GRANDCHILD.ref)
    assert shipment.bytes == shipment.full == sum(GRANDCHILD.sizes)
    assert shipment.present == frozenset()


def test_images_already_there_are_kept_and_a_known_id_is_only_tagged() -> None:
    after = Holding({CHILD.ref: CHILD.id, GRANDCHILD.ref: ""},
                    frozenset({CHILD.id, GRANDCHILD.id}), frozenset(GRANDCHILD.chains))
    shipment = plan_shipment("b", SOURCE, after)
    assert shipment.kept == (CHILD.ref,)
    assert shipment.tag == ((GRANDCHILD.id, GRANDCHILD.ref),)
    assert not shipment.send and shipment.bytes == 0
    # A second ship after the first: every name points at its image, nothing is sent.
    done = Holding({CHILD.ref: CHILD.id, GRANDCHILD.ref: GRANDCHILD.id},
                   frozenset({CHILD.id, GRANDCHILD.id}), frozenset(GRANDCHILD.chains))
    again = plan_shipment("b", SOURCE, done)
    assert again.empty and again.kept == (CHILD.ref, GRANDCHILD.ref)


def test_an_older_image_under_the_name_is_replaced() -> None:
    stale = Holding({CHILD.ref: "sha256:" + "0" * 64}, frozenset({"sha256:" + "0" * 64}),
                    frozenset({CHILD.chains[0]}))
    assert plan_shipment("b", [CHILD], stale).send == (CHILD.ref,)


def test_the_archive_leaves_out_the_base_layer_file_only() -> None:
    manifest, diff_ids = ARCHIVE["manifest"], ARCHIVE["diff_ids"]
    base_file = manifest[0]["Layers"][0]
    assert skippable(manifest, diff_ids, BASE_ONLY.chains) == {base_file}
    assert skippable(manifest, diff_ids, set()) == set()
    everything = set(CHILD.chains) | set(GRANDCHILD.chains)
    assert skippable(manifest, diff_ids, everything) == {
        path for entry in manifest for path in entry["Layers"]}


def test_a_layer_file_on_another_parent_is_not_skipped() -> None:
    # Same layer file listed by two images; one of them has it on a parent the machine lacks.
    manifest = [{"Config": "a.json", "Layers": ["base/layer.tar", "top/layer.tar"]},
                {"Config": "b.json", "Layers": ["other/layer.tar", "top/layer.tar"]}]
    diff_ids = {"a.json": ["sha256:" + "1" * 64, "sha256:" + "2" * 64],
                "b.json": ["sha256:" + "3" * 64, "sha256:" + "2" * 64]}
    a = ImageFacts("a", "sha256:a", tuple(diff_ids["a.json"]))
    assert skippable(manifest, diff_ids, a.chains) == {"base/layer.tar"}
    # An entry whose config lists other layers than the manifest: sent whole.
    odd = [{"Config": "a.json", "Layers": ["base/layer.tar"]}]
    assert skippable(odd, diff_ids, a.chains) == set()


def test_shipping_lines_show_sizes() -> None:
    assert Shipping("b", ("q/web:current", "q/db:current"), 5 << 20, 212 << 20).line() == (
        "shipping 2 image(s) to b: 5MiB of 212MiB (207MiB of layers already there)")
    assert Shipping("c", ("q/web:current",), 3 << 20, 3 << 20, tagged=1).line() == (
        "shipping q/web:current to c: 3MiB; 1 tagged from images it has")
    assert Shipping("c", (), 0, 0, tagged=2).line() == (
        "c has every image's layers; 2 tagged from images it has")
    assert ShipProgress("b", 50 << 20, 200 << 20, 2.0).line() == (
        "shipping to b: 50MiB of 200MiB (25MiB/s)")
    assert Shipped("b", ("x",), 5 << 20, 0.34).line() == "b loaded 1 image(s): 5MiB in 0.3 s"

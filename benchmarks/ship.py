"""Shipping images to machines without a registry: dockyard's ship vs `docker save | ssh docker
load`, on the three-machine harness (tests/machines/harness.py: netns engines reached over SSH).

    (a) dockyard: engine/ship.py ship() of the fleet's service images to a fresh machine:
        one `docker save` of them all, streamed into the machine's `docker load` over its
        SSH connection (one multiplexed master, the engine socket forwarded), every layer
        once; then (a2) the same again (nothing to send) and (a3) after one thin image on
        top changed (only its layer goes).
    (b) by hand, image by image: `docker save IMAGE | ssh root@machine docker load` for each
        image, into another fresh machine (shared family layers go once per image).
    (c) by hand, all at once: `docker save IMAGES... | ssh root@machine docker load` (layers
        once, as (a), without skipping what the machine has).

The images are the bundled example's built service images (`dockyard build` of the example
first; they share the family chain base-python -> web -> embed). Every machine starts empty.

    .venv/bin/python benchmarks/ship.py [--images REF ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.machines.harness import Harness

from dockyard.engine.connection import Endpoint, Engine
from dockyard.engine.ship import ship
from dockyard.events import Event

EXAMPLE_IMAGES = ["quickstart/store:current", "quickstart/gateway:current",
                  "quickstart/embedder:current"]


def _timed(argv: str) -> float:
    t0 = time.monotonic()
    subprocess.run(["bash", "-o", "pipefail", "-c", argv], check=True, capture_output=True,
                   timeout=1800)
    return time.monotonic() - t0


def _size(refs: list[str]) -> int:
    out = subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", *refs],
                         check=True, capture_output=True, text=True).stdout.split()
    return sum(int(n) for n in out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", nargs="*", default=EXAMPLE_IMAGES)
    args = parser.parse_args()
    refs: list[str] = args.images
    missing = [r for r in refs if subprocess.run(["docker", "image", "inspect", r],
                                                 capture_output=True).returncode]
    if missing:
        sys.exit(f"not built here: {', '.join(missing)} (run `dockyard build` of the example)")
    import os

    results: dict[str, object] = {"images": refs, "sum_of_image_sizes": _size(refs)}
    with Harness(f"hsb{uuid.uuid4().hex[:4]}", count=3) as h, \
            tempfile.TemporaryDirectory() as state:
        os.environ.update(h.env())
        a, b, c = h.machines
        ssh = " ".join(h.ssh_command())
        events: list[Event] = []

        def engine(m: object) -> Engine:
            name, url = getattr(m, "name"), getattr(m, "engine_url")  # noqa: B009
            return Engine(Endpoint(url, f"machines.{name}.engine", None, name))

        ea = engine(a)
        ea.client  # noqa: B018 - the SSH master is opened before the clock starts
        t0 = time.monotonic()
        first = ship(Engine.local(), {"a": (ea, refs)}, Path(state), emit=events.append)
        results["dockyard_fresh_s"] = round(time.monotonic() - t0, 2)
        results["dockyard_fresh_bytes"] = first.sent["a"]
        t0 = time.monotonic()
        again = ship(Engine.local(), {"a": (ea, refs)}, Path(state), emit=events.append)
        results["dockyard_again_s"] = round(time.monotonic() - t0, 2)
        results["dockyard_again_bytes"] = sum(again.sent.values())
        with tempfile.TemporaryDirectory() as ctx:
            thin = f"hsb-thin/{refs[-1].split('/')[-1]}"
            Path(ctx, "Dockerfile").write_text(f"FROM {refs[-1]}\nRUN date > /tmp/changed\n")
            subprocess.run(["docker", "build", "-q", "-t", thin, ctx], check=True,
                           capture_output=True)
            try:
                t0 = time.monotonic()
                changed = ship(Engine.local(), {"a": (ea, [thin])}, Path(state),
                               emit=events.append)
                results["dockyard_one_changed_s"] = round(time.monotonic() - t0, 2)
                results["dockyard_one_changed_bytes"] = changed.sent["a"]
            finally:
                subprocess.run(["docker", "rmi", "-f", thin], capture_output=True)
        b_at = f"{ssh} {b.ssh_target} docker load"
        results["by_hand_each_s"] = round(sum(_timed(f"docker save {r} | {b_at}")
                                              for r in refs), 2)
        results["by_hand_all_s"] = round(_timed(f"docker save {' '.join(refs)} | "
                                                f"{ssh} {c.ssh_target} docker load"), 2)
        for m in (a, b, c):
            ids = {r: m.has_image(r) for r in refs}
            assert all(ids.values()), (m.name, ids)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

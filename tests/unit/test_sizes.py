"""Size arithmetic: aligning history sizes to layers, sharing by chain, budgets (DY604).

The histories below are shaped like what Docker 20.10's history API returns for BuildKit
images (see tests/engine/test_images.py for the same numbers checked on real images)."""

from __future__ import annotations

import hashlib

from dockyard.findings import Severity
from dockyard.manifest.load import loads
from dockyard.plan.sizes import (
    EMPTY_TAR,
    HistoryEntry,
    ImageLayers,
    budget_findings,
    chain_ids,
    instruction,
    layer_sizes,
    size_report,
)

BASE = [("dockyard bootstrap: bookworm minbase", 224_635_759),
        ("USER root", 0),
        ("RUN /bin/sh -c if ! dpkg -s tini; then apt-get install tini; fi", 0),
        ("RUN /bin/sh -c groupadd -g 10001 app", 9_088),
        ("ENV PATH=/opt/venv/bin:/usr/bin", 0),
        ("USER 10001:10001", 0),
        ('ENTRYPOINT ["/usr/bin/tini" "--"]', 0)]
WEB = [("RUN /bin/sh -c python3 -m venv /opt/venv", 21_620_800),
       ("RUN /bin/sh -c /opt/venv/bin/pip install --no-index -r /tmp/r.txt", 19_791_630),
       ("USER 10001:10001", 0)]
APP = [("WORKDIR /app", 0), ("COPY . /app # buildkit", 2_410),
       ("HEALTHCHECK &{[CMD python3 -c ...]}", 0), ('CMD ["python3" "app.py"]', 0)]


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def image(ref: str, kind: str, name: str, steps: list[tuple[str, int]],
          layer_names: list[str]) -> ImageLayers:
    history = tuple(HistoryEntry(by, size) for by, size in steps)
    return ImageLayers(ref, kind, name, sum(s for _, s in steps),
                       tuple(digest(n) for n in layer_names), history)


BASE_LAYERS = ["bootstrap", "dpkg", "user"]
FAMILY = image("demo/family-web:current", "family", "web", BASE + WEB,
               [*BASE_LAYERS, "venv", "pip"])
SERVICE = image("demo/api:current", "service", "api", BASE + WEB + APP,
                [*BASE_LAYERS, "venv", "pip", "workdir", "copy"])
OTHER = image("demo/family-redis:current", "family", "redis",
              [*BASE, ("RUN /bin/sh -c apt-get install redis", 1_000_000)],
              [*BASE_LAYERS, "redis"])


def test_instruction_reads_buildkit_classic_and_import_entries() -> None:
    assert instruction("ENV A=1") == "ENV"
    assert instruction("/bin/sh -c #(nop)  CMD [\"sh\"]") == "CMD"
    assert instruction("/bin/sh -c #(nop) COPY file:abc in /app") == "COPY"
    assert instruction("/bin/sh -c apt-get update") == "RUN"
    assert instruction("|2 A=1 B=2 /bin/sh -c make") == "RUN"
    assert instruction("") == ""


def test_layer_sizes_align_exactly_with_zero_byte_layers() -> None:
    sizes, exact = layer_sizes(SERVICE.layers, SERVICE.history)
    assert exact
    assert [s for s, _ in sizes] == [224_635_759, 0, 9_088, 21_620_800, 19_791_630, 0, 2_410]
    assert sizes[1][1].startswith("RUN /bin/sh -c if ! dpkg")  # a 0-byte layer, kept in place


def test_layer_sizes_fall_back_when_counts_differ() -> None:
    # An unknown instruction of 0 bytes makes one step too many: sizes go onto the layers
    # that are not the empty tarball, in order, and the result says it is not exact.
    steps = (HistoryEntry("base", 100), HistoryEntry("FROBNICATE x", 0), HistoryEntry("RUN b", 50))
    sizes, exact = layer_sizes((digest("a"), digest("b")), steps)
    assert not exact and [s for s, _ in sizes] == [100, 50]
    sizes, _ = layer_sizes((digest("a"), EMPTY_TAR, digest("c"), digest("d")), steps)
    assert [s for s, _ in sizes] == [100, 0, 50, 0]


def test_chain_ids_follow_dockers_definition() -> None:
    a, b = digest("a"), digest("b")
    expected = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    assert chain_ids([a, b]) == [a, expected]
    # The same diff on another base is another chain: stored (and counted) twice.
    assert chain_ids([b, a])[1] != chain_ids([a, b])[1] and chain_ids([b])[0] == b


def test_shared_and_unique_bytes_and_fleet_disk() -> None:
    report = size_report([FAMILY, SERVICE, OTHER])
    by = {i.name: i for i in report.images}
    base = 224_635_759 + 9_088
    web = base + 21_620_800 + 19_791_630
    assert by["web"].size == web and by["web"].shared == web and by["web"].unique == 0
    assert by["api"].size == web + 2_410
    assert (by["api"].shared, by["api"].unique) == (web, 2_410)
    assert (by["redis"].shared, by["redis"].unique) == (base, 1_000_000)
    assert report.disk == web + 2_410 + 1_000_000
    assert report.total == web + web + 2_410 + base + 1_000_000
    assert all(i.exact for i in report.images)


def test_same_diff_on_another_base_is_not_shared() -> None:
    a = image("x/a:current", "service", "a", [("base-a", 10), ("COPY x", 5)], ["A", "same"])
    b = image("x/b:current", "service", "b", [("base-b", 20), ("COPY x", 5)], ["B", "same"])
    report = size_report([a, b])
    assert [i.shared for i in report.images] == [0, 0] and report.disk == 40


def test_an_image_alone_shares_nothing() -> None:
    report = size_report([SERVICE])
    assert report.images[0].shared == 0 and report.disk == report.images[0].size


MANIFEST = """\
fleet: demo
machines:
  local: {}
families:
  web:
    from: python:3.11-slim
    max_size: 100MB
  redis:
    from: debian:bookworm-slim
    max_size: 1GB
services:
  api:
    family: web
    build: api
    max_size: 10MB
  cache:
    image: redis:7.2
    max_size: 50MB
"""


def test_budget_findings_located_at_max_size() -> None:
    fleet = loads(MANIFEST)
    stock = image("redis:7.2", "stock", "cache", [("ADD rootfs", 60_000_000)], ["r"])
    findings = budget_findings(fleet, size_report([FAMILY, SERVICE, OTHER, stock]))
    got = {(f.code, f.severity, str(f.where)) for f in findings}
    assert got == {("DY604", Severity.WARNING, "fleet.yaml:7:5"),   # family web
                   ("DY604", Severity.WARNING, "fleet.yaml:15:5"),  # service api
                   ("DY604", Severity.WARNING, "fleet.yaml:18:5")}  # stock image of cache
    web = next(f for f in findings if "family web" in f.message)
    assert web.message.startswith("family web: image demo/family-web:current is 253.7MiB, "
                                  "over its max_size of ")
    assert "dockyard bootstrap" in web.fix  # the biggest layer is named


def test_no_budget_or_within_budget_no_finding() -> None:
    fleet = loads(MANIFEST.replace("max_size: 100MB", "max_size: 1GB")
                  .replace("max_size: 10MB", "max_size: 1GB"))
    assert budget_findings(fleet, size_report([FAMILY, SERVICE, OTHER])) == []

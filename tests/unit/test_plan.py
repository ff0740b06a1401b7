"""plan(fleet): start levels, cycles, the build graph, image names and placement."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

import dockyard
from dockyard.errors import ManifestError
from dockyard.manifest.load import Fleet, load, loads
from dockyard.plan import BuildStep, Plan, plan
from dockyard.plan.plan import MOVING_TAG, image_name

EXAMPLE = Path(dockyard.__file__).parent / "examples" / "quickstart" / "fleet.yaml"

ONE_MACHINE = """\
fleet: demo
machines:
  local: {}
"""


def fleet_of(services: str, *, head: str = ONE_MACHINE, families: str = "") -> Fleet:
    """A manifest from a head (fleet + machines), optional families and services, as YAML."""
    text = head + (f"families:\n{families}" if families else "") + f"services:\n{services}"
    return loads(text, environ={})


def stock(name: str, *deps: str, extra: str = "") -> str:
    """A stock-image service entry; `deps` become its depends_on list."""
    lines = f"  {name}:\n    image: redis:7.4.1\n"
    if deps:
        lines += f"    depends_on: [{', '.join(deps)}]\n"
    return lines + extra


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing `needle`."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


# --- start levels ---------------------------------------------------------------------------

def test_chain_gets_one_level_per_link() -> None:
    p = plan(fleet_of(stock("c", "b") + stock("a") + stock("b", "a")))
    assert p.levels == [["a"], ["b"], ["c"]]
    assert {n: sp.level for n, sp in p.services.items()} == {"a": 0, "b": 1, "c": 2}


def test_diamond_puts_both_middles_on_one_level() -> None:
    p = plan(fleet_of(stock("top", "left", "right") + stock("right", "base")
                      + stock("left", "base") + stock("base")))
    assert p.levels == [["base"], ["left", "right"], ["top"]]


def test_independent_services_share_level_zero_sorted_by_name() -> None:
    p = plan(fleet_of(stock("zeta") + stock("alpha") + stock("mid")))
    assert p.levels == [["alpha", "mid", "zeta"]]
    assert all(sp.level == 0 for sp in p.services.values())


def test_a_level_waits_for_the_deepest_dependency() -> None:
    # d needs a (level 0) and c (level 2): it starts after c, on level 3.
    p = plan(fleet_of(stock("a") + stock("b", "a") + stock("c", "b") + stock("d", "a", "c")))
    assert p.levels == [["a"], ["b"], ["c"], ["d"]]


def test_every_level_depends_only_on_earlier_levels() -> None:
    p = plan(load(EXAMPLE, environ={}))
    assert p.levels == [["store"], ["embedder"], ["gateway"]]
    for sp in p.services.values():
        assert all(p.services[dep].level < sp.level for dep in sp.spec.depends_on)


# --- cycles ---------------------------------------------------------------------------------

def test_dependency_cycle_names_the_loop_and_where_it_is() -> None:
    services = (stock("ok") + stock("a", "c", "ok") + stock("b", "a")
                + "  c:\n    image: redis:7.4.1\n    depends_on: {b: {condition: started}}\n")
    fleet = fleet_of(services)
    text = ONE_MACHINE + "services:\n" + services
    with pytest.raises(ManifestError) as info:
        plan(fleet)
    message = str(info.value)
    found = re.match(r"fleet\.yaml:(\d+):(\d+): services form a cycle of `depends_on`: (.*) \(",
                     message)
    assert found, message
    # Read as written: a's depends_on names c, c's names b, b's names a.
    assert found[3] == "a -> c -> b -> a"
    assert int(found[1]) == line_of(text, "depends_on: [c, ok]")
    assert "ok" not in found[3]
    assert info.value.fix == "remove one `depends_on` link in that loop"


def test_two_service_cycle_points_at_the_mapping_entry() -> None:
    services = ("  a:\n    image: redis:7.4.1\n    depends_on:\n      b: {condition: started}\n"
                + stock("b", "a"))
    text = ONE_MACHINE + "services:\n" + services
    with pytest.raises(ManifestError) as info:
        plan(fleet_of(services))
    line = line_of(text, "b: {condition: started}")
    assert str(info.value).startswith(
        f"fleet.yaml:{line}:7: services form a cycle of `depends_on`: a -> b -> a")


def test_family_cycle_names_the_loop_and_where_it_is() -> None:
    families = ("  base:\n    from: python:3.11-slim\n"
                "  x:\n    from: z\n  y:\n    from: x\n  z:\n    from: y\n")
    fleet_text = ONE_MACHINE + "families:\n" + families + "services:\n" + stock("s")
    with pytest.raises(ManifestError) as info:
        plan(loads(fleet_text, environ={}))
    message = str(info.value)
    found = re.match(r"fleet\.yaml:(\d+):(\d+): families form a cycle of `from`: (.*) \(", message)
    assert found, message
    cycle = found[3].split(" -> ")
    assert cycle[0] == cycle[-1]
    assert sorted(cycle[:-1]) == ["x", "y", "z"]
    assert "base" not in cycle
    # Each family is built `from` the next one, as written in the manifest.
    written = {"x": "z", "y": "x", "z": "y"}
    assert all(written[a] == b for a, b in itertools.pairwise(cycle))
    assert int(found[1]) == line_of(fleet_text, f"from: {written[cycle[0]]}")
    assert int(found[2]) == 5


# --- build graph ----------------------------------------------------------------------------

def chain_fleet(registry: str = "") -> Fleet:
    head = "fleet: shop\n" + (f"registry: {registry}\n" if registry else "") + \
        "machines:\n  local: {}\n"
    families = ("  leaf:\n    from: mid\n  mid:\n    from: root\n"
                "  root:\n    from: python:3.12-slim\n  other:\n    from: debian:bookworm-slim\n")
    services = ("  web:\n    family: leaf\n    build: web\n"
                "  tool:\n    family: root\n    build: tool\n"
                "  cache:\n    image: redis:7.4.1\n")
    return fleet_of(services, head=head, families=families)


def test_build_graph_puts_families_before_their_children() -> None:
    p = plan(chain_fleet())
    order = [(s.kind, s.name, s.level) for s in p.builds]
    assert order == [
        ("family", "other", 0), ("family", "root", 0),
        ("family", "mid", 1), ("service", "tool", 1),
        ("family", "leaf", 2),
        ("service", "web", 3),
    ]
    position = {(s.kind, s.name): i for i, s in enumerate(p.builds)}
    for step in p.builds:
        if step.parent:
            assert position[("family", step.parent)] < position[(step.kind, step.name)]
            assert p.step(step.parent, "family").level < step.level


def test_build_steps_name_their_bases() -> None:
    p = plan(chain_fleet())
    assert p.step("root", "family") == BuildStep(
        "family", "root", "shop/family-root:current", "python:3.12-slim", "", 0)
    assert p.step("mid", "family") == BuildStep(
        "family", "mid", "shop/family-mid:current", "shop/family-root:current", "root", 1)
    assert p.step("web", "service") == BuildStep(
        "service", "web", "shop/web:current", "shop/family-leaf:current", "leaf", 3)
    assert not any(s.name == "cache" for s in p.builds)  # a stock image is not built


def test_build_levels_group_steps_that_can_build_together() -> None:
    levels = plan(chain_fleet()).build_levels()
    assert [[(s.kind, s.name) for s in level] for level in levels] == [
        [("family", "other"), ("family", "root")],
        [("family", "mid"), ("service", "tool")],
        [("family", "leaf")],
        [("service", "web")],
    ]


def test_example_build_graph() -> None:
    p = plan(load(EXAMPLE, environ={}))
    assert [(s.level, s.kind, s.name) for s in p.builds] == [
        (0, "family", "base-python"), (0, "family", "redis"),
        (1, "family", "web"), (1, "service", "store"),
        (2, "family", "embed"), (2, "service", "gateway"),
        (3, "service", "embedder"),
    ]
    assert set(p.families) == {"base-python", "redis", "web", "embed"}


def test_no_families_means_no_builds() -> None:
    p = plan(fleet_of(stock("a")))
    assert p.builds == []
    assert p.build_levels() == []


# --- image names ----------------------------------------------------------------------------

def test_image_names_without_registry() -> None:
    fleet = chain_fleet()
    assert image_name(fleet, "web", "service") == "shop/web"
    assert image_name(fleet, "leaf", "family") == "shop/family-leaf"
    p = plan(fleet)
    assert p.services["web"].image == f"shop/web:{MOVING_TAG}"
    assert p.services["cache"].image == "redis:7.4.1"  # stock images keep their name


@pytest.mark.parametrize("registry", ["registry.example.com:5000", "registry.example.com:5000/"])
def test_image_names_with_registry(registry: str) -> None:
    fleet = chain_fleet(registry)
    assert image_name(fleet, "web", "service") == "registry.example.com:5000/shop/web"
    assert image_name(fleet, "root", "family") == "registry.example.com:5000/shop/family-root"
    p = plan(fleet)
    assert p.services["web"].image == "registry.example.com:5000/shop/web:current"
    assert p.step("mid", "family").base == "registry.example.com:5000/shop/family-root:current"
    assert p.step("root", "family").base == "python:3.12-slim"  # external: not prefixed
    assert p.services["cache"].image == "redis:7.4.1"


# --- placement ------------------------------------------------------------------------------

TWO_MACHINES = """\
fleet: lab
machines:
  alpha: {cpus: 8}
  gpu-box:
    gpus: [{model: NVIDIA GeForce RTX 4090, memory: 24GiB}, {memory: 12GiB}]
  zulu: {cpus: 4}
"""


def test_one_machine_takes_every_service() -> None:
    p = plan(fleet_of(stock("a") + stock("b", "a")))
    assert {sp.machine for sp in p.services.values()} == {"local"}
    assert [sp.name for sp in p.on("local")] == ["a", "b"]


def test_machine_set_in_the_manifest_wins() -> None:
    fleet = fleet_of(stock("a", extra="    machine: zulu\n") + stock("b"), head=TWO_MACHINES)
    p = plan(fleet)
    assert p.services["a"].machine == "zulu"
    assert p.services["b"].machine in {"alpha", "gpu-box", "zulu"}  # chosen by the solver
    assert p.placement.placed == ("b",)
    assert p.placement.status == "OPTIMAL"


def test_gpu_service_goes_to_a_machine_with_a_gpu() -> None:
    fleet = fleet_of(stock("llm", extra="    gpu: {memory: 20GiB}\n") + stock("web"),
                     head=TWO_MACHINES)
    p = plan(fleet)
    assert p.services["llm"].machine == "gpu-box"
    assert p.services["llm"].gpu_device == 0
    assert p.services["llm"].gpu_memory == 20 * 2**30
    assert p.services["web"].gpu_device is None
    assert p.services["web"].gpu_memory == 0


def test_gpu_device_and_count_zero() -> None:
    fleet = fleet_of(stock("second", extra="    gpu: {device: 1, memory: 4GiB}\n")
                     + stock("none", extra="    gpu: {count: 0}\n"), head=TWO_MACHINES)
    p = plan(fleet)
    assert (p.services["second"].machine, p.services["second"].gpu_device) == ("gpu-box", 1)
    assert p.services["none"].gpu_device is None


def test_gpu_service_with_no_gpu_anywhere_is_a_located_error() -> None:
    head = "fleet: lab\nmachines:\n  a: {}\n  b: {}\n"
    services = stock("web") + stock("llm", extra="    gpu: {memory: 8GiB}\n")
    with pytest.raises(ManifestError) as info:
        plan(fleet_of(services, head=head))
    text = head + "services:\n" + services
    assert str(info.value).startswith(f"fleet.yaml:{line_of(text, 'llm:')}:3: service llm can "
                                      "run on no machine: llm needs 1 GPU(s) with 8.0 GiB free "
                                      "(rules out a, b)")
    assert "add a machine" in info.value.fix


def test_on_lists_a_machines_services_in_start_order() -> None:
    services = (stock("db", extra="    machine: zulu\n")
                + stock("api", "db", extra="    machine: alpha\n")
                + stock("cache", extra="    machine: alpha\n")
                + stock("worker", "api", "cache", extra="    machine: alpha\n")
                + stock("admin", "worker", extra="    machine: zulu\n"))
    p: Plan = plan(fleet_of(services, head=TWO_MACHINES))
    assert p.levels == [["cache", "db"], ["api"], ["worker"], ["admin"]]
    assert [sp.name for sp in p.on("alpha")] == ["cache", "api", "worker"]
    assert [sp.name for sp in p.on("zulu")] == ["db", "admin"]
    assert p.on("gpu-box") == []
    assert p.on("nowhere") == []


def test_plan_is_a_pure_function_of_the_manifest() -> None:
    first = plan(load(EXAMPLE, environ={}))
    second = plan(load(EXAMPLE, environ={}))
    assert first == second
    assert first.fleet == "quickstart"

"""`dockyard build` on several machines: which images a machine's own build makes
(plan/family.py builds_for), who builds for whom (ops/builds.py split_builds), and the line
said per machine. The builds themselves: tests/machines/test_build.py."""

from __future__ import annotations

from pathlib import Path

from dockyard.manifest.load import load
from dockyard.ops.builds import MachineBuilt, split_builds
from dockyard.plan import plan
from dockyard.plan.family import builds_for, with_service_layers

FLEET = """\
fleet: fbt
machines:
  a: {arch: amd64}
  c: {arch: arm64, build: remote}
families:
  base: {from: 'debian:bookworm-slim'}
  top: {from: base}
  other: {from: 'python:3.11-slim'}
  unused: {from: base}
services:
  app: {family: top, build: app, requirements: [six], machine: a}
  web: {family: other, build: web, machine: c}
  cache: {image: 'redis:7', machine: c}
"""


def _plan(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "fleet.yaml").write_text(FLEET)
    return with_service_layers(plan(load(tmp_path / "fleet.yaml")))


def _names(steps) -> list[str]:  # type: ignore[no-untyped-def]
    return [f"{s.kind} {s.name}" for s in steps]


def test_the_ingress_runs_its_familys_image_so_its_build_is_that_family(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(
        "fleet: fbi\nmachines: {a: {}}\nfamilies: {base: {from: 'debian:bookworm-slim'}}\n"
        "services:\n  api: {family: base, build: api, ports: {http: 8080}, upgrade: start-first,"
        " health: {http: /}}\n")
    layered = with_service_layers(plan(load(tmp_path / "fleet.yaml")))
    assert "dockyard-ingress" in layered.services
    assert _names(builds_for(layered, ["dockyard-ingress"])) == ["family dockyard-ingress"]


def test_a_machines_build_is_its_services_and_the_families_under_them(tmp_path: Path) -> None:
    layered = _plan(tmp_path)
    assert _names(builds_for(layered, ["web"])) == ["family other", "service web"]
    # app's own requirements are a thin family over top: the chain down to the base
    assert _names(builds_for(layered, ["app"])) == [
        "family base", "family top", "family app.service", "service app"]
    # a stock image and a service not in the fleet build nothing; unused families stay out
    assert builds_for(layered, ["cache", "nope"]) == []
    both = _names(builds_for(layered, ["app", "web"]))
    assert "family unused" not in both and len(both) == 6
    # in the plan's own (dependency) order
    order = _names(layered.builds)
    assert both == [n for n in order if n in both]


def test_the_placements_come_from_the_manifest(tmp_path: Path) -> None:
    layered = _plan(tmp_path)
    assert [sp.name for sp in layered.on("a")] == ["app"]
    assert sorted(sp.name for sp in layered.on("c")) == ["cache", "web"]


MODES = {"a": "local", "b": "local", "c": "remote"}


def test_split_one_build_here_for_local_ones_and_one_per_remote_machine() -> None:
    split = split_builds(MODES, ["a", "b", "c"], on_host={"b"}, registry=False)
    assert split.here == ("a", "b") and split.remote == ("c",)
    assert split.ship == ("a",)  # b is on this host's engine: nothing to ship
    assert not split.whole  # c's images are not built here


def test_split_with_a_registry_ships_nothing() -> None:
    split = split_builds(MODES, ["a", "c"], on_host=set(), registry=True)
    assert split.ship == () and split.remote == ("c",)


def test_split_a_remote_build_on_this_hosts_engine_builds_with_the_others() -> None:
    split = split_builds(MODES, ["a", "b", "c"], on_host={"c"}, registry=False)
    assert split.here == ("a", "b", "c") and split.remote == () and split.whole
    assert split.ship == ("a", "b")


def test_split_of_some_machines_is_not_the_whole_fleet() -> None:
    only = split_builds({"a": "local", "b": "local"}, ["a"], on_host=set(), registry=False)
    assert only.here == ("a",) and not only.whole
    every = split_builds({"a": "local", "b": "local"}, ["b", "a"], on_host=set(),
                         registry=False)
    assert every.whole and every.here == ("b", "a")


def test_machine_lines() -> None:
    assert MachineBuilt("a", False, ("service web",), 2, True, 3 << 20, 1).line() == \
        "a: built here: service web; shipped 3MiB (1 image(s))"
    assert MachineBuilt("a", False, (), 3, True, 0, 0).line() == \
        "a: unchanged (3 image(s), built here); shipped 0B (it had them all)"
    assert MachineBuilt("c", True, ("family plain", "service api"), 0).line() == \
        "c: built on c: family plain, service api"
    assert MachineBuilt("c", True, (), 2).line() == "c: unchanged (2 image(s), built on c)"
    assert MachineBuilt("a", False, (), 1, registry="reg:5000").line() == (
        "a: unchanged (1 image(s), built here); `dockyard push` sends them to reg:5000, "
        "`up` pulls them there")
    assert MachineBuilt("b", False, failed="machine b is unreachable").line() == \
        "b: not built: machine b is unreachable"
    assert MachineBuilt("d", True, idle=True).line() == \
        "d: nothing to build (no service of its is built by dockyard)"


def test_build_targets_need_no_engine_and_name_unknown_machines(tmp_path: Path) -> None:
    import pytest

    from dockyard.actions.build import build_targets, on_host_alone
    from dockyard.actions.target import Choice
    from dockyard.errors import ManifestError

    (tmp_path / "fleet.yaml").write_text(FLEET)
    fleet = load(tmp_path / "fleet.yaml")
    the_plan = plan(fleet)
    # two machines and no `engine:`: both on this host's engine, one build (up would refuse)
    every = build_targets(fleet, the_plan, Choice())
    assert [t.machine for t in every] == ["a", "c"]
    assert not on_host_alone(fleet, every)  # two machines: a line per machine
    assert [t.machine for t in build_targets(fleet, the_plan, Choice(machines=("c", "c")))] \
        == ["c"]
    with pytest.raises(ManifestError, match="unknown machine 'z'"):
        build_targets(fleet, the_plan, Choice(machines=("z",)))
    (tmp_path / "one.yaml").write_text("fleet: one\nmachines: {box: {arch: amd64}}\n"
                                       "services:\n  web: {image: 'redis:7'}\n")
    one = load(tmp_path / "one.yaml")
    assert on_host_alone(one, build_targets(one, plan(one), Choice()))

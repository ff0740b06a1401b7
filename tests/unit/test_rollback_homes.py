"""Where a rollback across machines moves tags (ops/rollback.py), on plain facts: this
host's engine for images built here and shipped, a machine's own engine for `build: remote`
or a registry, once per engine; and `--to TAG` decided per engine with the fleet's checks."""

from __future__ import annotations

import pytest

from dockyard.errors import DockyardError
from dockyard.ops.rollback import HOST, MachineTags, TagHome, tag_homes, to_tag


def _m(name: str, *services: str, engine: str = "", on_host: bool = False,
       remote: bool = False) -> MachineTags:
    return MachineTags(name, engine or f"ssh://root@{name}", on_host, remote, services)


def test_shipped_machines_swap_on_this_host_once_build_remote_on_its_own() -> None:
    machines = [_m("c", "embed", remote=True), _m("a", "web"), _m("b", "api", "web")]
    assert tag_homes(machines, registry=False) == [
        TagHome(HOST, ("a", "b"), ("api", "web"), False),
        TagHome("c", ("c",), ("embed",), False)]


def test_with_a_registry_each_machine_swaps_on_its_own_engine_and_pulls() -> None:
    machines = [_m("a", "web"), _m("c", "embed", remote=True)]
    assert tag_homes(machines, registry=True) == [
        TagHome("a", ("a",), ("web",), True), TagHome("c", ("c",), ("embed",), True)]


def test_machines_on_this_hosts_engine_or_sharing_one_swap_there_once() -> None:
    machines = [_m("box", "web", engine="unix:///var/run/docker.sock", on_host=True),
                _m("gpu", "llm", engine="unix:///var/run/docker.sock", on_host=True, remote=True),
                _m("s1", "a", engine="ssh://root@spark", remote=True),
                _m("s2", "b", engine="ssh://root@spark", remote=True)]
    assert tag_homes(machines, registry=True) == [
        TagHome(HOST, ("box", "gpu"), ("llm", "web"), True),
        TagHome("s1", ("s1", "s2"), ("a", "b"), True)]


def test_a_machine_without_services_to_move_has_no_home() -> None:
    assert tag_homes([_m("a"), _m("c", remote=True)], registry=False) == []
    assert tag_homes([_m("a"), _m("c", "x", remote=True)], registry=False) == [
        TagHome("c", ("c",), ("x",), False)]


T1, T2, T3 = "20261201-100000-aaaaaaaaaaaa", "20261201-100005-aaaaaaaaaaaa", \
    "20261201-110000-bbbbbbbbbbbb"


def test_to_tag_none_named_goes_back_by_time_on_every_engine() -> None:
    # The host built web at T1, machine c built embed seconds later (T2), both again at T3.
    kept = {HOST: {"web": [T3, T1]}, "c": {"embed": [T3, T2]}}
    got = to_tag(kept, T2)
    assert got.tags == {HOST: {"web": T1}, "c": {"embed": T2}} and got.left == {}
    older = to_tag(kept, T1)  # embed has nothing that old: it stays, and says why
    assert older.tags == {HOST: {"web": T1}, "c": {}}
    assert older.left == {"embed": f"its oldest kept image is {T2}"}


def test_to_tag_kept_nowhere_or_a_named_service_without_it_refuses() -> None:
    kept = {HOST: {"web": [T3, T1]}, "c": {"embed": [T3, T2]}}
    with pytest.raises(DockyardError, match="no image of the fleet is tagged 2027"):
        to_tag(kept, "20270101-000000-cccccccccccc")
    with pytest.raises(DockyardError, match=f"service embed has no image tagged {T1}"):
        to_tag(kept, T1, ["web", "embed"])
    assert to_tag(kept, T3, ["embed"]).tags == {HOST: {}, "c": {"embed": T3}}

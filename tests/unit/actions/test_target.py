"""Which machine and compose project a command acts on."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.actions.target import (
    Choice,
    choose_engine,
    choose_machine,
    choose_target,
    require_services,
)
from dockyard.errors import ManifestError
from dockyard.manifest.load import loads
from dockyard.plan import plan

TWO = loads("fleet: shop\nmachines: {a: {}, b: {}}\nservices:\n"
            "  web: {image: 'nginx:1.27', machine: a}\n")
ONE = loads("fleet: shop\nmachines: {box: {}}\nservices:\n  web: {image: 'nginx:1.27'}\n")


def test_the_only_machine_needs_no_name() -> None:
    assert choose_machine(ONE, None) == "box"


def test_with_several_the_user_chooses() -> None:
    assert choose_machine(TWO, "b") == "b"
    with pytest.raises(ManifestError) as caught:
        choose_machine(TWO, None)
    assert str(caught.value) == "fleet.yaml:2:1: choose the machine to act on with --machine (a, b)"


def test_an_unknown_machine_lists_the_known() -> None:
    with pytest.raises(ManifestError, match=r"unknown machine 'c' \(known: a, b\)"):
        choose_machine(TWO, "c")


def test_unknown_services_name_the_first_and_the_choices() -> None:
    require_services(["web", "db"], ["db"])
    with pytest.raises(ManifestError) as caught:
        require_services(["web", "db"], ["db", "wbe", "x"])
    assert (caught.value.message, caught.value.fix) == ("unknown service 'wbe'", "one of: db, web")


def test_the_target_carries_project_and_profiles(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_STATE", str(tmp_path))
    got = choose_target(TWO, plan(TWO), Choice("a", None, ("voice",)))
    assert (got.machine, got.project, got.profiles, got.state) == ("a", "shop", ("voice",),
                                                                    tmp_path)
    assert choose_target(ONE, plan(ONE), Choice(project="p")).project == "p"


SPLIT = loads("fleet: shop\nmachines:\n  a: {engine: 'tcp://10.0.0.1:2375'}\n  b: {}\n"
              "services:\n  web: {image: 'nginx:1.27', machine: a}\n")


def test_one_engine_shared_by_every_machine_needs_no_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    shared = choose_engine(TWO, None).endpoint  # two machines, both `local`
    assert (shared.address, shared.source) == ("", "the default socket")
    assert choose_engine(ONE, None).endpoint == shared


def test_machines_on_different_engines_default_to_this_hosts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    here = choose_engine(SPLIT, None).endpoint  # where the images built here are kept
    assert (here.address, here.source) == ("", "the default socket")
    named = choose_engine(SPLIT, "a").endpoint
    assert (named.address, named.source) == ("tcp://10.0.0.1:2375", "machines.a.engine")
    assert choose_engine(SPLIT, "b").endpoint.address == ""

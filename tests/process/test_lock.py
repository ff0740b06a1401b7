"""Locks made by running uv (and fetches by running pip), offline against this machine's
wheel folder; a child may add packages to its parent's lock but never move one of its pins.
The lock format and the choices made before uv runs are tests/unit/test_lock.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.engine.lock import lock_all, lock_path, parse_lock, python_of
from dockyard.engine.pip import Indexes
from dockyard.errors import ManifestError
from dockyard.events import Event, ignore
from dockyard.manifest.load import load
from dockyard.plan import plan
from tests.unit.test_lock import BASE, write_fleet, write_layered_fleet

LOCAL = Path("/opt/pypi/files")  # a flat folder of wheels: resolving needs no network
pytestmark = [pytest.mark.process,
              pytest.mark.skipif(not LOCAL.is_dir(), reason="no local wheel folder here")]
OFFLINE = Indexes(no_index=True, find_links=(str(LOCAL),), offline=True)


def test_locks_are_per_platform_hash_pinned_and_reused(tmp_path: Path) -> None:
    path = write_fleet(tmp_path, BASE + "  top: {from: base, requirements: [idna, six]}\n")
    fleet = load(path)
    said: list[Event] = []
    first = lock_all(fleet, plan(fleet), indexes=OFFLINE, emit=said.append)
    assert first.made == ["locks/top.amd64.txt"] and not first.reused
    text = lock_path(tmp_path, "top", "amd64").read_text()
    assert "Python 3.11.2" in text  # bookworm's python3
    pins = parse_lock(text)
    assert sorted(pins) == ["idna", "six"]
    assert all(p.hashes and all(h.startswith("sha256:") for h in p.hashes)
               for p in pins.values())
    assert str(tmp_path) not in text and "/tmp" not in text  # no temporary paths: deterministic
    again = lock_all(fleet, plan(fleet), indexes=OFFLINE, emit=said.append)
    assert again.reused == ["locks/top.amd64.txt"] and not again.made
    assert lock_path(tmp_path, "top", "amd64").read_text() == text
    # A changed requirement changes the inputs hash: the lock is made again.
    path.write_text(path.read_text().replace("[idna, six]", "[idna]"))
    fleet = load(path)
    third = lock_all(fleet, plan(fleet), indexes=OFFLINE, emit=said.append)
    assert third.made == ["locks/top.amd64.txt"]
    assert sorted(parse_lock(lock_path(tmp_path, "top", "amd64").read_text())) == ["idna"]


def test_markers_are_judged_by_the_images_python(tmp_path: Path) -> None:
    reqs = ("['six; python_full_version < \"3.11.3\"', "
            "'idna; python_full_version >= \"3.11.3\"']")
    path = write_fleet(tmp_path, BASE + f"  top: {{from: base, requirements: {reqs}}}\n")
    fleet = load(path)
    lock_all(fleet, plan(fleet), indexes=OFFLINE, emit=ignore)
    assert sorted(parse_lock(lock_path(tmp_path, "top", "amd64").read_text())) == ["six"]
    # The same requirements on a base with Python 3.11.9 lock the other package.
    path.write_text(path.read_text().replace("apt: [python3, python3-venv]",
                                             "python: '3.11.9'"))
    fleet = load(path)
    assert python_of(fleet, plan(fleet), "top") == "3.11.9"
    lock_all(fleet, plan(fleet), indexes=OFFLINE, emit=ignore)
    assert sorted(parse_lock(lock_path(tmp_path, "top", "amd64").read_text())) == ["idna"]


def test_child_lock_holds_the_parent_pins_and_adds_its_own(tmp_path: Path) -> None:
    path = write_fleet(tmp_path, BASE + "  mid: {from: base, requirements: [idna]}\n"
                       "  top: {from: mid, requirements: [six]}\n")
    fleet = load(path)
    report = lock_all(fleet, plan(fleet), indexes=OFFLINE, emit=ignore)
    assert report.made == ["locks/mid.amd64.txt", "locks/top.amd64.txt"]
    mid = parse_lock(lock_path(tmp_path, "mid", "amd64").read_text())
    top = parse_lock(lock_path(tmp_path, "top", "amd64").read_text())
    assert sorted(top) == ["idna", "six"] and top["idna"] == mid["idna"]
    assert "on family mid's lock" in lock_path(tmp_path, "top", "amd64").read_text()


def test_child_that_moves_a_parent_pin_directly_is_refused(tmp_path: Path) -> None:
    path = write_fleet(tmp_path, BASE + "  mid: {from: base, requirements: [tomli==2.4.0]}\n"
                       "  top: {from: mid, requirements: [tomli==2.4.1]}\n")
    fleet = load(path)
    with pytest.raises(ManifestError) as caught:
        lock_all(fleet, plan(fleet), indexes=OFFLINE, emit=ignore)
    text = str(caught.value)
    assert text.startswith("fleet.yaml:6:")  # top's `requirements`
    for part in ("family top", "tomli from 2.4.0", "to 2.4.1", "parent family mid",
                 "sidecar on its own family based on `debian:bookworm-slim`"):
        assert part in text, part
    assert not lock_path(tmp_path, "top", "amd64").exists()


def test_child_that_moves_a_parent_pin_through_a_dependency_is_refused(tmp_path: Path) -> None:
    # Like torchaudio pulling another torch: Deprecated 1.2.18 needs wrapt<2, the parent
    # pinned wrapt 2.5.0.
    path = write_fleet(tmp_path, BASE + "  mid: {from: base, requirements: [wrapt==2.5.0]}\n"
                       "  top: {from: mid, requirements: [deprecated==1.2.18]}\n")
    fleet = load(path)
    with pytest.raises(ManifestError) as caught:
        lock_all(fleet, plan(fleet), indexes=OFFLINE, emit=ignore)
    text = str(caught.value)
    assert "family top would change wrapt from 2.5.0" in text
    assert "parent family mid" in text and "to 1.17.3" in text


def test_unresolvable_lock_is_one_located_message(tmp_path: Path) -> None:
    path = write_fleet(tmp_path, BASE + "  top: {from: base, requirements: [six==0.0.1]}\n")
    fleet = load(path)
    with pytest.raises(ManifestError) as caught:
        lock_all(fleet, plan(fleet), indexes=OFFLINE, emit=ignore)
    text = str(caught.value)
    assert text.startswith("fleet.yaml:5:")
    assert "family top" in text and "six==0.0.1" in text and "\n" not in text


def test_a_wheel_missing_for_a_platform_is_a_located_finding(tmp_path: Path) -> None:
    from dockyard.engine.wheels import fetch, wheelhouse

    # tomli 2.4.0 is here as an x86_64 wheel only; six is pure Python.
    path = write_fleet(tmp_path, BASE + "  top:\n    from: base\n    platforms: [amd64, arm64]\n"
                       "    requirements: [six, tomli==2.4.0]\n")
    fleet = load(path)
    the_plan = plan(fleet)
    report = lock_all(fleet, the_plan, indexes=OFFLINE, emit=ignore)
    assert report.made == ["locks/top.amd64.txt"]
    assert report.missing == {("top", "arm64")}
    [finding] = report.findings
    assert finding.code == "DY304" and str(finding.where) == "fleet.yaml:8:25"  # tomli==2.4.0
    assert "family top" in finding.message and "tomli==2.4.0" in finding.message
    assert "arm64" in finding.message and "platforms:" in finding.fix
    state = tmp_path / ".dockyard"
    fetched = fetch(fleet, the_plan, state, indexes=OFFLINE, skip=report.missing)
    assert not fetched.findings and fetched.downloaded == 3  # and dockyard's pip
    assert sorted(p.name.split("-")[0] for p in wheelhouse(state, "amd64").glob("*.whl")) == [
        "pip", "six", "tomli"]
    # A second fetch finds the wheels already there (by their sha256) and downloads nothing.
    again = fetch(fleet, the_plan, state, indexes=OFFLINE, platforms=["amd64"])
    assert again.downloaded == 0 and again.present == 3 and not again.findings


def test_a_locked_wheel_no_index_has_is_a_finding_of_fetch(tmp_path: Path) -> None:
    from dockyard.engine.wheels import fetch

    path = write_fleet(tmp_path, BASE + "  top: {from: base, requirements: [six, idna]}\n")
    fleet = load(path)
    the_plan = plan(fleet)
    lock_all(fleet, the_plan, indexes=OFFLINE, emit=ignore)
    (tmp_path / "empty").mkdir()
    nowhere = Indexes(no_index=True, find_links=(str(tmp_path / "empty"),), offline=True)
    report = fetch(fleet, the_plan, tmp_path / ".dockyard", indexes=nowhere)
    pip, *wheels = sorted(report.findings, key=lambda f: "" if "pip" in f.message else f.message)
    assert sorted(f.message.split(" ")[5] for f in wheels) == [
        "idna==3.20", "six==1.17.0"]  # every missing wheel, not just the first
    assert {str(f.where) for f in wheels} == {"fleet.yaml:5:36", "fleet.yaml:5:41"}
    # dockyard's own pip (it installs with it) is missing too: said at the family
    assert pip.message.startswith("no wheel of pip==26.2.1 (with which dockyard installs")
    assert str(pip.where) == "fleet.yaml:5:3" and "pip-26.2.1-py3-none-any.whl" in pip.fix
    assert all(f.code == "DY304" for f in report.findings)


def test_older_manylinux_wheels_are_fetched_for_a_newer_glibc(tmp_path: Path) -> None:
    from dockyard.engine.wheels import fetch, wheelhouse

    # Only a manylinux_2_17 wheel exists; a manylinux_2_28 platform runs it.
    path = write_fleet(tmp_path, BASE + "  top: {from: base, requirements: "
                       "[pydantic-core==2.49.0]}\n")
    fleet = load(path)
    the_plan = plan(fleet)
    lock_all(fleet, the_plan, indexes=OFFLINE, emit=ignore)
    report = fetch(fleet, the_plan, tmp_path / ".dockyard", indexes=OFFLINE)
    assert not report.findings
    names = [p.name for p in wheelhouse(tmp_path / ".dockyard", "amd64").glob("*.whl")]
    assert any(n.startswith("pydantic_core-2.49.0") and "manylinux_2_17" in n for n in names)


def test_a_services_own_requirements_are_a_locked_layer_on_its_family(tmp_path: Path) -> None:
    path = write_layered_fleet(tmp_path)
    fleet = load(path)
    with pytest.raises(ManifestError) as caught:
        lock_all(fleet, plan(fleet), indexes=OFFLINE, emit=ignore)
    text = str(caught.value)
    assert text.startswith("fleet.yaml:8:")  # services.bad.requirements
    assert "service bad (its own requirements) would change tomli from 2.4.0" in text
    path.write_text(path.read_text().replace("tomli==2.4.1", "tomli==2.4.0"))
    fleet = load(path)
    report = lock_all(fleet, plan(fleet), indexes=OFFLINE, emit=ignore)
    assert "locks/app.service.amd64.txt" in report.reused  # made before bad failed
    app = parse_lock(lock_path(tmp_path, "app.service", "amd64").read_text())
    assert sorted(app) == ["six", "tomli"] and app["tomli"].version == "2.4.0"


def test_families_pinning_different_versions_of_one_package_both_get_their_wheel(
        tmp_path: Path) -> None:
    from dockyard.engine.wheels import _batches, fetch, wheelhouse

    path = tmp_path / "fleet.yaml"
    path.write_text("fleet: locktest\nmachines: {box: {arch: amd64}}\nfamilies:\n" + BASE
                    + "  old: {from: base, requirements: ['zipp==3.23.0', six]}\n"
                    + "  top: {from: base, requirements: ['zipp==4.1.0', idna]}\n"
                    + "services:\n  app: {family: top, build: app}\n"
                    + "  legacy: {family: old, build: legacy}\n")
    fleet = load(path)
    the_plan = plan(fleet)
    lock_all(fleet, the_plan, indexes=OFFLINE, emit=ignore)
    report = fetch(fleet, the_plan, tmp_path / ".dockyard", indexes=OFFLINE)
    assert not report.findings and report.downloaded == 5  # and dockyard's pip, once
    names = sorted(p.name for p in wheelhouse(tmp_path / ".dockyard", "amd64").glob("*.whl"))
    assert [n for n in names if n.startswith("zipp")] == [
        "zipp-3.23.0-py3-none-any.whl", "zipp-4.1.0-py3-none-any.whl"]
    # one pip run per batch, and a batch names each package once
    pins = parse_lock((tmp_path / "locks" / "old.amd64.txt").read_text())
    pins2 = parse_lock((tmp_path / "locks" / "top.amd64.txt").read_text())
    batches = _batches([(p, "old") for p in pins.values()] + [(p, "top") for p in pins2.values()])
    assert [[f"{p.name}=={p.version}" for p, _ in b] for b in batches] == [
        ["six==1.17.0", "zipp==3.23.0", "idna==3.20"], ["zipp==4.1.0"]]


def test_fetch_takes_the_pip_that_suits_the_familys_python(tmp_path: Path) -> None:
    from dockyard.engine.wheels import fetch

    path = tmp_path / "fleet.yaml"
    path.write_text("fleet: locktest\nmachines: {box: {arch: amd64}}\nfamilies:\n"
                    "  old: {from: 'python:3.9-slim', requirements: [six]}\n"
                    "services:\n  app: {family: old, build: app}\n")
    fleet = load(path)
    the_plan = plan(fleet)
    lock_all(fleet, the_plan, indexes=OFFLINE, emit=ignore)
    report = fetch(fleet, the_plan, tmp_path / ".dockyard", indexes=OFFLINE)
    # This machine's wheel folder has six and pip 26.2.1 (Python >= 3.10), not pip 25.0.1.
    [finding] = report.findings
    assert finding.message.startswith("no wheel of pip==25.0.1 (with which dockyard installs")
    assert report.downloaded == 1  # six

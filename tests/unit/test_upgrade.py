"""`dockyard upgrade`'s decisions (ops/upgrade.py) on recorded data: the set and its order
from the snapshots of tests/fixtures/observed (test_reconcile.py's fleet), and what a resume
or a rollback still has to do from a journal recorded by a real upgrade killed with
DOCKYARD_KILL_AT=upgrade.gate:2 (tests/fixtures/upgrade/killed-at-gate.json: store done,
web's new container started, not yet healthy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.manifest.load import loads
from dockyard.manifest.models import ServiceSpec
from dockyard.ops.observed import ObservedState
from dockyard.ops.reconcile import decide
from dockyard.ops.upgrade import (
    Failure,
    Journal,
    Kind,
    Phase,
    ServiceChange,
    Status,
    changed_set,
    forward_steps,
    gate_deadline,
    interrupted,
    last_lines,
    mixed,
    next_step,
    old_check,
    restart_dependents,
    rollback_steps,
    to_do,
    to_turn_back,
    turn_back,
)
from dockyard.plan import plan
from dockyard.plan.model import ServicePlan
from tests.unit.test_reconcile import FLEET

FIXTURES = Path(__file__).parents[1] / "fixtures"
RESTARTS = FLEET.replace("    depends_on: [db]\n",
                         "    depends_on: {db: {condition: healthy, restart: true}}\n")


def services_of(text: str) -> list[ServicePlan]:
    return plan(loads(text, environ={})).on("local")


def recorded(name: str) -> ObservedState:
    return ObservedState.from_json((FIXTURES / "observed" / f"{name}.json").read_text())


def journal() -> Journal:
    return Journal.from_json((FIXTURES / "upgrade" / "killed-at-gate.json").read_text())


def the_set(text: str, snapshot: str, requested: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    services = services_of(text)
    steps = decide(services, recorded(snapshot))
    return [(sp.name, why) for sp, why in changed_set(services, steps, requested)]


def test_nothing_changed_is_an_empty_set() -> None:
    assert the_set(FLEET, "kept") == []
    # stopped or unhealthy is `up`'s business (start, wait), not a change to upgrade
    assert the_set(FLEET, "stopped") == [] and the_set(FLEET, "unhealthy") == []


def test_image_and_config_changes_in_dependency_order() -> None:
    found = the_set(FLEET, "image-changed")
    assert [name for name, _ in found] == ["db", "web"]
    assert all(why.startswith("image changed: dytest/app:current is ") for _, why in found)
    assert the_set(FLEET, "config-changed") == [
        ("web", the_set(FLEET, "config-changed")[0][1])]
    assert the_set(FLEET, "config-changed")[0][1].startswith("config changed: hash ")
    assert [n for n, _ in the_set(FLEET, "fresh")] == ["db", "web"]  # no container: created


def test_named_services_only_plus_their_restart_dependents() -> None:
    assert [n for n, _ in the_set(FLEET, "image-changed", ("db",))] == ["db"]
    assert the_set(RESTARTS, "image-changed", ("db",))[1] == ("web", "restart: true on db")
    # a named service that did not change brings nothing
    assert the_set(RESTARTS, "config-changed", ("db",)) == []


def test_restart_dependents_are_transitive_and_only_on_restart_true() -> None:
    text = RESTARTS + """\
  worker:
    image: dytest/app:current
    depends_on: {web: {condition: started, restart: true}}
  reader:
    image: dytest/app:current
    depends_on: [db]
"""
    by_name = {sp.name: sp for sp in services_of(text)}
    assert restart_dependents(by_name, {"db"}) == {"web": "restart: true on db",
                                                   "worker": "restart: true on web"}
    assert restart_dependents(by_name, {"web"}) == {"worker": "restart: true on web"}


def test_gate_deadline_is_the_services_own_with_no_global_cap() -> None:
    slow = ServiceSpec.model_validate({"image": "x:1", "health": {
        "http": "/health", "start_period": "600s", "interval": "5s", "retries": 12}})
    assert gate_deadline(slow, None) == 660.0  # a 600 s model load can upgrade
    bare = ServiceSpec.model_validate({"image": "x:1"})
    assert gate_deadline(bare, None) is None  # refused unless --no-health-gate
    own = {"Test": ["CMD-SHELL", "true"], "Interval": 2_000_000_000, "Retries": 4,
           "StartPeriod": 10_000_000_000}
    assert gate_deadline(bare, own) == 18.0  # the image's own HEALTHCHECK counts
    assert gate_deadline(bare, {"Test": ["CMD", "true"]}) == 90.0  # the engine's 30 s x 3
    assert gate_deadline(bare, {"Test": ["NONE"]}) is None
    off = ServiceSpec.model_validate({"image": "x:1", "image_health": False})
    assert gate_deadline(off, own) is None


def test_a_killed_journal_resumes_at_the_step_that_was_cut() -> None:
    j = journal()
    assert j.phase == Phase.FORWARD and not j.finished
    assert [(s.kind, s.service, s.status) for s in j.steps] == [
        (Kind.RECREATE, "store", Status.DONE), (Kind.RECREATE, "web", Status.STARTED)]
    assert to_do(j) == [1]  # web's step runs again (its runner is idempotent)
    assert Journal.from_json(j.to_json()) == j


def test_turning_back_reverts_what_was_touched_in_dependency_order() -> None:
    j = journal()
    back = turn_back(j, "2026-12-02T01:20:00.000Z",
                     Failure(service="web", output="HTTP 500", logs="boom"))
    assert back.phase == Phase.ROLLBACK and back.failure is not None
    assert j.phase == Phase.FORWARD  # a copy: the caller writes it before acting
    assert [(s.kind, s.service, s.phase) for s in back.steps[2:]] == [
        (Kind.REVERT, "store", Phase.ROLLBACK), (Kind.REVERT, "web", Phase.ROLLBACK)]
    assert to_do(back) == [2, 3]
    assert turn_back(back, "later").steps == back.steps  # a second rollback adds none


def test_steps_never_begun_are_skipped_and_not_reverted() -> None:
    changes = [ServiceChange(service=n, level=i, reason="image changed")
               for i, n in enumerate(["db", "web", "worker"])]
    j = Journal(id="x", pid=1, machine="local", project="p", started="t",
                services=changes, steps=forward_steps(changes))
    j.steps[0].status = Status.FAILED
    back = turn_back(j, "t2")
    assert [s.status for s in back.steps[:3]] == [Status.FAILED, Status.SKIPPED,
                                                  Status.SKIPPED]
    assert [s.service for s in rollback_steps(back)] == ["db"]
    assert [back.steps[i].service for i in to_do(back)] == ["db"]


def test_status_says_which_service_runs_which_image_and_how_to_finish() -> None:
    j = journal()
    store, web = j.change("store"), j.change("web")
    running = {"store": store.new_image, "web": web.old_image}
    assert mixed(j, running) == [("store", "new", store.new_image),
                                 ("web", "old", web.old_image)]
    line = interrupted(j, running)
    assert "was interrupted: store new (" in line and "web old (" in line
    assert line.count("not known healthy") == 1  # web: its step was cut
    assert "`dockyard upgrade --resume`" in line and "`dockyard rollback`" in line
    assert mixed(j, {"store": store.new_image})[1] == ("web", "absent", "")
    failed = turn_back(j, "t", Failure(service="web", output="x"))
    failed.phase = Phase.ROLLBACK_FAILED
    assert "could not be rolled back; web failed" in interrupted(failed, running)


def test_going_back_is_judged_by_the_old_health_check_where_it_changed() -> None:
    old = {"Test": ["CMD", "python3", "-c", "probe(8001)"], "Interval": 1_000_000_000,
           "Retries": 30}
    assert old_check(old, ["CMD", "python3", "-c", "probe(8001)"]) == {}  # the same check
    assert old_check(old, ["CMD", "python3", "-c", "probe(8009)"]) == old
    assert old_check(None, ["CMD", "true"]) == {} == old_check({"Test": ["NONE"]}, [])
    spec = ServiceSpec(image="x", health=None, image_health=True)
    assert gate_deadline(spec, old) == 30.0  # 30 retries of 1 s


def machine_journal(machine: str, services: list[tuple[str, int]]) -> Journal:
    changes = [ServiceChange(service=n, level=lvl, reason="config changed")
               for n, lvl in services]
    return Journal(id="one", pid=1, machine=machine, project="p", started="t",
                   services=changes, steps=forward_steps(changes), group=["b", "c"])


def test_across_machines_the_set_goes_forward_level_by_level() -> None:
    # store (level 0) on c, api (1) on b, cache (0) and web (2) on c again.
    journals = {"b": machine_journal("b", [("api", 1)]),
                "c": machine_journal("c", [("cache", 0), ("store", 0), ("web", 2)])}
    levels = {"cache": 0, "store": 0, "api": 1, "web": 2}
    order = []
    while (found := next_step(journals, levels)) is not None:
        machine, index = found
        step = journals[machine].steps[index]
        order.append((machine, step.service))
        step.status = Status.DONE
    assert order == [("c", "cache"), ("c", "store"), ("b", "api"), ("c", "web")]


def test_across_machines_one_failure_turns_every_machine_back() -> None:
    journals = {"b": machine_journal("b", [("api", 1)]),
                "c": machine_journal("c", [("store", 0)])}
    journals["c"].steps[0].status = Status.DONE
    journals["b"].steps[0].status = Status.FAILED
    assert to_turn_back(journals) == []  # all still forward: nothing failed yet as far as
    # the journals say (the loop turns them back itself when a step fails)
    journals["b"] = turn_back(journals["b"], "t", Failure(service="api", output="HTTP 500"))
    # Killed here, before c's journal was turned back: a resume turns it back too.
    assert to_turn_back(journals) == ["c"]
    journals["c"] = turn_back(journals["c"], "t")
    assert to_turn_back(journals) == []
    levels = {"store": 0, "api": 1}
    first = next_step(journals, levels)
    assert first == ("c", 1)  # store (level 0) goes back first, then api
    journals["c"].steps[1].status = Status.DONE
    assert next_step(journals, levels) == ("b", 1)
    line = interrupted(journals["b"], {})
    assert "(one upgrade with c: it ends on all of them at once)" in line


def test_a_config_only_change_is_told_old_or_new_by_its_config_hash() -> None:
    change = ServiceChange(service="api", level=0, reason="config changed",
                           old_image="sha256:same", new_image="sha256:same", old_hash="h1",
                           new_hash="h2")
    j = Journal(id="x", pid=1, machine="b", project="p", started="t", services=[change],
                steps=forward_steps([change]))
    running = {"api": "sha256:same"}
    assert mixed(j, running) == [("api", "new", "sha256:same")]  # the image alone: ambiguous
    assert mixed(j, running, {"api": "h1"}) == [("api", "old", "sha256:same")]
    assert mixed(j, running, {"api": "h2"}) == [("api", "new", "sha256:same")]
    assert mixed(j, running, {"api": "h3"}) == [("api", "other", "sha256:same")]


@pytest.mark.parametrize(("text", "kept"), [("one", "one"),
                                            ("a\nb\nc\nd\ne\nf\ng", "c\nd\ne\nf\ng")])
def test_a_long_health_output_is_cut_to_its_last_lines(text: str, kept: str) -> None:
    assert last_lines(text) == kept


def test_json_format_is_one_object_per_event_with_its_time(
        capsys: pytest.CaptureFixture[str]) -> None:
    from dockyard.cli.views import json_event
    from dockyard.events import HealthWaiting, Progress, UpgradePlanned, UpgradeStep

    json_event(UpgradePlanned((("web", "image changed: x"),), "2026-12-02T01:00:00.000Z"))
    json_event(UpgradeStep("recreate", "web", "done", "2026-12-02T01:00:02.500Z"))
    json_event(HealthWaiting((("web", 3.0),), 1.0))  # a tick, not a step: left out
    json_event(Progress("building"))
    import json

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in lines] == ["UpgradePlanned", "UpgradeStep", "Progress"]
    assert lines[0]["services"] == [["web", "image changed: x"]]
    assert lines[1] == {"event": "UpgradeStep", "step": "recreate", "service": "web",
                        "status": "done", "at": "2026-12-02T01:00:02.500Z", "detail": "",
                        "line": "upgrade: recreate web: done"}

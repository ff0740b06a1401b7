"""`up --target swarm`'s decisions (ops/swarm.py) on a recorded swarm: three engines (a
manages, b and c are workers), one engine in no swarm, and a stack 9 s after its deploy
(ok healthy, crash exiting 3, nowhere unschedulable, once completed, slow rejected for a
missing image)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dockyard.ops.swarm import (
    NodeFacts,
    ServiceFacts,
    forming,
    judge,
    levels_up_to,
)

RECORDED = json.loads((Path(__file__).parents[1] / "fixtures" / "swarm-snapshot.json")
                      .read_text())
INFO: dict[str, Any] = RECORDED["info"]
NODES: list[str] = RECORDED["nodes"]


def _facts(**names: str) -> dict[str, NodeFacts]:
    """machine -> facts, each machine taking the recorded engine named."""
    return {machine: NodeFacts.from_info(machine, INFO[engine]) for machine, engine in
            names.items()}


def _service(name: str) -> ServiceFacts:
    service = next(s for s in RECORDED["services"] if s["Spec"]["Name"] == name)
    tasks = [t for t in RECORDED["tasks"] if t["ServiceID"] == service["ID"]]
    return ServiceFacts.from_api(service, tasks)


def test_machines_in_no_swarm_make_one_the_first_machine_manages() -> None:
    plan = forming(["x", "y", "z"], _facts(y="lone", x="lone", z="lone"))
    assert (plan.manager, plan.init, plan.join, plan.problems) == ("x", True, ("y", "z"), ())
    alone = forming(["x"], _facts(x="lone"))
    assert (alone.manager, alone.init, alone.join) == ("x", True, ())


def test_a_formed_swarm_is_left_as_it_is_and_a_new_machine_joins() -> None:
    facts = _facts(a="a", b="b", c="c")
    assert facts["a"].manager and not facts["b"].manager and facts["b"].state == "active"
    plan = forming(["a", "b", "c"], facts, NODES)
    assert (plan.manager, plan.init, plan.join, plan.problems) == ("a", False, (), ())
    grown = forming(["a", "b", "c", "d"], {**facts, **_facts(d="lone")}, NODES)
    assert (grown.init, grown.join) == (False, ("d",))
    # The manager need not be the first machine by name.
    later = forming(["0", "a", "b"], {**_facts(a="a", b="b"), **_facts(**{"0": "lone"})}, NODES)
    assert (later.manager, later.join) == ("a", ("0",))


def test_a_node_of_another_swarm_is_refused_naming_the_fix() -> None:
    others = [n for n in NODES if n != INFO["b"]["Swarm"]["NodeID"]]
    plan = forming(["a", "b"], _facts(a="a", b="b"), members=others)
    assert [m for m, _ in plan.problems] == ["b"]
    assert "another swarm" in plan.problems[0][1] and "docker swarm leave" in plan.problems[0][1]
    # A worker whose manager is none of the fleet's machines: as the would-be manager too.
    for names in (["b", "x"], ["x", "b"]):
        orphan = forming(names, _facts(b="b", x="lone"))
        assert dict(orphan.problems) == {"b": "it is a worker of a swarm that none of the "
                                              "fleet's machines manages; run `docker swarm "
                                              "leave` on it"}


def test_a_healthy_task_is_converged() -> None:
    verdict = judge(_service("rec_ok"))
    assert verdict.done and verdict.why == "1/1 running"


def test_a_crashing_service_fails_at_its_first_failed_task_with_the_engine_error() -> None:
    verdict = judge(_service("rec_crash"), waited=9)
    assert verdict.failed
    assert verdict.why == "a task failed: task: non-zero exit (3)"
    # A failure of a task that was there before this deploy is not this deploy's.
    old = {t.id for t in _service("rec_crash").tasks}
    assert judge(_service("rec_crash"), before=old, waited=9).state == "waiting"


def test_an_unschedulable_task_waits_then_fails_saying_why() -> None:
    waiting = judge(_service("rec_nowhere"), waited=9, deadline=60)
    assert waiting.state == "waiting"
    assert "no suitable node (scheduling constraints not satisfied on 3 nodes)" in waiting.why
    late = judge(_service("rec_nowhere"), waited=61, deadline=60)
    assert late.failed and late.why.startswith("not converged after 61 s: waiting for a task "
                                               "pending (no suitable node")


def test_a_one_shot_converges_once_it_completed_and_a_rejected_task_fails() -> None:
    once = _service("rec_once")
    assert once.one_shot and judge(once).done and judge(once).why == "completed"
    slow = judge(_service("rec_slow"))
    assert slow.failed and slow.why == "a task rejected: No such image: hsw-dev/python:current"


def test_a_rolled_back_update_fails_the_service() -> None:
    ok = _service("rec_ok")
    rolled = ServiceFacts(ok.name, ok.replicas, False, "rollback_completed",
                          "rollback completed", ok.tasks)
    verdict = judge(rolled)
    assert verdict.failed and verdict.why == "its update rollback completed: rollback completed"
    updating = ServiceFacts(ok.name, ok.replicas, False, "updating", "", ok.tasks)
    assert judge(updating).state == "waiting"
    scaled = ServiceFacts("x", 0, False)
    assert judge(scaled).done


def test_each_level_deploys_the_levels_before_it_too() -> None:
    levels = [["store"], ["api", "worker"], ["front"]]
    assert levels_up_to(levels, 0) == ["store"]
    assert levels_up_to(levels, 2) == ["store", "api", "worker", "front"]


def test_a_changed_service_waits_for_a_new_task() -> None:
    ok = _service("rec_ok")
    old = {t.id for t in ok.tasks}
    # The deploy changed its template and the update has not begun: the old task still runs.
    assert judge(ok, before=old, changed=True).state == "waiting"
    # Nothing changed: the running task is the converged service (a rerun changes nothing).
    assert judge(ok, before=old).done
    # The new task runs: converged.
    assert judge(ok, before=set(), changed=True).done

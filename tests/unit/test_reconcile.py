"""`up`'s decision on recorded snapshots, the way Compose's reconcile_test.go does it.

tests/fixtures/observed/*.json were recorded from a real engine by
tests/engine/test_up_steps.py (DOCKYARD_RECORD_OBSERVED=<folder>), with the random project
and image names replaced by stable ones. The fleet below is that test's fleet."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.manifest.load import loads
from dockyard.ops.observed import ContainerState, ObservedState, ProbeState
from dockyard.ops.reconcile import (
    Action,
    Create,
    Keep,
    Reason,
    Recreate,
    Start,
    Step,
    Wait,
    decide,
    to_create,
    to_start,
    unchanged,
)
from dockyard.plan import plan
from dockyard.plan.model import ServicePlan

FIXTURES = Path(__file__).parents[1] / "fixtures" / "observed"
IMAGE = "dytest/app:current"

FLEET = f"""\
fleet: steps
machines:
  local: {{cpus: 2, memory: 4GiB}}
services:
  db:
    image: {IMAGE}
    command: [python3, -c, "import time; open('/tmp/ok', 'w'); time.sleep(600)"]
    health: {{cmd: [test, -f, /tmp/ok], interval: 1s, retries: 3}}
  web:
    image: {IMAGE}
    command: [python3, -m, http.server, "8000"]
    env: {{GREETING: hello}}
    depends_on: [db]
    health: {{cmd: [python3, -c, "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/')"],
             interval: 1s, retries: 5}}
"""


@pytest.fixture(scope="module")
def services() -> list[ServicePlan]:
    fleet = loads(FLEET, environ={})
    return plan(fleet).on("local")


def recorded(name: str) -> ObservedState:
    return ObservedState.from_json((FIXTURES / f"{name}.json").read_text())


def actions(steps: list[Step]) -> dict[str, tuple[Action, Reason]]:
    return {s.service: (s.action, s.reason) for s in steps}


def test_no_container_is_created(services: list[ServicePlan]) -> None:
    steps = decide(services, recorded("fresh"))
    assert steps == [Create("db", 0, Reason.NO_CONTAINER), Create("web", 1, Reason.NO_CONTAINER)]
    assert to_create(steps) == ["db", "web"] and to_start(steps) == {"db", "web"}
    assert not unchanged(steps)


def test_running_current_and_healthy_is_kept(services: list[ServicePlan]) -> None:
    steps = decide(services, recorded("kept"))
    assert steps == [Keep("db", 0, Reason.UP_TO_DATE), Keep("web", 1, Reason.UP_TO_DATE)]
    assert unchanged(steps)  # up: "nothing changed", and touches nothing
    assert to_create(steps) == [] and to_start(steps) == set()


def test_config_hash_differs_recreates(services: list[ServicePlan]) -> None:
    observed = recorded("config-changed")
    steps = decide(services, observed)
    assert actions(steps) == {"db": (Action.KEEP, Reason.UP_TO_DATE),
                              "web": (Action.RECREATE, Reason.CONFIG_CHANGED)}
    web = observed.container("web")
    assert web is not None
    assert steps[1].detail == (f"hash {web.config_hash[:12]} -> "
                               f"{observed.config_hashes['web'][:12]}")
    assert to_create(steps) == ["web"]


def test_image_id_differs_recreates(services: list[ServicePlan]) -> None:
    observed = recorded("image-changed")
    steps = decide(services, observed)
    assert actions(steps) == {"db": (Action.RECREATE, Reason.IMAGE_CHANGED),
                              "web": (Action.RECREATE, Reason.IMAGE_CHANGED)}
    now, was = observed.images[IMAGE][7:19], observed.containers["db"][0].image_id[7:19]
    assert now != was
    assert steps[0].detail == f"{IMAGE} is {now}, the container runs {was}"


def test_exited_with_current_config_is_started(services: list[ServicePlan]) -> None:
    steps = decide(services, recorded("stopped"))
    assert steps == [Keep("db", 0, Reason.UP_TO_DATE),
                     Start("web", 1, Reason.NOT_RUNNING, "exited (exit code 137)")]
    assert to_create(steps) == [] and to_start(steps) == {"web"}


def test_running_but_unhealthy_is_waited_for_not_recreated(
        services: list[ServicePlan]) -> None:
    steps = decide(services, recorded("unhealthy"))
    assert steps == [Wait("db", 0, Reason.UNHEALTHY, "exit 1"), Keep("web", 1, Reason.UP_TO_DATE)]
    assert not unchanged(steps)  # up goes on and waits for db's probe, as it always did
    assert to_create(steps) == [] and to_start(steps) == set()


def _edit(observed: ObservedState, service: str, **changes: object) -> ObservedState:
    """A recorded snapshot with one container's fields changed."""
    (c,) = observed.containers[service]
    return observed.model_copy(update={"containers": {
        **observed.containers, service: (c.model_copy(update=changes),)}})


def test_created_but_never_started_is_started(services: list[ServicePlan]) -> None:
    observed = _edit(recorded("kept"), "web", state="created", probe=None)
    assert decide(services, observed)[1] == Start("web", 1, Reason.NOT_RUNNING, "created")


def test_config_is_judged_before_image_and_state(services: list[ServicePlan]) -> None:
    kept = recorded("kept")
    observed = _edit(kept, "db", config_hash="0" * 64, image_id="sha256:" + "1" * 64,
                     state="exited", probe=None)
    assert decide(services, observed)[0].reason is Reason.CONFIG_CHANGED
    observed = _edit(kept, "db", image_id="sha256:" + "1" * 64, state="exited", probe=None)
    assert decide(services, observed)[0].reason is Reason.IMAGE_CHANGED


def test_an_image_no_longer_here_recreates(services: list[ServicePlan]) -> None:
    kept = recorded("kept")
    observed = kept.model_copy(update={"images": {IMAGE: ""}})
    steps = decide(services, observed)
    assert {s.action for s in steps} == {Action.RECREATE}
    assert steps[0].detail.startswith(f"{IMAGE} is absent, the container runs ")


def test_a_service_compose_gives_no_hash_for_is_recreated(services: list[ServicePlan]) -> None:
    kept = recorded("kept")
    observed = kept.model_copy(update={"config_hashes": {"db": kept.config_hashes["db"]}})
    assert decide(services, observed)[1].reason is Reason.CONFIG_CHANGED


def test_restarts_alone_do_not_change_a_healthy_container(services: list[ServicePlan]) -> None:
    """As before: a running, current, healthy container is kept even if it restarted."""
    observed = _edit(recorded("kept"), "db", restart_count=3)
    assert unchanged(decide(services, observed))


def test_other_services_containers_are_ignored(services: list[ServicePlan]) -> None:
    kept = recorded("kept")
    orphan = kept.containers["db"][0].model_copy(update={"name": "steps-old-1", "service": "old"})
    observed = kept.model_copy(update={"containers": {**kept.containers, "old": (orphan,)}})
    assert unchanged(decide(services, observed))


def test_of_two_containers_the_running_one_is_judged(services: list[ServicePlan]) -> None:
    kept = recorded("kept")
    (db,) = kept.containers["db"]
    stale = db.model_copy(update={"name": "steps-db-0", "state": "exited", "probe": None})
    observed = kept.model_copy(update={"containers": {**kept.containers, "db": (stale, db)}})
    assert observed.container("db") == db
    assert unchanged(decide(services, observed))


def test_snapshots_round_trip_and_ignore_unknown_keys() -> None:
    for path in sorted(FIXTURES.glob("*.json")):
        observed = ObservedState.from_json(path.read_text())
        assert ObservedState.from_json(observed.to_json()) == observed, path.name
    newer = ObservedState.model_validate({"project": "p", "taken_at": "later", "containers": {
        "a": [{"name": "p-a-1", "id": "x", "service": "a", "state": "running",
               "image_id": "sha256:1", "health_log": []}]}})
    assert newer.container("a") == ContainerState(name="p-a-1", id="x", service="a",
                                                  state="running", image_id="sha256:1")


def test_dry_run_line() -> None:
    step = Recreate("web", 1, Reason.CONFIG_CHANGED, "hash 65ddfcdfc1a0 -> 0d3b1e2f4a5c")
    assert step.line(7) == ("1     web      recreate  "
                            "config changed: hash 65ddfcdfc1a0 -> 0d3b1e2f4a5c")
    assert Keep("db", 0, Reason.UP_TO_DATE).line() == "0     db  keep      up to date"
    assert Wait("db", 0, Reason.UNHEALTHY, "exit 1").action == "wait"
    assert ProbeState(healthy=False).output == ""

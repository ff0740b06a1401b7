"""What a failed or interrupted `up` says it left (ops/outcome.py), case by case: the report
once said "left running: ok" while `never` still ran unhealthy and `after` was only created."""

from __future__ import annotations

from dockyard.engine.apply import port_taken
from dockyard.ops.observed import ContainerState
from dockyard.ops.outcome import left_behind


def box(service: str, state: str, *, exit_code: int = 0, restarts: int = 0) -> ContainerState:
    return ContainerState(name=f"p-{service}-1", id=service * 4, service=service, state=state,
                          image_id="sha256:1", exit_code=exit_code, restart_count=restarts)


def test_running_unhealthy_created_and_crash_looping_are_each_named() -> None:
    found = {"ok": box("ok", "running"), "never": box("never", "running"),
             "crasher": box("crasher", "restarting", exit_code=1, restarts=3),
             "after": box("after", "created")}
    said = left_behind(["ok", "never", "crasher", "after"], found,
                       failed={"never", "crasher"})
    assert said == ("left running: ok, never (not healthy); crash-looping (its restart "
                    "policy keeps starting it): crasher (3 restart(s)); created, never "
                    "started: after")


def test_a_crash_loop_between_restarts_is_named_as_one() -> None:
    """Up again under its restart policy, the container's state is `running`: it is left
    behind, crash-looping (so no "left running: nothing" either)."""
    said = left_behind(["api"], {"api": box("api", "running", restarts=2)}, failed={"api"})
    assert said == "crash-looping (its restart policy keeps starting it): api (2 restart(s))"


def test_exited_completed_and_missing_containers() -> None:
    found = {"migrate": box("migrate", "exited"), "job": box("job", "exited", exit_code=2)}
    said = left_behind(["migrate", "job", "web"], found, one_shot={"migrate"})
    assert said == ("left running: nothing; exited: job (exit code 2); completed: migrate; "
                    "not created: web")


def test_an_interrupted_wait_says_who_was_not_healthy_yet() -> None:
    found = {"db": box("db", "running"), "api": box("api", "running")}
    assert left_behind(["db", "api"], found, waiting={"api"}) == (
        "left running: db, api (not healthy yet)")


def test_a_port_taken_at_start_is_read_from_the_engines_words() -> None:
    """Docker 20.10's two wordings: another container's port, and a process's."""
    assert port_taken("driver failed programming external connectivity on endpoint p-web-1 "
                      "(1f2e): Bind for 127.0.0.1:8080 failed: port is already allocated"
                      ) == ("127.0.0.1", "8080")
    assert port_taken("driver failed programming external connectivity on endpoint p-web-1 "
                      "(1f2e): Error starting userland proxy: listen tcp4 0.0.0.0:5432: bind: "
                      "address already in use") == ("0.0.0.0", "5432")
    assert port_taken("OCI runtime create failed: no such file") is None

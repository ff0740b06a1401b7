"""Many machines, the pure parts: which services of a level start when something is not up,
what `up` says about it, which machines a command acts on, and what an SSH failure says."""

from __future__ import annotations

import pytest

from dockyard.actions.target import Choice, choose_machines, choose_targets
from dockyard.cli.options import Options
from dockyard.engine.ssh import Tunnel
from dockyard.errors import MachineUnreachable, ManifestError
from dockyard.manifest.load import loads
from dockyard.ops.fleet import ready_now, up_outcome
from dockyard.plan import plan

FLEET = """\
fleet: shop
machines:
  a: {engine: "ssh://root@10.0.0.1", host: 10.0.0.1}
  b: {engine: "ssh://root@10.0.0.2", host: 10.0.0.2}
  c: {engine: local}
services:
  db: {image: "postgres:16", machine: b, ports: {pg: 5432}, health: {cmd: [pg_isready]}}
  cache: {image: "redis:7", machine: c, ports: {redis: 6379}, health: {cmd: [redis-cli, ping]}}
  api:
    image: "ghcr.io/x/api:1"
    machine: a
    env: {DB: "postgres://db:5432/x"}
    depends_on: [db, cache]
    health: {cmd: [/bin/true]}
  web: {image: "ghcr.io/x/web:1", machine: c, depends_on: [api], health: {cmd: [/bin/true]}}
"""


def test_a_service_waits_for_a_dependency_that_is_not_up_wherever_it_runs() -> None:
    the_plan = plan(loads(FLEET, environ={}))
    level = [the_plan.services["api"]]
    ready, waiting = ready_now(level, {"db": "machine b is unreachable"})
    assert ready == []
    assert waiting == {"api": "waits for db (machine b is unreachable)"}
    # The wait is carried up the chain: web waits for api, which waits for db.
    ready, waiting = ready_now([the_plan.services["web"]], {**waiting})
    assert waiting["web"].startswith("waits for api (waits for db")
    ready, waiting = ready_now(level, {})
    assert [sp.name for sp in ready] == ["api"] and waiting == {}


def test_up_outcome_names_machines_waiting_services_and_what_stays_up() -> None:
    said = up_outcome(["service x exited before it became healthy: exit 1"],
                      {"b": "machine b stopped answering: its engine: refused"},
                      {"db": "machine b stopped answering", "api": "waits for db (…)"},
                      ["c"])
    assert said.splitlines() == [
        "service x exited before it became healthy: exit 1",
        "machine b stopped answering: its engine: refused",
        "not started: api waits for db (…)",
        "up and healthy: c; nothing running was stopped"]


def test_every_machine_by_default_and_each_one_named_once() -> None:
    fleet = loads(FLEET, environ={})
    assert choose_machines(fleet, []) == ["a", "b", "c"]
    assert choose_machines(fleet, ["c", "a", "c"]) == ["c", "a"]
    targets = choose_targets(fleet, plan(fleet), Choice(machines=("b",)))
    assert [t.machine for t in targets] == ["b"]
    with pytest.raises(ManifestError, match="unknown machine 'z'"):
        choose_machines(fleet, ["z"])


def test_a_machine_without_engine_in_a_multi_machine_fleet_is_a_located_error() -> None:
    fleet = loads(FLEET.replace("  c: {engine: local}\n", "  c: {}\n"), environ={})
    with pytest.raises(ManifestError) as caught:
        choose_machines(fleet, [])
    assert str(caught.value).startswith("fleet.yaml:5:3: machine c has no `engine:`")
    assert "engine: ssh://user@host" in caught.value.fix
    assert choose_machines(fleet, ["a", "b"]) == ["a", "b"]  # c not asked for
    one = loads("fleet: x\nmachines: {box: {}}\nservices: {w: {image: 'nginx:1'}}\n",
                environ={})
    assert choose_machines(one, []) == ["box"]  # a fleet's only machine is local


def test_m_is_repeatable_and_a_one_machine_command_refuses_several() -> None:
    opts = Options(None, None, ["a", "b", "a"], [])
    assert opts.choice().machines == ("a", "b") and opts.choice().machine is None
    with pytest.raises(ManifestError, match="acts on one machine"):
        _ = opts.machine
    assert Options(None, None, ["b"], []).machine == "b"
    assert Options(None, None, [], []).choice() == Choice()


@pytest.mark.parametrize(("said", "words", "fix"), [
    ("root@10.0.0.2: Permission denied (publickey).",
     "machine b: root@10.0.0.2 refused the SSH key offered (Permission denied (publickey))",
     "ssh-copy-id root@10.0.0.2"),
    ("Host key verification failed.", "machine b: the SSH host key of 10.0.0.2 is not known here",
     "accept it once with `ssh root@10.0.0.2`"),
    ("@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification failed.",
     "machine b: the SSH host key of 10.0.0.2 has changed", "ssh-keygen -R 10.0.0.2"),
    ("ssh: connect to host 10.0.0.2 port 22: Connection refused",
     "machine b is unreachable: ssh: connect to host 10.0.0.2 port 22: Connection refused",
     "correct machines.b.engine"),
])
def test_what_ssh_said_becomes_one_sentence_naming_the_machine(said: str, words: str,
                                                               fix: str) -> None:
    exc = Tunnel("ssh://root@10.0.0.2", "b")._refused(said)
    assert isinstance(exc, MachineUnreachable) and exc.machine == "b" and exc.exit_code == 3
    assert exc.message == words or exc.message.startswith(words), exc.message
    assert fix in exc.fix and "\n" not in str(exc)

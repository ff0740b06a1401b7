"""Backups on a fleet of several machines, as pure decisions: what each machine saves, which
runs retention keeps per machine, unique run ids for runs started at once, and which run
each machine gets back on a restore (latest, a run id, a batch)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dockyard.errors import BackupError
from dockyard.manifest.load import loads
from dockyard.ops.backup import (
    RunRecord,
    expired_per_machine,
    pick_runs,
    record_from_json,
    run_id,
    unused_id,
)
from dockyard.plan.backup import backup_share

FLEET = loads("""\
fleet: three
machines:
  a: {engine: local}
  b: {engine: "ssh://root@10.0.0.2"}
  c: {engine: "ssh://root@10.0.0.3"}
services:
  web: {image: "nginx:1.27", machine: a}
  notes: {image: "python:3.12", machine: b, volumes: ["notes:/srv/notes"]}
  index: {image: "python:3.12", machine: c, volumes: ["index:/srv/index"]}
  side: {image: "python:3.12", machine: c}
""").spec
PLACED = {"a": ["web"], "b": ["notes"], "c": ["index", "side"]}


def test_every_machine_saves_its_stateful_services_and_one_with_none_is_left_out() -> None:
    assert backup_share(FLEET, PLACED, None) == {"b": ["notes"], "c": ["index"]}
    assert backup_share(FLEET, {"a": ["web"]}, None) == {}


def test_a_named_service_goes_to_the_machine_it_is_placed_on() -> None:
    assert backup_share(FLEET, PLACED, ["index"]) == {"c": ["index"]}
    assert backup_share(FLEET, {"b": ["notes"], "c": ["index", "side"]},
                        ["notes", "index"]) == {"b": ["notes"], "c": ["index"]}


@pytest.mark.parametrize(("named", "said", "fix"), [
    (["nope"], "unknown service 'nope'", "one of: index, notes, side, web"),
    (["web"], "service web holds no data", "backup: {kind: volume}"),
])
def test_a_named_service_that_cannot_be_backed_up_is_refused(named: list[str], said: str,
                                                             fix: str) -> None:
    with pytest.raises(BackupError) as caught:
        backup_share(FLEET, PLACED, named)
    assert said in caught.value.message and fix in caught.value.fix


def test_a_named_service_on_a_machine_minus_m_left_out_says_which_to_pass() -> None:
    with pytest.raises(BackupError) as caught:
        backup_share(FLEET, {"b": ["notes"]}, ["index"])
    assert caught.value.message == ("service index does not run on machine b (it is placed "
                                    "on c)")
    assert caught.value.fix == "pass -m c"
    unplaced = loads("""\
fleet: two
machines: {b: {engine: local}, c: {engine: "ssh://root@10.0.0.3"}}
services:
  index: {image: "python:3.12", volumes: ["index:/srv/index"]}
""").spec
    with pytest.raises(BackupError) as caught:  # placed by dockyard: the plan says where
        backup_share(unplaced, {"b": []}, ["index"], {"index": "c"})
    assert caught.value.message.endswith("(it is placed on c)")
    assert caught.value.fix == "pass -m c"


def test_retention_keeps_the_newest_runs_of_each_machine() -> None:
    # b backs up every minute, c once: b's runs never evict c's only one.
    b = [f"20261202-01{i:02d}00-000000" for i in range(5)]
    c = ["20261202-010030-000000"]
    runs = [(rid, "b") for rid in b] + [(rid, "c") for rid in c]
    assert expired_per_machine(runs, 2) == b[:3]
    assert expired_per_machine(reversed(runs), 1) == b[:4]
    assert expired_per_machine(runs, 0) == sorted(b + c)
    assert expired_per_machine([(b[0], "b"), ("notes", "b")], 0) == [b[0]]


def test_runs_started_in_one_microsecond_get_ids_of_their_own() -> None:
    rid = run_id(datetime(2026, 12, 2, 1, 15, 0, 999_999, tzinfo=UTC))
    assert unused_id(rid, []) == rid
    assert unused_id(rid, [rid]) == "20261202-011501-000000"
    assert unused_id(rid, [rid, "20261202-011501-000000"]) == "20261202-011501-000001"


def test_an_old_manifest_without_a_batch_still_reads() -> None:
    record = RunRecord(id="20261202-011500-000000", fleet="f", fleet_hash="sha256:x",
                       machine="b", project="f", reason="backup", started="s", finished="e",
                       services=(), batch="20261202-011459-999000")
    assert record_from_json(record.to_json()) == record
    old = record.to_json().replace('  "batch": "20261202-011459-999000",\n', "")
    assert '"batch"' not in old
    assert record_from_json(old).batch == ""
    assert record.summary()["batch"] == "20261202-011459-999000"


# (id, machine, batch), oldest first: one batch on b and c, then a lone run on b.
RUNS = [("20261202-010000-000010", "b", "20261202-010000-000000"),
        ("20261202-010000-000020", "c", "20261202-010000-000000"),
        ("20261202-020000-000000", "b", "")]


def test_latest_gives_each_machine_its_own_newest_run() -> None:
    pick = pick_runs(RUNS, "latest", ["b", "c"], named=False)
    assert pick.runs == {"b": "20261202-020000-000000", "c": "20261202-010000-000020"}
    assert pick.without == []
    pick = pick_runs(RUNS, "latest", ["a", "c"], named=True)
    assert pick.runs == {"c": "20261202-010000-000020"} and pick.without == ["a"]
    with pytest.raises(ValueError, match="no backup run of machine a yet"):
        pick_runs(RUNS, "latest", ["a"], named=True)


def test_a_run_id_restores_on_its_own_machine_and_minus_m_must_not_leave_it_out() -> None:
    assert pick_runs(RUNS, "20261202-010000-000020", ["a", "b", "c"], named=False).runs == {
        "c": "20261202-010000-000020"}
    assert pick_runs(RUNS, "20261202-010000-000020", ["c"], named=True).runs == {
        "c": "20261202-010000-000020"}
    with pytest.raises(ValueError, match="is of machine c, not of b"):
        pick_runs(RUNS, "20261202-010000-000020", ["b"], named=True)


def test_a_batch_gives_each_machine_its_run_of_that_command() -> None:
    pick = pick_runs(RUNS, "20261202-010000-000000", ["b", "c"], named=False)
    assert pick.runs == {"b": "20261202-010000-000010", "c": "20261202-010000-000020"}
    assert pick_runs(RUNS, "20261202-010000-000000", ["a", "c"], named=True) == type(pick)(
        {"c": "20261202-010000-000020"}, ["a"])
    with pytest.raises(ValueError, match="has no run of machine a"):
        pick_runs(RUNS, "20261202-010000-000000", ["a"], named=True)
    with pytest.raises(LookupError):
        pick_runs(RUNS, "20261202-030000-000000", ["b"], named=False)

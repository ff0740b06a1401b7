"""Which services a backup saves, of which kind, and what an upgrade backs up first."""

from __future__ import annotations

from dockyard.manifest.load import loads
from dockyard.ops.upgrade import (
    Failure,
    Journal,
    Kind,
    ServiceChange,
    Status,
    forward_steps,
    turn_back,
)
from dockyard.plan.backup import (
    backup_kind,
    backup_volumes,
    named_volumes,
    pre_upgrade,
    restore_on_rollback,
    stateful,
)

FLEET = loads("""\
fleet: kinds
machines: {box: {}}
backup: {target: /srv/backups, keep: 3}
families:
  pg: {from: "debian:bookworm-slim", apt: [postgresql, postgresql-client, redis-server]}
  pgclient: {from: "debian:bookworm-slim", apt: [postgresql-client-15]}
  kv: {from: "debian:bookworm-slim", apt: [redis-server]}
  kvchild: {from: kv}
services:
  db: {family: pg, build: db, volumes: ["db-data:/var/lib/postgresql"],
       backup: {restore_on_rollback: true}}
  stock-pg: {image: "docker.io/library/postgres:16.4"}
  cache: {family: kvchild, build: cache, volumes: ["cache:/data", "./conf:/etc/redis"]}
  stock-redis: {image: "redis:7.4.1"}
  files: {image: "qdrant/qdrant:v1.12.0", volumes: ["q:/qdrant/storage", "snap:/snap"],
          backup: {quiesce: stop, volumes: [q]}}
  forced: {image: "busybox", backup: {kind: redis}}
  off: {image: "postgres:16", backup: {enabled: false}}
  both: {family: pg, build: both, command: [redis-server, /app/redis.conf]}
  api: {family: pgclient, build: api, volumes: ["./code:/app"], depends_on: [worker]}
  worker: {image: busybox, depends_on: [db]}
  web: {image: busybox, depends_on: [api, cache]}
""", environ={}).spec


def test_kinds_detected_from_image_and_family_or_given() -> None:
    assert {n: backup_kind(FLEET, n) for n in FLEET.services} == {
        "db": "postgres", "stock-pg": "postgres", "cache": "redis", "stock-redis": "redis",
        "files": "volume", "forced": "redis", "off": None, "both": "redis", "api": None,
        "worker": None, "web": None}
    assert stateful(FLEET) == ["db", "stock-pg", "cache", "stock-redis", "files", "forced",
                               "both"]
    assert FLEET.backup.target == "/srv/backups" and FLEET.backup.keep == 3
    assert loads("fleet: x\nmachines: {m: {}}\nservices: {a: {image: x}}\n",
                 environ={}).spec.backup.keep == 10


def test_named_volumes_skip_binds_and_backup_volumes_narrow_them() -> None:
    assert named_volumes(FLEET.services["cache"]) == [("cache", "/data")]
    assert backup_volumes(FLEET, "files") == [("q", "/qdrant/storage")]
    assert backup_volumes(FLEET, "db") == [("db-data", "/var/lib/postgresql")]


def test_pre_upgrade_backs_up_the_set_and_what_changed_services_stand_on() -> None:
    # web changed: api -> worker -> db, and cache, are below it (directly or not).
    assert pre_upgrade(FLEET, ["web"]) == ["db", "cache"]
    assert pre_upgrade(FLEET, ["web", "files"], changed=["files"]) == ["files"]
    assert pre_upgrade(FLEET, ["api"]) == ["db"]
    assert restore_on_rollback(FLEET, ["db", "cache", "web"]) == ["db"]


def test_a_rollback_restores_first_what_the_new_code_may_have_migrated() -> None:
    # api (in the set) stands on db (outside it, restore_on_rollback) and on cache, which is
    # in the set and restores too; web failed.
    changes = [ServiceChange(service=n, level=i, reason="image changed")
               for i, n in enumerate(["cache", "api", "web"])]
    j = Journal(id="x", pid=1, machine="local", project="p", started="t", services=changes,
                steps=forward_steps(changes), backup_run="20261202-011500-3fa2c1",
                restore=["db", "cache"])
    j.steps[0].status = j.steps[1].status = Status.DONE
    j.steps[2].status = Status.FAILED
    back = turn_back(j, "t2", Failure(service="web", output="x"))
    assert [(s.kind, s.service) for s in back.steps[3:]] == [
        (Kind.RESTORE, "db"), (Kind.RESTORE, "cache"), (Kind.REVERT, "api"),
        (Kind.REVERT, "web")]
    assert Journal.from_json(back.to_json()) == back
    # Nothing touched (the first step never began): nothing to restore either.
    fresh = Journal(id="y", pid=1, machine="local", project="p", started="t",
                    services=changes, steps=forward_steps(changes), restore=["db"])
    assert turn_back(fresh, "t2").steps[3:] == []


def test_a_run_record_round_trips_and_retention_keeps_the_newest() -> None:
    from datetime import UTC, datetime

    from dockyard.ops.backup import (
        FileRecord,
        RunRecord,
        ServiceRecord,
        expired,
        record_from_json,
        run_id,
        wrong_files,
    )

    rid = run_id(datetime(2026, 12, 2, 1, 15, tzinfo=UTC))
    assert rid == "20261202-011500-000000"
    # Runs made in one second sort as they were made (retention drops the oldest first).
    same_second = [run_id(datetime(2026, 12, 2, 1, 15, 0, us, tzinfo=UTC))
                   for us in (999_999, 10, 500_000)]
    assert sorted(same_second) == [same_second[1], same_second[2], same_second[0]]
    assert expired(same_second, 2) == [same_second[1]]
    files = (FileRecord("db/globals.sql", "aa", 10), FileRecord("db/db-00-app.dump", "bb", 20))
    record = RunRecord(id=rid, fleet="f", fleet_hash="sha256:x", machine="local", project="f",
                       reason="pre-upgrade", started="s", finished="e", services=(
                           ServiceRecord("db", "postgres", "f/db:current", "sha256:1",
                                         "PostgreSQL 15.20", files, {"db-data": "/data"},
                                         0.004, 1.5, {"databases": {"app": "db-00-app.dump"}}),))
    assert record_from_json(record.to_json()) == record
    assert record.bytes == 30 and record.summary()["services"] == {"db": "postgres"}
    assert wrong_files(record, {"db/globals.sql": "aa", "db/db-00-app.dump": "bb"}) == []
    assert wrong_files(record, {"db/globals.sql": "aa", "db/db-00-app.dump": None}) == [
        "db/db-00-app.dump"]
    assert wrong_files(record, {}, services=["cache"]) == []
    ids = [f"20261202-0115{i:02d}-abcdef" for i in range(5)]
    assert expired([*reversed(ids), "notes", ids[0] + ".partial"], 2) == ids[:3]

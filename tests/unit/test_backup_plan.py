"""Which services a backup saves, of which kind, and what an upgrade backs up first."""

from __future__ import annotations

from dockyard.manifest.load import loads
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
  pg: {from: "debian:bookworm-slim", apt: [postgresql, postgresql-client]}
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
  api: {family: pgclient, build: api, volumes: ["./code:/app"], depends_on: [worker]}
  worker: {image: busybox, depends_on: [db]}
  web: {image: busybox, depends_on: [api, cache]}
""", environ={}).spec


def test_kinds_detected_from_image_and_family_or_given() -> None:
    assert {n: backup_kind(FLEET, n) for n in FLEET.services} == {
        "db": "postgres", "stock-pg": "postgres", "cache": "redis", "stock-redis": "redis",
        "files": "volume", "forced": "redis", "off": None, "api": None, "worker": None,
        "web": None}
    assert stateful(FLEET) == ["db", "stock-pg", "cache", "stock-redis", "files", "forced"]
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

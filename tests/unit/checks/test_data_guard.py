"""DY607, the one-way data guard, and DY608, a pin the last build did not keep: judged on
a state-folder record (tests/fixtures/history/deployed.json, written by `up`'s own
engine/history.py record_deployed for the manifest below; its image IDs are made up)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockyard.checks.run import check_report
from dockyard.manifest.load import loads
from dockyard.plan import plan
from dockyard.plan.history import DataVersion, Deployed, data_version, image_data_version, one_way

FIXTURES = Path(__file__).parents[2] / "fixtures" / "history"


def recorded() -> dict[str, Deployed]:
    services = json.loads((FIXTURES / "deployed.json").read_text())["services"]
    return {name: Deployed.from_dict(d) for name, d in services.items()}


HEAD = """\
fleet: data
machines: {box: {}}
families:
  pg: {from: "debian:bookworm-slim", apt: [postgresql-15, curl]}
  web: {from: "python:3.11-slim"}
services:
"""
# As recorded: db on postgres:15.6, vectors on qdrant v1.7.4, family-db on apt postgresql-15.
SERVICES = {
    "db": '  db: {image: "postgres:15.6", volumes: ["pg:/var/lib/postgresql/data"]}\n',
    "vectors": '  vectors: {image: "qdrant/qdrant:v1.7.4", volumes: ["q:/qdrant/storage"]}\n',
    "family-db": '  family-db: {family: pg, build: db, volumes: ["fpg:/var/lib/postgresql"]}\n',
    "api": "  api: {family: web, build: api}\n",
}


def findings(changes: dict[str, str], families: str = "", deployed: dict[str, Deployed]
             | None = None, kept: dict[str, list[str]] | None = None) -> list[str]:
    text = HEAD.replace("families:\n", "families:\n" + families) + "".join(
        changes.get(name, line) for name, line in SERVICES.items())
    fleet = loads(text, environ={})
    report = check_report(fleet, plan(fleet), deployed=recorded() if deployed is None
                          else deployed, kept_tags=kept)
    return [f"{f.where}: {f.code} {f.message} (fix: {f.fix})" for f in report.findings
            if f.code in ("DY607", "DY608")]


def test_the_deployed_manifest_itself_is_clean() -> None:
    assert findings({}) == []


def test_a_postgres_major_bump_of_a_stock_image_is_refused_located_with_a_fix() -> None:
    found = findings({"db": '  db: {image: "postgres:16.2", volumes: ["pg:/var/lib/pg"]}\n'})
    assert found == [
        "fleet.yaml:7:8: DY607 service db: Postgres 15 -> 16 is a major version change: "
        "neither server reads the other's data directory; postgres:15.6 is deployed, the "
        "manifest now runs postgres:16.2, and a rollback would start the old one on data it "
        "cannot read (fix: keep postgres:15.6, or declare `migration: {from: \"15\", how: "
        "...}` (how its data moves to 16) and `backup: {restore_on_rollback: true}`)"]


def test_a_minor_postgres_change_or_a_downgrade_within_a_major_is_fine() -> None:
    assert findings({"db": '  db: {image: "postgres:15.8-bookworm", volumes: ["pg:/d"]}\n'}) \
        == []


def test_a_family_whose_apt_installs_another_postgres_major_is_refused_at_that_entry() -> None:
    deployed = {**recorded(), "family-db": Deployed(
        "data/family-db:current", "sha256:1", ("postgresql-14",), "debian:bookworm-slim")}
    found = findings({}, deployed=deployed)
    assert len(found) == 1
    assert found[0].startswith("fleet.yaml:4:44: DY607 service family-db: Postgres 14 -> 15 "
                               "is a major version change")
    assert "apt postgresql-14 is deployed, the manifest now runs apt postgresql-15" in found[0]


def test_qdrant_may_move_to_the_next_minor_but_not_past_it() -> None:
    assert findings({"vectors": '  vectors: {image: "qdrant/qdrant:v1.8.0", '
                                'volumes: ["q:/s"]}\n'}) == []
    found = findings({"vectors": '  vectors: {image: "qdrant/qdrant:v1.9.2", '
                                 'volumes: ["q:/s"]}\n'})
    assert len(found) == 1 and "Qdrant 1.7 -> 1.9 skips a minor version" in found[0]
    assert "`migration: {from: \"1.7\"" in found[0]


def test_the_exception_needs_the_migration_from_the_deployed_version_and_a_restore() -> None:
    bump = '  db: {image: "postgres:16.2", volumes: ["pg:/d"]%s}\n'
    both = ', migration: {from: "15", how: pg_upgrade in a one-shot}, ' \
           'backup: {restore_on_rollback: true}'
    assert findings({"db": bump % both}) == []
    only_migration = findings({"db": bump % ', migration: {from: "15", how: pg_upgrade}'})
    assert len(only_migration) == 1
    assert only_migration[0].endswith("or declare `backup: {restore_on_rollback: true}`)")
    wrong_from = findings({"db": bump % both.replace('"15"', '"14"')})
    assert len(wrong_from) == 1
    assert "`migration.from: \"15\"` (it says '14'; the deployed data is 15)" in wrong_from[0]


def test_nothing_deployed_or_no_volume_means_nothing_to_guard() -> None:
    bump = {"db": '  db: {image: "postgres:16.2", volumes: ["pg:/d"]}\n'}
    assert findings(bump, deployed={}) == []
    assert findings({"db": '  db: {image: "postgres:16.2"}\n'}) == []


def test_a_pin_the_last_build_did_not_keep_is_an_error_listing_the_kept_ones() -> None:
    pin = {"api": "  api: {family: web, build: api, image_tag: 20261101-000000-aaa}\n"}
    kept = {"data/api": ["20261203-000000-ccc", "20261202-000000-bbb"]}
    assert findings(pin, kept=kept) == [
        "fleet.yaml:10:34: DY608 service api is pinned to 20261101-000000-aaa, which data/api "
        "no longer keeps (kept, newest first: 20261203-000000-ccc, 20261202-000000-bbb) (fix: "
        "pin one of the kept tags, or remove `image_tag:` to run :current)"]
    assert findings(pin, kept={**kept, "data/api": ["20261101-000000-aaa"]}) == []
    assert findings(pin, kept={}) == []  # never built here: not judged


@pytest.mark.parametrize(("image", "kind", "version"), [
    ("postgres:16", "postgres", (16,)), ("docker.io/library/postgres:15.6-alpine", "postgres",
                                         (15,)),
    ("postgres:9.6.24", "postgres", (9, 6)), ("pgvector/pgvector:pg16", "postgres", (16,)),
    ("timescale/timescaledb:2.14.2-pg15", "postgres", (15,)),
    ("postgis/postgis:16-3.4", "postgres", (16,)), ("bitnami/postgresql:14.10.0", "postgres",
                                                    (14,)),
    ("qdrant/qdrant:v1.7.4", "qdrant", (1, 7)), ("qdrant/qdrant:v1.12.1-unprivileged", "qdrant",
                                                 (1, 12)),
])
def test_data_versions_read_from_image_names(image: str, kind: str,
                                             version: tuple[int, ...]) -> None:
    found = image_data_version(image)
    assert found is not None and (found.kind, found.version) == (kind, version)


@pytest.mark.parametrize("image", ["postgres", "postgres:latest", "redis:7.4", "qdrant/qdrant",
                                   "nginx:1.27"])
def test_no_version_is_guessed(image: str) -> None:
    assert image_data_version(image) is None


def test_an_unversioned_debian_postgresql_is_its_release_s() -> None:
    record = Deployed("f/db:current", packages=("postgresql",), base="debian:bookworm-slim")
    assert data_version(record) == DataVersion("postgres", (15,),
                                               "apt postgresql on debian:bookworm-slim")
    assert data_version(Deployed("f/db:current", packages=("postgresql",),
                                 base="ubuntu:24.04")) is None


def test_qdrant_going_back_a_minor_or_changing_major_is_one_way() -> None:
    def q(*v: int) -> DataVersion:
        return DataVersion("qdrant", v, "")

    assert "goes back a minor" in one_way(q(1, 8), q(1, 7))
    assert "changes the major" in one_way(q(1, 15), q(2, 0))
    assert one_way(q(1, 7), q(1, 8)) == "" and one_way(q(1, 7), q(1, 7)) == ""

"""Relative bind sources are written relative to fleet.yaml; compose reads them relative to its
own file, so the renderer rebases them onto the folder the compose file is written to."""

from __future__ import annotations

import pytest

from dockyard.manifest.load import loads
from dockyard.plan import plan
from dockyard.render.compose import compose_project, rebase


@pytest.mark.parametrize(("volume", "root", "expected"), [
    ("./data:/data", "../..", "../../data:/data"),
    ("./db/init.sql:/docker-entrypoint-initdb.d/init.sql:ro", "../..",
     "../../db/init.sql:/docker-entrypoint-initdb.d/init.sql:ro"),
    ("../shared:/shared", "..", "../../shared:/shared"),
    (".:/src", "../..", "../..:/src"),
    ("./data:/data", "", "./data:/data"),                     # no root given: as written
    ("./data:/data", ".", "./data:/data"),                    # output beside fleet.yaml
    ("./x/../data:/data", "out", "./out/data:/data"),         # root below: stays relative
    ("/srv/models:/models", "../..", "/srv/models:/models"),  # absolute: untouched
    ("~/models:/models", "../..", "~/models:/models"),
    ("pgdata:/var/lib/postgresql/data", "../..", "pgdata:/var/lib/postgresql/data"),
    ("./only-a-path", "../..", "./only-a-path"),              # no target: left to the checks
])
def test_rebase(volume: str, root: str, expected: str) -> None:
    assert rebase(volume, root) == expected


def test_compose_project_rebases_binds_and_keeps_named_volumes() -> None:
    fleet = loads("""\
fleet: demo
machines: {local: {}}
services:
  db:
    image: postgres:16.4
    volumes: ["./init.sql:/docker-entrypoint-initdb.d/init.sql:ro", "pgdata:/var/lib/pg"]
""")
    doc = compose_project(fleet, plan(fleet), "local", "../..")
    assert doc["services"]["db"]["volumes"] == [
        "../../init.sql:/docker-entrypoint-initdb.d/init.sql:ro", "pgdata:/var/lib/pg"]
    assert list(doc["volumes"]) == ["pgdata"]

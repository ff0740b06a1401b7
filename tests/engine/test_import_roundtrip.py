"""Import round trip: compose project -> `dockyard import` -> load -> plan -> render, and
`docker compose config` of the original and of the rendered file agree, apart from the
normalisations that `comparable` (tests/compose_compare.py) lists. Real `docker compose`
(the CLI plugin), no containers."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from dockyard.manifest.importer import import_compose, read_project
from dockyard.manifest.load import load
from dockyard.plan import plan
from dockyard.render.files import render_all
from tests.compose_compare import comparable, compose_available, config, differences

pytestmark = pytest.mark.engine

FIXTURES = Path(__file__).parents[1] / "fixtures" / "compose"
SECRETS = {"POSTGRES_PASSWORD": "s3cret-for-tests"}
PROJECTS = {
    "llm-stack": ["compose.yaml"],
    "speech": ["compose.yaml", "compose.gpu.yaml"],
    "api-db": ["compose.yaml"],
}
# What each project is expected to lose: a change in the importer shows up here first.
EXPECTED_UNMAPPED = {
    "llm-stack": {"services.vllm.ipc", "services.webui.container_name",
                  "services.webui.labels"},
    "speech": set(),
    "api-db": {"secrets", "services.api.secrets", "services.api.image",
               "services.api.deploy.resources.reservations.memory"},
}


@pytest.fixture(scope="module")
def compose_cli() -> None:
    if not compose_available():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but `docker compose` is missing")
        pytest.skip("`docker compose` is not installed here")


def round_trip(folder: Path, files: list[str],
               mutate: Callable[[Any], None] | None = None) -> list[str]:
    """Import the project in `folder`, render it, compare both compose configs."""
    paths = [folder / f for f in files]
    result = import_compose(read_project(paths, environ=SECRETS), out_dir=folder)
    manifest = folder / "fleet.yaml"
    text = result.text()
    if mutate is not None:
        yaml = YAML(typ="rt")
        doc = yaml.load(text)
        mutate(doc)
        manifest.write_text("")
        with manifest.open("w") as f:
            yaml.dump(doc, f)
        text = manifest.read_text()
    manifest.write_text(text)
    fleet = load(manifest, environ=SECRETS)
    rendered = folder / ".dockyard" / "render"
    for rel, content in render_all(fleet, plan(fleet), text).items():
        (rendered / rel).parent.mkdir(parents=True, exist_ok=True)
        (rendered / rel).write_text(content)
    project = f"dyt{uuid.uuid4().hex[:6]}"
    original = config(paths, project, env=SECRETS)
    ours = config([rendered / "compose.local.yaml"], project, project_dir=folder,
                  env=SECRETS)
    a, b = comparable(original, ours, fleet, result.unmapped)
    return differences(a, b)


@pytest.fixture
def copy_of(tmp_path: Path) -> Callable[[str], Path]:
    def make(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(FIXTURES / name, target)
        return target
    return make


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_round_trip_is_equivalent(compose_cli: None, copy_of: Callable[[str], Path],
                                  name: str) -> None:
    folder = copy_of(name)
    paths = [folder / f for f in PROJECTS[name]]
    unmapped = import_compose(read_project(paths, environ=SECRETS), out_dir=folder).unmapped
    assert {u.path for u in unmapped} == EXPECTED_UNMAPPED[name]
    assert round_trip(folder, PROJECTS[name]) == []


def _service(doc: Any, name: str) -> Any:
    return doc["services"][name]


MUTATIONS: dict[str, tuple[str, Callable[[Any], None], str]] = {
    "host port": ("api-db", lambda d: _service(d, "api")["ports"].update(
        p8000="0.0.0.0:8001:8000"), "ports"),
    "env value": ("llm-stack", lambda d: _service(d, "webui")["env"].update(
        VECTOR_DB="chroma"), "environment.VECTOR_DB"),
    "env dropped": ("api-db", lambda d: _service(d, "migrate")["env"].pop("DATABASE_URL"),
                    "environment.DATABASE_URL"),
    # env_file stays a file compose reads: without it, its variables are gone
    "env_file dropped": ("api-db", lambda d: _service(d, "migrate").pop("env_file"),
                         "environment.WORKERS"),
    "health path": ("speech", lambda d: _service(d, "tts")["health"].update(http="/"),
                    "healthcheck.test"),
    "health timing": ("api-db", lambda d: _service(d, "db")["health"].update(retries=3),
                      "healthcheck.retries"),
    "dependency condition": ("llm-stack", lambda d: _service(d, "webui")["depends_on"]["vllm"]
                             .update(condition="started"), "depends_on.vllm.condition"),
    "read-only volume": ("llm-stack", lambda d: _service(d, "vllm")["volumes"].__setitem__(
        0, "models:/models"), "volumes[0]"),
    "memory limit": ("speech", lambda d: _service(d, "stt").update(memory="4GiB"),
                     "deploy.resources.limits.memory"),
    "command": ("api-db", lambda d: _service(d, "redis")["command"].pop(),
                "command"),
    "gpu device": ("speech", lambda d: _service(d, "tts").update(gpu={"device": 1}),
                   "device_ids"),
    "dockerfile": ("speech", lambda d: _service(d, "tts").update(dockerfile="Dockerfile"),
                   "build.dockerfile"),
    "restart": ("api-db", lambda d: _service(d, "api").update(restart="unless-stopped"),
                "restart"),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_a_changed_import_fails_the_comparison(compose_cli: None,
                                               copy_of: Callable[[str], Path],
                                               mutation: str) -> None:
    name, mutate, expected = MUTATIONS[mutation]
    diffs = round_trip(copy_of(name), PROJECTS[name], mutate)
    assert diffs, f"{mutation}: the comparison did not notice"
    assert any(expected in d for d in diffs), diffs


def test_relative_binds_resolve_where_up_reads_the_file(compose_cli: None,
                                                        copy_of: Callable[[str], Path]) -> None:
    """The same comparison, with the rendered file read the way `dockyard up` reads it."""
    from dockyard.engine.build import write_render
    from dockyard.engine.deploy import Target, compose

    folder = copy_of("api-db")
    paths = [folder / "compose.yaml"]
    result = import_compose(read_project(paths, environ=SECRETS), out_dir=folder)
    (folder / "fleet.yaml").write_text(result.text())
    fleet = load(folder / "fleet.yaml", environ=SECRETS)
    the_plan = plan(fleet)
    write_render(fleet, the_plan, folder / ".dockyard")
    project = f"dyt{uuid.uuid4().hex[:6]}"
    target = Target(fleet, the_plan, folder / ".dockyard", "local", project, ("*",))
    ours = json.loads(compose(target, "config", "--format", "json").stdout)
    a, b = comparable(config(paths, project, env=SECRETS), ours, fleet, result.unmapped)
    assert differences(a, b) == []

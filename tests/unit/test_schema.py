"""The manifest reference and JSON Schema are made from the models and checked in: an editor
that validates fleet.yaml with the schema agrees with dockyard's own loader."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from dockyard.errors import ManifestError
from dockyard.manifest.load import loads
from dockyard.manifest.schema import json_schema, reference_markdown, schema_text

ROOT = Path(__file__).parents[2]
MANIFESTS = sorted([ROOT / "src" / "dockyard" / "examples" / "quickstart" / "fleet.yaml",
                    *ROOT.glob("examples/*/fleet*.yaml"), *ROOT.glob("tests/golden/*/fleet.yaml")])
VALIDATOR = jsonschema.Draft202012Validator(json_schema())


def _raw(text: str) -> object:
    return YAML(typ="safe", pure=True).load(text)


def test_checked_in_reference_and_schema_are_what_the_models_make() -> None:
    regenerate = "regenerate: dockyard schema --format markdown > docs/manifest.md; " \
                 "dockyard schema > docs/fleet.schema.json"
    assert (ROOT / "docs" / "manifest.md").read_text() == reference_markdown(), regenerate
    assert (ROOT / "docs" / "fleet.schema.json").read_text() == schema_text(), regenerate


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(json_schema())
    assert json.loads(schema_text()) == json_schema()


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_bundled_manifest_validates(path: Path) -> None:
    errors = [e.message for e in VALIDATOR.iter_errors(_raw(path.read_text()))]
    assert errors == []


GOOD = """\
fleet: demo
machines: {box: {memory: 16GiB, cpus: "${CPUS}", gpus: [{memory: 24GiB}]}}
services:
  api:
    image: redis:7.4.1
    command: redis-server --port 7000
    ports: {http: 8000, admin: "127.0.0.1:18001:8001", raw: {port: 9000, publish: false}}
    health: {cmd: [redis-cli, ping], interval: 1m30s, start_period: 250ms}
    depends_on: [db]
    env: {THREADS: 16, DEBUG: true, EMPTY: null}
    memory: 2G
  db: {image: postgres:16.4, depends_on: {api: {condition: started}}}
"""


@pytest.mark.parametrize("change, word", [
    ("    memory: 2G\n", "    memroy: 2G\n"),                  # a typo'd key
    ("memory: 2G", "memory: lots"),                             # not a size
    ("interval: 1m30s", "interval: soon"),                      # not a duration
    ("    memory: 2G\n", "    memory: 2G\n    restart: sometimes\n"),  # not a policy
    ("GOOD", "GOOD"),                                           # the good one, both ways
    ("fleet: demo", "fleet: Demo"),                             # names are lowercase
    ("condition: started", "condition: done"),                  # not a condition
    ("http: 8000", "http: [8000]"),                             # not a port
])
def test_schema_and_loader_agree(change: str, word: str) -> None:
    assert not list(VALIDATOR.iter_errors(_raw(GOOD)))
    loads(GOOD, environ={"CPUS": "4"})
    if change == word:
        return
    bad = GOOD.replace(change, word)
    assert list(VALIDATOR.iter_errors(_raw(bad))), bad
    with pytest.raises(ManifestError):
        loads(bad, environ={"CPUS": "4"})


def test_reference_lists_every_key_of_every_section() -> None:
    text = reference_markdown()
    from dockyard.manifest.schema import MODELS

    for model in MODELS:
        for name, field in model.model_fields.items():
            key = field.alias or name
            assert f"| `{key}` |" in text, (model.__name__, key)
            assert field.description, f"{model.__name__}.{name} needs a description"

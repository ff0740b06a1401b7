"""yamltext.dump: what it writes reads back as the same data (YAML 1.2 and 1.1 readers)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from dockyard.render.yamltext import dump, scalar


def read(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


def read_11(text: str) -> Any:
    """A YAML 1.1 reader (yes/no/on/off are booleans, 010 is octal, 1:30 is sexagesimal)."""
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 1)
    return yaml.load(text)


TRICKY = ["", " ", "08", "0_1", "+1", "1_000", "1.5e3", "0b101", "0o17", "-_",
          "yes", "No", "on", "OFF", "y", "~", "null", "true", "0", "010", "0x1F", "1e3",
          ".5", "1:30", "2024-01-02", "-", "--", "- x", "?", ":", "a: b", "a #b", "#x", "@x",
          "`x", "'q'", '"d"', "x'y", "line\nbreak", "tab\there", " lead", "trail ", "*alias",
          "&anchor", "!tag", "%x", "{}", "[]", "a,b", "<<", "=", "ünï", "$$HOME", "--model",
          "-c", "0.0.0.0:80:8080", "max_split_size_mb:64", "key:", "\x07bell", ".inf", "-.5"]


def test_tricky_strings_read_back_as_strings() -> None:
    doc = {"env": {s or "empty": s for s in TRICKY}, "list": TRICKY}
    text = dump(doc)
    assert read(text) == doc
    assert read_11(text) == doc


def test_shapes_like_ruamel_writes_them() -> None:
    doc = {"services": {"a": {"ports": ["1:2"], "deploy": {"devices": [
        {"driver": "nvidia", "ids": ["0"]}]}, "empty": {}, "none": []}}}
    assert dump(doc) == (
        "services:\n  a:\n    ports:\n    - '1:2'\n    deploy:\n      devices:\n"
        "      - driver: nvidia\n        ids:\n        - '0'\n    empty: {}\n    none: []\n")
    assert scalar(True) == "true" and scalar(3) == "3" and scalar("3") == "'3'"


# Mostly characters that make YAML read a scalar as something else: numbers, dates, times.
yamlish = st.text(alphabet=st.sampled_from("0123456789.:-+_eExXoObB #'\"yYnN~tTfF"), max_size=8)
keys = st.one_of(st.text(min_size=1, max_size=12), yamlish.filter(bool))
leaves = st.one_of(st.text(max_size=20), yamlish, st.integers(-10**6, 10**6), st.booleans())
docs = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)), max_leaves=20)


@settings(max_examples=60)  # the same 60 each run; 4 x 3,000 random runs passed
@given(st.dictionaries(keys, docs, min_size=1, max_size=5))
def test_any_document_reads_back_the_same(doc: dict[str, Any]) -> None:
    text = dump(doc)
    assert read(text) == doc
    assert read_11(text) == doc

"""Property: whatever fleet.yaml holds, `dockyard check` never prints a traceback, exits 0, 1
or 2, and an exit 2 names the file (and where possible line and column).

Manifests are generated from the schema, then broken: wrong types, missing and unknown keys,
huge numbers, unicode, dependency and family cycles, deep nesting, YAML anchors and merge
keys, empty files, invalid UTF-8 and binary junk. The check runs in-process through the real
entry point, `dockyard.cli.main`, with its exit code and both output streams.

The unit tier runs EXAMPLES of them, the same ones on every run (the derandomized profile
in tests/conftest.py): a regression net that costs a few seconds. The `slow` test draws
20,000 new ones each time (23 min measured, all passing; DOCKYARD_FUZZ_EXAMPLES=N runs N):
    pytest -m slow tests/unit/test_fuzz.py
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from dockyard import cli
from dockyard.manifest import load as manifest_load

EXAMPLES = 40  # ~60 ms each (a check through the CLI, and drawing a schema-shaped manifest)
FAST = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])
# DOCKYARD_FUZZ_EXAMPLES sets the slow run's size (e.g. a shorter nightly run); it explores:
# new random examples each run, not the unit tier's fixed ones.
SLOW = settings(FAST, max_examples=int(os.environ.get("DOCKYARD_FUZZ_EXAMPLES", "20000")),
                derandomize=False)

# -- generated manifests ------------------------------------------------------------------------

names = st.from_regex(r"[a-z][a-z0-9-]{0,6}", fullmatch=True)
unicode_text = st.text(max_size=20)
huge = st.one_of(st.integers(min_value=2**31, max_value=10**40),
                 st.integers(max_value=-1, min_value=-(10**40)))
junk = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), huge,
    st.floats(allow_nan=True, allow_infinity=True), unicode_text,
    st.lists(st.integers(), max_size=3), st.dictionaries(unicode_text, st.integers(), max_size=3),
)

def either(valid: bool, good: Any, bad: Any) -> Any:
    """Only `good` values for a manifest that should load; both kinds otherwise."""
    return good if valid else st.one_of(good, bad)


good_sizes = st.one_of(st.sampled_from(["512MiB", "16GiB", "24g", "1GB", "1.5GiB", "8GiB"]),
                       st.integers(0, 2**40))
bad_sizes = st.one_of(st.sampled_from(["-1", "1e400", "9" * 40 + "TiB", "lots", ""]),
                      st.integers(-1, 2**66), st.floats(allow_nan=True, allow_infinity=True))
good_durations = st.one_of(st.sampled_from(["5s", "1m30s", "250ms", "0s", "2h"]),
                           st.integers(0, 600))
bad_durations = st.one_of(st.sampled_from(["-1s", "soon", "", "9" * 400 + "h"]),
                          st.integers(-1, 10**12))
good_ports = st.one_of(
    st.integers(1, 65_535),
    st.sampled_from(["8000", "18000:8000", "0.0.0.0:18000:8000", "8000", "6379"]),
    st.fixed_dictionaries({"port": st.integers(1, 65_535)},
                          optional={"host": st.integers(1, 65_535), "publish": st.booleans(),
                                    "protocol": st.sampled_from(["tcp", "udp"])}),
)
bad_ports = st.one_of(
    st.integers(-5, 70_000),
    st.sampled_from(["a:b", "1:2:3:4", "::1", "8000/udp", "", "65536:1"]),
    st.fixed_dictionaries({"port": st.integers(0, 70_000)},
                          optional={"host": st.integers(0, 70_000), "bind": unicode_text,
                                    "protocol": st.sampled_from(["tcp", "udp", "sctp"])}),
)
good_images = st.sampled_from(["python:3.11-slim", "redis:7", "redis", "qdrant/qdrant:latest",
                               "nvcr.io/nvidia/pytorch:24.10-py3", "vllm/vllm-openai:v0.6.3"])
bad_images = st.sampled_from(["", "UPPER/case", "a" * 300])
env_keys = st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True)
good_env = st.dictionaries(env_keys, st.one_of(
    st.text(st.characters(blacklist_characters="$"), max_size=20), st.integers(),
    st.booleans(), st.none(), st.sampled_from(["http://localhost:8000", "${HOME}", "$$",
                                               "redis://127.0.0.1:6379", "${X:-d}"])),
    max_size=4)
bad_env = st.dictionaries(env_keys, st.one_of(unicode_text, st.sampled_from(
    ["${UNSET:?needed}", "${", "${A B}"])), max_size=4)


@st.composite
def health(draw: Any, port_names: list[str], valid: bool) -> dict[str, Any]:
    http = st.fixed_dictionaries({"http": st.sampled_from(["/health", "/", "/v1/models"])})
    cmd = st.fixed_dictionaries({"cmd": st.one_of(st.sampled_from(["redis-cli ping", "true"]),
                                                  st.lists(unicode_text, min_size=1,
                                                           max_size=3))})
    bad = st.one_of(st.fixed_dictionaries({"http": st.sampled_from(["health", ""])}), st.just({}))
    out: dict[str, Any] = draw(either(valid, cmd if valid and not port_names
                                      else st.one_of(http, cmd), bad))
    if port_names and draw(st.booleans()):
        out["port"] = draw(either(valid, st.sampled_from(port_names),
                                  st.sampled_from(["nope", 0, 8000])))
    for key in ("interval", "timeout", "start_period"):
        if draw(st.booleans()):
            out[key] = draw(either(valid, good_durations, bad_durations))
    if draw(st.booleans()):
        out["retries"] = draw(either(valid, st.integers(1, 100), st.integers(-1, 10**12)))
    return out


@st.composite
def manifests(draw: Any, valid: bool = False) -> dict[str, Any]:
    """A manifest shaped like the schema, with references (and cycles) between its parts;
    with `valid`, every value is of the right type and range (references may still dangle)."""
    sizes = either(valid, good_sizes, bad_sizes)
    ports = either(valid, good_ports, bad_ports)
    images = either(valid, good_images, bad_images)
    envs = either(valid, good_env, bad_env)
    ghost = () if valid else ("ghost",)
    machine_names = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    family_names = draw(st.lists(names, max_size=3, unique=True))
    service_names = draw(st.lists(names, min_size=1, max_size=6, unique=True))
    machines = {}
    for m in machine_names:
        machines[m] = draw(st.fixed_dictionaries({}, optional={
            "arch": either(valid, st.sampled_from(["amd64", "arm64"]), st.just("riscv")),
            "cpus": either(valid, st.integers(0, 512), st.floats(allow_nan=True)),
            "memory": sizes,
            "cuda_driver": st.sampled_from(["12.4", "13.0", "11.8", "x", ""]),
            "host": st.sampled_from(["10.0.0.2", "spark-1.local"]),
            "gpus": st.lists(st.fixed_dictionaries({}, optional={
                "memory": sizes, "sm": st.sampled_from(["8.9", "8.6", "12.1", "99.9", ""]),
                "model": st.sampled_from(["RTX 4090", "RTX 3060", "GB10"]),
                "unified": st.booleans()}), max_size=3),
            "profile": envs,
        }))
    families = {}
    for f in family_names:
        families[f] = draw(st.fixed_dictionaries(
            {"from": either(valid, st.one_of(images, st.sampled_from(family_names).filter(
                lambda parent, f=f: parent != f)), st.just(f))},
            optional={"requirements": st.lists(st.sampled_from(
                ["torch==2.5.1", "numpy", "fastapi>=0.110", "torchaudio", "==", ""]), max_size=3),
                "apt": st.lists(unicode_text, max_size=2),
                "torch": st.sampled_from(["2.5.1", "2.9.0", "x"]),
                "cuda": st.sampled_from(["12.4", "12.8", "13.0", "9"]),
                "platforms": st.lists(either(valid, st.sampled_from(["amd64", "arm64"]),
                                             st.just("ppc")), max_size=2),
                "max_size": sizes}))
    services = {}
    for s in service_names:
        port_names = draw(st.lists(names, max_size=3, unique=True))
        svc: dict[str, Any] = {}
        if family_names and draw(st.booleans()):
            svc["family"] = draw(st.sampled_from([*family_names, *ghost]))
            if draw(st.booleans()):
                svc["build"] = draw(st.sampled_from([".", "services/x", "/abs"]))
        else:
            svc["image"] = draw(images)
        svc["ports"] = {p: draw(ports) for p in port_names}
        if draw(st.booleans()):
            svc["health"] = draw(health(port_names, valid))
        if draw(st.booleans()):
            others = [n for n in service_names if n != s or not valid]
            deps = draw(st.lists(st.sampled_from([*others, *ghost]), max_size=3)) \
                if others or ghost else []
            svc["depends_on"] = deps if draw(st.booleans()) else {
                d: {"condition": draw(either(valid, st.sampled_from(["healthy", "started"]),
                                             st.just("done")))}
                for d in deps}
        optional = draw(st.fixed_dictionaries({}, optional={
            "command": st.one_of(unicode_text, st.lists(unicode_text, max_size=3)),
            "env": envs,
            "volumes": st.lists(st.sampled_from(["data:/data", "./rel:/x", "/abs:/y:ro", ":",
                                                 ""]), max_size=2),
            "machine": st.sampled_from([*machine_names, *ghost]),
            "machines": st.lists(st.sampled_from(machine_names), max_size=2),
            "gpu": st.fixed_dictionaries({}, optional={
                "memory": sizes, "count": either(valid, st.integers(0, 2), st.integers(-1, 9)),
                "device": either(valid, st.integers(0, 3), st.integers(-1, 9)),
                "runtime": either(valid, st.sampled_from(["generic", "vllm", "torch", "ollama"]),
                                  st.just("x"))}),
            "cpus": either(valid, st.floats(0, 64), st.one_of(
                st.floats(allow_nan=True, allow_infinity=True), st.integers(-1, 10**6))),
            "memory": sizes,
            "user": st.sampled_from(["root", "0", "10001:10001", ""]),
            "restart": either(valid, st.sampled_from(["no", "always"]), st.just("sometimes")),
            "needs": st.lists(either(valid, st.sampled_from(["gpu", "cpu"]), st.just("tpu")),
                              max_size=2),
            "affinity": st.lists(st.sampled_from([*service_names, *ghost]), max_size=2),
            "anti_affinity": st.lists(st.sampled_from([*service_names, *ghost]), max_size=2),
            "group": names,
            "requirements": st.lists(st.sampled_from(["torch", "numpy==1.26.4", "x>"]),
                                     max_size=2),
            "agents": st.dictionaries(names, st.fixed_dictionaries(
                {"command": st.lists(unicode_text, min_size=1, max_size=2)},
                optional={"ports": st.dictionaries(names, ports, max_size=2)}), max_size=2),
            "suppress": st.dictionaries(st.sampled_from(["DY101", "DY502", "X"]), either(
                valid, st.just("accepted: tested on the bench"),
                st.one_of(unicode_text, st.none())), max_size=2),
            "profiles": st.lists(names, max_size=2),
        }))
        if valid and "machine" in optional:
            optional.pop("machines", None)
        svc.update(optional)
        services[s] = svc
    doc: dict[str, Any] = {"fleet": draw(either(valid, names, unicode_text)),
                           "machines": machines,
                           "services": services}
    if families:
        doc["families"] = families
    return doc


def _paths(node: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*at, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*at, i))


def _nest(depth: int, leaf: Any) -> Any:
    for i in range(depth):
        leaf = {"k": leaf} if i % 2 else [leaf]
    return leaf


@st.composite
def broken(draw: Any) -> dict[str, Any]:
    """A generated manifest with 0-4 random nodes replaced, deleted, renamed or nested."""
    doc = draw(manifests())
    for _ in range(draw(st.integers(0, 4))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        key = path[-1]
        op = draw(st.sampled_from(["junk", "delete", "unknown-key", "nest", "huge", "unicode"]))
        if op == "delete" and isinstance(parent, dict):
            del parent[key]
        elif op == "unknown-key" and isinstance(parent, dict):
            parent[draw(unicode_text) or "x"] = parent.pop(key)
        elif op == "nest":
            parent[key] = _nest(draw(st.integers(1, 200)), parent[key])
        elif op == "huge":
            parent[key] = draw(huge)
        elif op == "unicode":
            parent[key] = draw(st.text(min_size=1, max_size=40))
        else:
            parent[key] = draw(junk)
    return doc


def dump(doc: Any) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    buf = io.StringIO()
    yaml.dump(doc, buf)
    return buf.getvalue()


VALID = """\
fleet: demo
machines:
  box: {cpus: 8, memory: 32GiB, gpus: [{memory: 24GiB, sm: "8.9"}]}
services:
  api:
    image: python:3.11-slim
    ports: {http: 8000}
    health: {http: /health}
    depends_on: [db]
  db:
    image: redis:7
    ports: {redis: 6379}
"""

ANCHORS = """\
fleet: demo
machines:
  box: &machine {cpus: 8, memory: 32GiB}
services:
  base: &base
    image: redis:7
    ports: &ports {p: 6379}
  a:
    <<: *base
    ports: {p: 6380}
  b:
    <<: [*base, *machine]
  c: {<<: *base, ports: *ports, env: *ports}
  d: *base
  e: {<<: *ports}
"""


def _laughs(levels: int, width: int) -> str:
    lines = ["fleet: lol", "machines: {m: {}}", "x0: &x0 [lol]"]
    for i in range(1, levels):
        refs = ", ".join([f"*x{i - 1}"] * width)
        lines.append(f"x{i}: &x{i} [{refs}]")
    lines.append(f"services: {{s: {{image: redis:7, env: {{A: *x{levels - 1}}}}}}}")
    return "\n".join(lines) + "\n"


texts = st.one_of(
    st.sampled_from([b"", b"\n", b"---\n", b"~\n", b"[]\n", b"- a\n", b"null\n", b"fleet:\n",
                     b"\xef\xbb\xbf" + VALID.encode(), VALID.encode().replace(b"  ", b"\t", 1),
                     ANCHORS.encode(), _laughs(4, 3).encode(),  # _laughs(9, 9): below
                     b"a: " + b"[" * 3000 + b"]" * 3000, b"a: " + b"{" * 3000,
                     b"services: *undefined\n", b"fleet: demo\nfleet: again\n",
                     b"\x00\x01\x02", b"\xff\xfe\xfd", "fleet: d\u00e9mo\n".encode("latin-1"),
                     b"!!python/object:os.system [ls]\n", b"a: !!binary AAAA\n",
                     b"%YAML 9.9\n---\na: 1\n", b"? [a, b]\n: c\n"]),
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    manifests(valid=True).map(lambda d: dump(d).encode()),
    manifests(valid=True).map(lambda d: dump(d).encode()),
    broken().map(lambda d: dump(d).encode()),
    # a valid text, cut or spliced with junk at a random place
    st.tuples(st.sampled_from([VALID, ANCHORS]), st.integers(0, 400), st.text(max_size=20))
    .map(lambda t: (t[0][: t[1]] + t[2] + t[0][t[1]:]).encode("utf-8", "surrogatepass")),
)


# -- the property ---------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKYARD_DEBUG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def run_check(manifest: bytes) -> tuple[int, str]:
    """`dockyard -f fleet.yaml check` in this process: (exit code, stdout + stderr)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fleet.yaml"
        path.write_bytes(manifest)
        stdout, stderr = io.StringIO(), io.StringIO()
        argv = sys.argv
        sys.argv = ["dockyard", "-f", str(path), "check"]
        code: Any = 0
        try:
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                cli.main()
        except SystemExit as exc:
            code = exc.code
        finally:
            sys.argv = argv
    return (code if isinstance(code, int) else 1 if code else 0), stdout.getvalue() + \
        stderr.getvalue()


def assert_handled(manifest: bytes) -> None:
    code, output = run_check(manifest)
    assert "Traceback" not in output, output
    assert code in (0, 1, 2), f"exit {code}: {output[-2000:]}"
    if code == 2:
        assert "fleet.yaml" in output, output
        # A located message names the line too, unless the whole file is at fault.
        assert re.search(r"fleet\.yaml(:\d+:\d+)?: ", output), output


@FAST
@given(texts)
def test_check_survives_any_manifest(manifest: bytes) -> None:
    assert_handled(manifest)


@pytest.mark.slow
@SLOW
@given(texts)
def test_check_survives_any_manifest_slow(manifest: bytes) -> None:
    assert_handled(manifest)


MARKUP = 'fleet: demo\nmachines: {m: {}}\nservices:\n  "[/red]": {image: redis:7}\n'
LINE_100 = "fleet: demo\nmachines: {m: {}}\nservices:\n" + "\n" * 96 + "  a: {image: r, bogus: 1}\n"


DEPENDS_ON_MAPPING = "fleet: a\nmachines: {m: {}}\nservices: {a: {image: r, depends_on: [{}]}}\n"


@pytest.mark.parametrize("text", [VALID, ANCHORS, "", "\x00", "a: " + "[" * 3000,
                                  MARKUP, LINE_100, DEPENDS_ON_MAPPING])
def test_known_shapes(text: str) -> None:
    """The fixed cases the generator starts from, each one on its own."""
    assert_handled(text.encode())


def test_a_billion_laughs_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """9^9 values after its aliases: refused once the walk passes the loader's limit, here
    lowered to 1,000 (walking to the real one takes ~2 s; the CLI as a program does that in
    tests/process/test_fuzz.py)."""
    monkeypatch.setattr(manifest_load, "MAX_VALUES", 1000)
    code, output = run_check(_laughs(9, 9).encode())
    assert "Traceback" not in output, output
    assert code == 2 and "fleet.yaml: manifest expands to more than 1000 values" in output, \
        output


def test_messages_are_not_rich_markup() -> None:
    """Found by this fuzz test: `[/red]` in a message crashed rich, and `:100:` became 💯."""
    assert "fleet.yaml:4:3: services.[/red]" in run_check(MARKUP.encode())[1]
    assert "fleet.yaml:100:17: services.a.bogus" in run_check(LINE_100.encode())[1]


def test_valid_manifest_checks() -> None:
    code, output = run_check(VALID.encode())
    assert code in (0, 1), output


def test_generated_manifests_are_mostly_usable() -> None:
    """The generator is not only producing junk: most `valid` manifests load and check."""
    codes: list[int] = []

    @settings(max_examples=16, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(manifests(valid=True))
    def collect(doc: dict[str, Any]) -> None:
        codes.append(run_check(dump(doc).encode())[0])

    collect()
    assert sum(code in (0, 1) for code in codes) >= len(codes) // 3, codes

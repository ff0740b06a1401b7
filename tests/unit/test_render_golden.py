"""Golden files for `render_all`: every file dockyard renders, byte for byte.

Each folder under tests/golden/ is one case: `fleet.yaml` is the input, `environ.env` (optional,
KEY=VALUE lines) the environment it is loaded with, and `expected/` holds every rendered file at
its relative path. The test renders the case and compares the set of file names and each file's
text, printing a unified diff on a mismatch.

After an intended change to the rendered output, rewrite the expected files and review the diff:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_render_golden.py
    git diff tests/golden/

Rendering does not read the `build:` folders a manifest names, so the cases need none.
"""

from __future__ import annotations

import difflib
import io
import os
import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

import dockyard
from dockyard.manifest.interpolate import read_dotenv
from dockyard.manifest.load import Fleet, loads
from dockyard.plan import plan
from dockyard.plan.family import family_requirements
from dockyard.render.files import render_all

GOLDEN = Path(__file__).parent.parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "fleet.yaml").is_file())
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
EXAMPLE = Path(dockyard.__file__).parent / "examples" / "quickstart" / "fleet.yaml"


def environ_of(case: Path) -> dict[str, str]:
    return read_dotenv(case / "environ.env")


def render_text(text: str, environ: dict[str, str]) -> dict[str, str]:
    fleet: Fleet = loads(text, environ=environ)
    return render_all(fleet, plan(fleet), text)


def render_case(case: Path) -> dict[str, str]:
    return render_text((case / "fleet.yaml").read_text(encoding="utf-8"), environ_of(case))


def expected_files(case: Path) -> dict[str, str]:
    root = case / "expected"
    return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(root.rglob("*")) if p.is_file()}


def write_expected(case: Path, files: dict[str, str]) -> None:
    root = case / "expected"
    shutil.rmtree(root, ignore_errors=True)
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", newline="")


def diff(rel: str, expected: str, actual: str) -> str:
    return "".join(difflib.unified_diff(
        expected.splitlines(keepends=True), actual.splitlines(keepends=True),
        fromfile=f"expected/{rel}", tofile=f"rendered/{rel}"))


def test_there_are_golden_cases() -> None:
    assert {"quickstart", "gpu-fleet", "family-chain", "own-dockerfile"} <= set(CASES)


def test_quickstart_case_is_the_bundled_example() -> None:
    # The copy must follow the example; otherwise the golden case tests a stale manifest.
    copied = (GOLDEN / "quickstart" / "fleet.yaml").read_text(encoding="utf-8")
    assert copied == EXAMPLE.read_text(encoding="utf-8"), (
        "copy src/dockyard/examples/quickstart/fleet.yaml to tests/golden/quickstart/, "
        "then rerun with UPDATE_GOLDEN=1")


@pytest.mark.parametrize("name", CASES)
def test_render_matches_golden(name: str) -> None:
    case = GOLDEN / name
    rendered = render_case(case)
    if UPDATE:
        write_expected(case, rendered)
    expected = expected_files(case)
    problems: list[str] = []
    missing = sorted(set(expected) - set(rendered))
    extra = sorted(set(rendered) - set(expected))
    if missing:
        problems.append(f"expected but not rendered: {', '.join(missing)}")
    if extra:
        problems.append(f"rendered but not expected: {', '.join(extra)}")
    for rel in sorted(set(expected) & set(rendered)):
        if expected[rel] != rendered[rel]:
            problems.append(diff(rel, expected[rel], rendered[rel]))
    if problems:
        pytest.fail(f"golden case {name} differs (rerun with UPDATE_GOLDEN=1 to accept):\n"
                    + "\n".join(problems), pytrace=False)


# --- what the golden files must say, checked on their own -------------------------------------

def test_gpu_fleet_splits_compose_per_machine_and_keeps_profiles() -> None:
    rendered = render_case(GOLDEN / "gpu-fleet")
    assert {"compose.big.yaml", "compose.small.yaml", ".env.example"} == set(rendered)
    yaml = YAML(typ="safe")
    big = yaml.load(rendered["compose.big.yaml"])
    small = yaml.load(rendered["compose.small.yaml"])
    assert list(big["services"]) == ["db", "llm"]  # start order: db is level 0
    assert list(small["services"]) == ["tts"]
    assert small["services"]["tts"]["profiles"] == ["voice"]
    llm = big["services"]["llm"]
    assert llm["ports"] == ["0.0.0.0:80:8080", "127.0.0.1:18000:8000"]
    assert llm["expose"] == ["9100"]
    assert llm["environment"]["OMP_NUM_THREADS"] == "16"  # the machine's profile
    assert llm["environment"]["TORCH_CUDA_ALLOC_CONF"] == "max_split_size_mb:64"
    assert "OMP_NUM_THREADS" not in small["services"]["tts"]["environment"]
    assert llm["depends_on"] == {"db": {"condition": "service_started"}}
    assert llm["deploy"]["resources"]["limits"] == {"cpus": "8", "memory": "49152m"}
    assert llm["volumes"] == ["hf-cache:/root/.cache/huggingface", "./data:/data"]
    assert set(big["volumes"]) == {"hf-cache", "pg-data"}  # the bind mount is no volume
    # A literal `$$` in the manifest reaches the container as `$` (compose unescapes `$$`).
    assert big["services"]["db"]["healthcheck"]["test"][-1] == "pg_isready -U $$POSTGRES_USER"
    env_example = rendered[".env.example"]
    assert "# required: set a password\nDB_PASSWORD=\n" in env_example
    assert "TTS_VOICE=en_US-amy-medium\n" in env_example
    assert "golden-password" not in env_example  # the value is never written as an example


def test_family_chain_service_volumes_belong_to_the_app_user() -> None:
    rendered = render_case(GOLDEN / "family-chain")
    worker = rendered["services/worker.Dockerfile"]
    assert "RUN mkdir -p /models /var/cache/worker \\\n" in worker
    assert "    && chown 10001:10001 /models /var/cache/worker\n" in worker
    assert "/etc/worker" not in worker  # a bind mount is the host's folder
    # What `dockyard lock` resolves for a family: its ancestors' requirements first.
    case = GOLDEN / "family-chain"
    fleet = loads((case / "fleet.yaml").read_text(encoding="utf-8"), environ=environ_of(case))
    assert family_requirements(plan(fleet).families, "serve") == [
        "numpy==2.1.3", "scipy==1.14.1", "fastapi==0.115.12", "uvicorn[standard]==0.34.2"]
    assert "families/serve/requirements.txt" not in rendered  # the lock is what installs
    # tini and the app user come once, in the root family only.
    assert "tini" in rendered["families/base/Dockerfile"]
    assert "useradd" in rendered["families/base/Dockerfile"]
    assert "useradd" not in rendered["families/ml/Dockerfile"]
    assert "ARG BASE_IMAGE=registry.lab.internal:5000/chain/family-ml:current\n" in (
        rendered["families/serve/Dockerfile"])


def test_entrypoint_on_a_built_service_keeps_its_command_in_compose() -> None:
    # compose drops an image's CMD when the service sets `entrypoint:`, so it must repeat it.
    compose = YAML(typ="safe").load(render_case(GOLDEN / "family-chain")["compose.box.yaml"])
    api = compose["services"]["api"]
    assert api["entrypoint"] == ["/usr/bin/tini", "--", "python3"]
    assert api["command"] == ["-m", "api"]
    assert "command" not in compose["services"]["worker"]  # carried by the image's CMD


def test_own_dockerfile_is_not_rendered_and_compose_carries_the_command() -> None:
    rendered = render_case(GOLDEN / "own-dockerfile")
    assert "services/legacy.Dockerfile" not in rendered
    assert "services/web.Dockerfile" in rendered
    compose = YAML(typ="safe").load(rendered["compose.local.yaml"])
    assert compose["services"]["legacy"]["command"] == [
        "gunicorn", "-b", "0.0.0.0:5000", "app:app"]
    assert "command" not in compose["services"]["web"]


def test_gpu_device_is_gpu_zero_inside_the_container() -> None:
    text = """\
fleet: two
machines:
  box:
    gpus: [{memory: 24GiB}, {memory: 12GiB}]
services:
  small:
    image: ghcr.io/x/y:1
    gpu: {device: 1, memory: 4GiB}
"""
    compose = YAML(typ="safe").load(render_text(text, {})["compose.box.yaml"])
    small = compose["services"]["small"]
    devices = small["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "device_ids": ["1"], "capabilities": ["gpu"]}]
    assert small["environment"]["CUDA_VISIBLE_DEVICES"] == "0"


def test_compose_escapes_dollars_that_interpolation_left() -> None:
    text = """\
fleet: cash
machines:
  box: {}
services:
  shop:
    image: shop:1.0
    command: "echo $$HOME costs $${PRICE}"
    env: {PRICE: "$$5", GREETING: "${GREETING}", TOKEN: "${TOKEN}"}
"""
    rendered = render_text(text, {"GREETING": "a$b", "TOKEN": "c$d"})
    shop = YAML(typ="safe").load(rendered["compose.box.yaml"])["services"]["shop"]
    assert shop["command"] == ["/bin/sh", "-c", "echo $$HOME costs $${PRICE}"]
    # A secret stays a reference (see test_secrets.py); other values are written, `$` doubled.
    assert shop["environment"] == {"PRICE": "$$5", "GREETING": "a$$b", "TOKEN": "${TOKEN}"}


# --- determinism -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CASES)
def test_rendering_twice_gives_identical_bytes(name: str) -> None:
    first = render_case(GOLDEN / name)
    second = render_case(GOLDEN / name)
    assert list(first) == list(second)
    assert {k: v.encode() for k, v in first.items()} == {k: v.encode() for k, v in second.items()}


def reorder(text: str) -> str:
    """The same manifest with services, families and machines written in reverse order."""
    yaml = YAML(typ="rt")
    yaml.width = 4096
    tree = yaml.load(text)
    for section in ("services", "families", "machines"):
        if section in tree:
            tree[section] = CommentedMap(reversed(list(tree[section].items())))
    buf = io.StringIO()
    yaml.dump(tree, buf)
    return buf.getvalue()


@pytest.mark.parametrize("name", CASES)
def test_order_of_the_manifest_does_not_change_the_output(name: str) -> None:
    case = GOLDEN / name
    text = (case / "fleet.yaml").read_text(encoding="utf-8")
    shuffled = reorder(text)
    environ = environ_of(case)
    assert list(loads(shuffled, environ=environ).spec.services) == list(
        reversed(loads(text, environ=environ).spec.services))
    assert render_text(shuffled, environ) == render_text(text, environ)

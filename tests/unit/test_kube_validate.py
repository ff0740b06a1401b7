"""Every golden Kubernetes document passes `kubernetes-validate`, strict, for the pinned version.

tests/unit/test_render_kube.py proves the rendered folders equal tests/golden/kubernetes/, so
validating the golden files validates what dockyard renders. Strict: a field the schema does
not know is an error. The Kustomization is kustomize's, not an API object, so it is checked
here by hand: every file it lists exists and every manifest is listed.

kubernetes_validate reads its 1.3 MB definitions file on every call (~20 ms); reading each
schema file once makes the ~300 documents take well under a second. The validation is the
package's own, unchanged.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils
import pytest
from ruamel.yaml import YAML

from dockyard.render.kube import KUBERNETES_VERSION

KUBE = Path(__file__).resolve().parents[1] / "golden" / "kubernetes"
CASES = sorted(p.name for p in KUBE.iterdir() if (p / "kustomization.yaml").is_file())


@pytest.fixture(autouse=True)
def _schemas_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kubernetes_validate.utils, "schema_contents", _cached_schema)


_cached_schema = functools.cache(kubernetes_validate.utils.schema_contents)


@functools.cache
def documents(case: str) -> list[tuple[str, dict[str, Any]]]:
    """(file, document) of a golden folder, parsed once for the tests below."""
    yaml = YAML(typ="safe")
    return [(path.relative_to(KUBE / case).as_posix(), doc)
            for path in sorted((KUBE / case).rglob("*.yaml"))
            for doc in yaml.load_all(path.read_text(encoding="utf-8")) if doc]


def test_the_pinned_version_is_bundled() -> None:
    versions = kubernetes_validate.utils.all_versions()
    assert f"{KUBERNETES_VERSION}.0" in versions, versions


def test_every_case_has_a_golden_folder() -> None:
    assert len(CASES) >= 9, CASES


@pytest.mark.parametrize("case", CASES)
def test_every_document_validates_strictly(case: str) -> None:
    problems = []
    kinds = set()
    for rel, doc in documents(case):
        kinds.add(doc["kind"])
        if doc["kind"] == "Kustomization":
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            problems.append(f"{rel}: {doc['kind']}/{doc['metadata']['name']}: {where}: "
                            f"{exc.message}")
    assert not problems, "\n".join(problems)
    assert {"Namespace", "Kustomization"} <= kinds


@pytest.mark.parametrize("case", CASES)
def test_the_kustomization_lists_every_manifest(case: str) -> None:
    folder = KUBE / case
    kustomization = next(doc for rel, doc in documents(case) if rel == "kustomization.yaml")
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*.yaml")}
    assert sorted(kustomization["resources"]) == sorted(
        files - {"kustomization.yaml", "secret.yaml"})
    namespaces = {doc["metadata"].get("namespace", doc["metadata"]["name"])
                  for _, doc in documents(case) if doc["kind"] != "Kustomization"}
    assert namespaces == {kustomization["namespace"]}

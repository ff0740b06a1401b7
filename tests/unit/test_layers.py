"""The layers, enforced: every import between dockyard's modules, read with `ast` (function-local
and TYPE_CHECKING ones too), must go down the layer order, and no import may close a cycle.

    core (errors, findings, units, compat, platforms, names, ...)  anyone may import it
      <- manifest <- plan <- checks
                         <- render
                         <- ops (pure decisions on observed snapshots)
      <- engine (the only door to Docker, subprocesses, the network)
      <- cli, actions, server (the shell)

A failure names each offending import as file:line, so the fix starts there.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).parents[2] / "src"
PACKAGE = SRC / "dockyard"

CORE = "core"
SHELL = "shell"
# What each layer may import besides itself; core is open to everyone.
MAY_IMPORT: dict[str, set[str]] = {
    CORE: set(),
    "manifest": {CORE},
    "plan": {CORE, "manifest"},
    "checks": {CORE, "manifest", "plan"},
    "render": {CORE, "manifest", "plan"},
    "ops": {CORE, "manifest", "plan"},
    "engine": {CORE, "manifest", "plan", "checks", "render", "ops"},
    SHELL: {CORE, "manifest", "plan", "checks", "render", "ops", "engine"},
    "examples": set(),  # the bundled fleet's service code: not dockyard's
}
PURE = ("manifest", "plan", "checks", "render", "ops")
# The modules and packages that are not a layer of their own: top-level names -> layer.
PLACES = {
    "dockyard": CORE, "errors": CORE, "findings": CORE, "units": CORE, "compat": CORE,
    "platforms": CORE, "names": CORE, "gcpause": CORE, "events": CORE, "workspace": CORE,
    "cli": SHELL, "__main__": SHELL, "actions": SHELL, "server": SHELL,
}


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module names
    imported: str
    file: Path
    line: int

    def __str__(self) -> str:
        return (f"{self.file.relative_to(SRC.parent)}:{self.line}: {self.importer} imports "
                f"{self.imported}")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> Iterator[Import]:
    """The dockyard modules `name` imports, each as the module itself where one exists
    (`from dockyard.plan import family` is dockyard.plan.family; `from dockyard.plan
    import Plan` is dockyard.plan)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        seen: set[str] = set()
        for target in targets:
            while target and target not in known:  # `import dockyard.x.y` of a name in x
                target = target.rpartition(".")[0]
            if target.split(".")[0] == "dockyard" and target not in (name, *seen):
                seen.add(target)
                yield Import(name, target, path, node.lineno)


def layer(module: str) -> str:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "dockyard"
    if top in PLACES:
        return PLACES[top]
    if top in MAY_IMPORT:
        return top
    raise AssertionError(f"{module}: its package {top!r} has no place in the layer order; "
                         "add it to PLACES or MAY_IMPORT in tests/unit/test_layers.py")


def graph() -> list[Import]:
    found = modules()
    known = set(found)
    return [imp for name, path in found.items() for imp in imports_of(name, path, known)]


EDGES = graph()


def test_the_import_graph_is_read() -> None:
    # A reader that saw nothing would pass every rule below: pin what it must see.
    seen = {(e.importer, e.imported) for e in EDGES}
    assert ("dockyard.render.dockerfile", "dockyard.plan.family") in seen
    assert ("dockyard.checks.cuda", "dockyard.compat") in seen  # `from dockyard import compat`
    assert ("dockyard.engine.build", "dockyard.engine.bootstrap") in seen
    assert ("dockyard.engine.apply", "dockyard.ops.reconcile") in seen
    local = [e for e in EDGES if e.importer.startswith("dockyard.cli.") and
             e.imported.startswith("dockyard.engine.")]
    assert local, "function-local imports (cli's lazy engine imports) must be read too"


def test_pure_layers_never_import_the_engine_or_the_shell() -> None:
    bad = [str(e) for e in EDGES
           if layer(e.importer) in PURE and layer(e.imported) in ("engine", SHELL)]
    assert not bad, "manifest/plan/checks/render/ops must not reach Docker or the CLI:\n" + \
        "\n".join(bad)


def test_imports_follow_the_layer_order() -> None:
    bad = []
    for e in EDGES:
        have, want = layer(e.importer), layer(e.imported)
        if have != want and want not in MAY_IMPORT[have]:
            allowed = ", ".join(sorted(MAY_IMPORT[have])) or "nothing of dockyard"
            bad.append(f"{e} ({have} may import {allowed})")
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def cycles(edges: list[Import]) -> list[list[Import]]:
    """One cycle (as the imports that close it) per strongly connected set of modules."""
    out: dict[str, dict[str, Import]] = {}
    for e in edges:
        out.setdefault(e.importer, {}).setdefault(e.imported, e)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[Import]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in out.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            members: set[str] = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                members.add(top)
                if top == node:
                    break
            if len(members) > 1:
                found.append(_one_cycle(node, members, out))

    for node in sorted(out):
        if node not in index:
            visit(node)
    return found


def _one_cycle(start: str, members: set[str],
               out: dict[str, dict[str, Import]]) -> list[Import]:
    """A shortest path from `start` back to itself inside its strongly connected set."""
    paths: dict[str, list[Import]] = {start: []}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt, imp in sorted(out.get(node, {}).items()):
            if nxt == start:
                return [*paths[node], imp]
            if nxt in members and nxt not in paths:
                paths[nxt] = [*paths[node], imp]
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start}")  # a strongly connected set has one


def test_no_import_cycles() -> None:
    found = cycles(EDGES)
    assert not found, "import cycles:\n" + "\n\n".join("\n".join(map(str, c)) for c in found)


def test_a_cycle_is_reported_with_its_imports() -> None:
    a, b, c = (Path(SRC / "dockyard" / f"{n}.py") for n in "abc")
    edges = [Import("dockyard.a", "dockyard.b", a, 3), Import("dockyard.b", "dockyard.c", b, 4),
             Import("dockyard.c", "dockyard.a", c, 5), Import("dockyard.c", "dockyard.d", c, 6)]
    (cycle,) = cycles(edges)
    assert [str(e) for e in cycle] == ["src/dockyard/a.py:3: dockyard.a imports dockyard.b",
                                       "src/dockyard/b.py:4: dockyard.b imports dockyard.c",
                                       "src/dockyard/c.py:5: dockyard.c imports dockyard.a"]
    assert cycles(edges[:2]) == []

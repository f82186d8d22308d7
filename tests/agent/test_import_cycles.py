"""The agent's modules import one another without a cycle.

A cycle (a imports b, b imports a, directly or through others) makes a
module's behaviour depend on which one is imported first, and a function-
level import written to dodge it hides the loop from readers. The graph is
read from the source with `ast`, so every `import` counts wherever it stands
(in a function, under TYPE_CHECKING): those are the ones that hide loops.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _modules(root: Path, package: str) -> dict[str, tuple[Path, bool]]:
    """Dotted module name → (source file, is a package's __init__)."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Each module of `package` (a directory under `root`) → the modules of
    the same package it imports; `from p import m` names module p.m when m is
    one, else p."""
    modules = _modules(root, package)
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        here = name if is_package else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names if alias.name in modules)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    if f"{source}.{alias.name}" in modules:
                        targets.add(f"{source}.{alias.name}")
                    elif source in modules:
                        targets.add(source)
        targets.discard(name)
        graph[name] = targets
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The import cycles of `graph`: its strongly connected components of more
    than one module (Tarjan's algorithm, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            successor = next(successors, None)
            if successor is not None:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph.get(successor, ())))))
                elif successor in on_stack:
                    low[node] = min(low[node], index[successor])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_agent_package_has_no_import_cycle() -> None:
    graph = import_graph(REPO_ROOT, "agent")
    assert "agent.cellular.observe" in graph  # the walk found the package
    assert cycles(graph) == []


def test_cellular_shared_types_import_no_backend() -> None:
    # The backends depend on observe.py, never the reverse; only the factory
    # knows both backends.
    graph = import_graph(REPO_ROOT, "agent")
    backends = {"agent.cellular.at", "agent.cellular.mmcli", "agent.cellular.backends"}
    assert not graph["agent.cellular.observe"] & backends
    assert {"agent.cellular.at", "agent.cellular.mmcli"} <= graph["agent.cellular.backends"]


def test_a_cycle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    # The shape the cellular backends once had: the factory in the shared
    # module imported the backends inside a function, and they imported it.
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "shared.py").write_text(
        "def make():\n    from pkg.backend import B\n    return B()\n"
    )
    (package / "backend.py").write_text("from pkg import shared\n\nclass B: ...\n")
    (package / "other.py").write_text("from . import shared\nfrom .backend import B\n")

    graph = import_graph(tmp_path, "pkg")

    assert graph["pkg.other"] == {"pkg.shared", "pkg.backend"}
    assert cycles(graph) == [["pkg.backend", "pkg.shared"]]

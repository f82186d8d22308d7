"""The aggregator's sub-packages depend one way (aggregator/__init__.py):
enrolment on nothing of the others, ingest on enrolment, the central process
on both, the command line on all; the reference server, deployed alone, on
none; and the probe's agent on no part of the aggregator. Read from the
source with `ast`, so an import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.agent.test_import_cycles import REPO_ROOT, cycles, import_graph

GRAPH = import_graph(REPO_ROOT, "aggregator")

# Sub-package (or top-level module) -> what else of the aggregator it may import.
ALLOWED = {
    "aggregator.enrolment": {"aggregator.rich_status"},
    "aggregator.ingest": {"aggregator.enrolment", "aggregator.config", "aggregator.rich_status"},
    "aggregator.reference": set(),
    "aggregator.central": {
        "aggregator.enrolment",
        "aggregator.ingest",
        "aggregator.config",
        "aggregator.monitoring",
        "aggregator.backup",
    },
    # The operator's health and metrics watch ingest and read the registry.
    "aggregator.monitoring": {"aggregator.enrolment", "aggregator.ingest"},
    # Backup copies the store (through the running aggregator), the CA and
    # the registries: it names their files.
    "aggregator.backup": {
        "aggregator.api",
        "aggregator.config",
        "aggregator.enrolment",
        "aggregator.ingest",
    },
    "aggregator.config": set(),
    "aggregator.rich_status": set(),
}
# Entry points run a command line, which sits above everything.
ENTRY_POINTS = {"aggregator.__main__", "aggregator.reference.__main__"}


def _part(module: str) -> str:
    """The sub-package or top-level module a module belongs to."""
    return ".".join(module.split(".")[:2])


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_each_part_imports_only_the_layers_below_it(part: str) -> None:
    wrong = {
        module: sorted(
            target
            for target in targets
            if _part(target) != part and _part(target) not in ALLOWED[part]
        )
        for module, targets in GRAPH.items()
        if _part(module) == part and module not in ENTRY_POINTS
    }
    assert {module: targets for module, targets in wrong.items() if targets} == {}


def test_the_aggregator_has_no_import_cycle() -> None:
    assert cycles(GRAPH) == []


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_agent_imports_nothing_of_the_aggregator() -> None:
    importing = sorted(
        str(path.relative_to(REPO_ROOT))
        for path in (REPO_ROOT / "agent").rglob("*.py")
        if "aggregator" in _imported_roots(path)
    )
    assert importing == []

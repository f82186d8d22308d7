"""What a technician installs on a probe box stays light, and both commands
explain themselves."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata

import pytest

HEAVY = {"duckdb", "pyarrow", "numpy", "pandas", "matplotlib", "scipy", "vietnam-provinces"}


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9_.\-]+", requirement)
    assert match is not None
    return match.group(0).lower().replace("_", "-")


def _closure(extra: str) -> set[str]:
    """Every distribution `pip install wardprobe[extra]` brings, from installed
    metadata (platform-conditional ones included: an over-count is safe here)."""
    seen: set[str] = set()
    todo = [
        req
        for req in metadata.requires("wardprobe") or []
        if "extra ==" not in req or f'extra == "{extra}"' in req
    ]
    while todo:
        requirement = todo.pop()
        name = _name(requirement)
        if name in seen or name == "wardprobe":
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo.extend(r for r in requires if "extra ==" not in r)
    return seen


def test_the_agent_install_pulls_no_duckdb_pyarrow_or_plotting() -> None:
    agent = _closure("agent")
    assert {"grpcio", "iperf3", "dnspython", "protobuf"} <= agent
    assert not agent & HEAVY


def test_the_aggregator_install_has_the_pinned_duckdb() -> None:
    assert "duckdb" in _closure("aggregator")
    assert metadata.version("duckdb") == "1.5.5"
    assert metadata.version("grpcio") == metadata.version("grpcio-tools")


@pytest.mark.parametrize(
    ("module", "commands"),
    [
        ("agent", ["enroll", "run", "once", "upload", "status"]),
        (
            "aggregator",
            [
                "serve",
                "summary",
                "ca",
                "token",
                "probe",
                "reference-server",
                "baseline",
                "indicators",
                "synthetic",
            ],
        ),
    ],
)
def test_help_lists_every_command_with_its_purpose(module: str, commands: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )
    for command in commands:
        # typer lists commands as rows: "│ once     Run every scheduled test once now; ..."
        row = re.search(rf"^[│| ]*{re.escape(command)} +(\w.*?)[│| ]*$", done.stdout, re.MULTILINE)
        assert row is not None, f"{command} is not listed:\n{done.stdout}"
        assert len(row.group(1)) > 15, f"{command} has no help text"

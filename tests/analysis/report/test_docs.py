"""docs/report.md states the floor and the confidence the code uses, and
names the command's options as the CLI has them."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from aggregator.cli import app
from analysis import constants as k
from analysis.sampling import Z

DOC = Path(__file__).resolve().parents[3] / "docs" / "report.md"


def _doc() -> str:
    return re.sub(r"\s+", " ", DOC.read_text("utf-8"))


def test_the_floor_and_the_formulas_are_the_constants() -> None:
    text = _doc()
    assert f"fewer than {k.FLOOR_PROBES} probes or {k.FLOOR_TESTS} valid tests" in text
    assert f"more = max({k.FLOOR_PROBES} − probes, ⌈({k.FLOOR_TESTS} − tests) / r⌉, 0)" in text
    assert f"z = {Z:.2f}" in text and f"the {k.CONFIDENCE * 100:g} % of every interval" in text
    assert f"at least the floor's {k.FLOOR_PROBES} probes" in text


def test_the_options_the_doc_names_exist() -> None:
    help_text = CliRunner().invoke(app, ["report", "--help"], terminal_width=200).output
    for option in ("--year", "--out", "--lang", "--synthetic", "--store"):
        assert option in _doc()
        assert option in help_text

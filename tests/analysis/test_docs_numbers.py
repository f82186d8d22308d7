"""Every number the docs state for a threshold, floor, limit or target is
the one the code uses: each is read from the constants here and looked for
in the doc's own words, so changing a constant without its doc fails."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import analysis.constants
from analysis import constants as k
from wardprobe import validity

ROOT = Path(__file__).resolve().parents[2]


def _doc(name: str) -> str:
    # one line per paragraph's worth of words: a phrase may wrap in the file
    return re.sub(r"\s+", " ", (ROOT / name).read_text("utf-8"))


def _n(value: float) -> str:
    """A number as the docs write it: thousands with a comma (25,000)."""
    return f"{value:,g}"


def _pct(share: float) -> str:
    return f"{share * 100:g} %"


def test_the_thresholds_table_is_indicator_constants() -> None:
    text = (ROOT / "docs/indicators.md").read_text("utf-8")
    part = text[text.index("## Valid results") : text.index("## The 2024 baseline")]
    rows = re.findall(r"^\| ([a-z0-9_]+) \| ([0-9.]+) \| ([^|]+) \|", part, re.MULTILINE)
    documented = [(name, float(value), unit.strip()) for name, value, unit in rows]
    assert documented == [(n, float(v), u) for n, v, u in k.indicator_constants_rows()]


def test_the_constants_docstring_states_the_values() -> None:
    doc = analysis.constants.__doc__ or ""
    stated = {
        name: (float(value), unit)
        for name, value, unit in re.findall(r"^- (\w+) = ([0-9.]+) (\S+):", doc, re.MULTILINE)
    }
    for name, value, unit in k.indicator_constants_rows():
        assert stated.get(name) == (float(value), unit), name
    assert stated["bootstrap_resamples"] == (k.BOOTSTRAP_RESAMPLES, "resamples")
    assert stated["confidence"] == (k.CONFIDENCE, "ratio")
    rule = re.sub(r"\s+", " ", doc)
    assert (
        f"bytes_transferred ≥ {k.MIN_BYTES_TRANSFERRED}, "
        f"{k.MIN_MEASURED_S:g} s ≤ measured_s ≤ {k.MAX_MEASURED_S:g} s" in rule
    )
    assert f"within {_pct(k.RATE_TOLERANCE)} of mbps" in rule
    assert f"at least {k.MIN_LATENCY_REPLIES} replies" in rule


def test_the_validity_docstring_states_the_values() -> None:
    doc = re.sub(r"\s+", " ", validity.__doc__ or "")
    for phrase in (
        f"at least {_n(validity.MIN_BYTES_TRANSFERRED)} bytes moved",
        f"measured over at least {validity.MIN_MEASURED_S:g} s",
        f"measured over at most {validity.MAX_MEASURED_S:g} s",
        f"within {_pct(validity.RATE_TOLERANCE)}",
    ):
        assert phrase in doc, phrase


INDICATORS_MD = [
    f"{_pct(k.CONFIDENCE)} interval",
    f"{_n(k.BOOTSTRAP_RESAMPLES)} resamples",
    f"fewer than {k.FLOOR_PROBES} probes or {k.FLOOR_TESTS} tests",
    f"at least {k.FLOOR_PROBES} probes and {k.FLOOR_TESTS} samples",
    # the validity rule
    f"not above {_n(k.MAX_CROSS_TRAFFIC_BYTES_PER_S)} bytes/s "
    f"({k.MAX_CROSS_TRAFFIC_BYTES_PER_S * 8 / 1e6:g} Mb/s",
    f"at least {_n(k.MIN_BYTES_TRANSFERRED)} bytes",
    f"at least {k.MIN_MEASURED_S:g} s and at most {k.MAX_MEASURED_S:g} s",
    f"within {_pct(k.RATE_TOLERANCE)} of the reported rate",
    f"at least {k.MIN_LATENCY_REPLIES} replies",
    # indicators
    f"download is ≥ {k.GIGABIT_P90_MBPS:g} Mb/s",
    f"interface is below {k.GIGABIT_PORT_MBPS / 1000:g} Gb/s",
    f"mean download ≥ {k.FIXED_200_MBPS:g} Mb/s (interface below {k.FIXED_200_MBPS:g} Mb/s",
    f"working IPv6 in at least {_pct(k.IPV6_PROBE_SHARE)} of them",
    f"capped at {k.CELLULAR_MAX_GAP_S:g} s",
    f"a day's only observation for {k.CELLULAR_MAX_GAP_S:g} s",
    f"at or above {k.QCVN126_DOWNLOAD_FLOOR_MBPS:g} Mb/s",
    f"the downloads at {k.QCVN126_DOWNLOAD_FLOOR_MBPS:g} Mb/s counted",
    f"reaches {k.QCVN34_PLAN_RATIO:g} × the plan's advertised download speed",
    f"less than {k.QCVN34_PLAN_RATIO:g} × Vd",
    f"against {k.QCVN34_PLAN_RATIO:g} × the advertised upload",
    f"reaches {k.GIGABIT_P90_MBPS:g} Mb/s exactly when",
]


@pytest.mark.parametrize("phrase", INDICATORS_MD)
def test_indicators_md_says_what_the_constants_say(phrase: str) -> None:
    assert phrase in _doc("docs/indicators.md")


def _target_text(target: k.Target) -> str:
    if target.unit == "share":
        return _pct(target.value)
    if target.unit.startswith("ratio"):
        return f"{target.value:.1f}"
    return f"{target.value:g} {target.unit}"


@pytest.mark.parametrize("target", k.TARGETS, ids=lambda t: f"{t.indicator}-{t.value:g}")
def test_indicators_md_states_each_target(target: k.Target) -> None:
    """The target column of the indicator's row names the target's value."""
    rows = [
        line
        for line in (ROOT / "docs/indicators.md").read_text("utf-8").splitlines()
        if line.startswith("| ") and target.indicator in line.split(" | ")[0]
    ]
    assert len(rows) == 1, target.indicator
    wanted = _target_text(target)
    if target.access_tech is not None:
        wanted += f" on `{target.access_tech.split('5g_')[0]}"
    assert wanted in rows[0].split(" | ")[-1], (target, rows[0])


SCHEMA_MD = [
    f"at most {k.CELLULAR_MAX_GAP_S:g} s (the day's last: the mean of the day's other gaps; "
    f"a day's only one: {k.CELLULAR_MAX_GAP_S:g} s)",
    f"downloads at or above {k.QCVN126_DOWNLOAD_FLOOR_MBPS:g} Mb/s (QCVN 126's floor)",
    f"interface below {k.QCVN34_PLAN_RATIO:g} × Vd",
    f"mean download ≥ {k.QCVN34_PLAN_RATIO:g} × Vd",
    f"the interface is slower than {k.FIXED_200_MBPS:g} Mb/s",
    f"against {k.targets_for('mobile_download_by_tech', 'lte')[0].value:g} Mb/s (4G) and "
    f"{k.targets_for('mobile_download_by_tech', 'nr5g_sa')[0].value:g} Mb/s (5G)",
]


@pytest.mark.parametrize("phrase", SCHEMA_MD)
def test_schema_md_says_what_the_constants_say(phrase: str) -> None:
    assert phrase in _doc("docs/schema.md")


DESIGN_MD = [
    f"{_pct(k.CONFIDENCE)} bootstrap over probes",
    f"reaches {k.GIGABIT_P90_MBPS:g} Mb/s",
    f"slower than {k.GIGABIT_PORT_MBPS / 1000:g} Gb/s",
]


@pytest.mark.parametrize("phrase", DESIGN_MD)
def test_design_md_says_what_the_constants_say(phrase: str) -> None:
    assert phrase in _doc("docs/design.md")

"""Colour classes: every target of every map is a class break, a value on a
break falls on the side that meets the target, and the two statuses without a
value never share a colour with the scale."""

from __future__ import annotations

import pytest

from analysis import constants as k
from analysis.maps import MAP_INDICATORS, colour_scale
from analysis.maps.classes import BELOW, INSUFFICIENT_COLOUR, MEETS, NO_PROBE_COLOUR
from analysis.maps.layers import TARGET_TECHS

UNITS = {
    "mobile_download_ratio": "ratio",
    "nr_lte_cell_ratio": "ratio (proxy)",
    "idle_latency_ms": "ms",
    "loaded_latency_ms": "ms",
    "qcvn126_latency_mean": "ms",
}


def _unit(indicator: str) -> str:
    if indicator in UNITS:
        return UNITS[indicator]
    return "share" if "share" in indicator else "Mb/s"


@pytest.mark.parametrize("indicator", MAP_INDICATORS)
def test_every_target_is_a_class_break(indicator: str) -> None:
    techs = TARGET_TECHS if indicator == "mobile_download_by_tech" else (None,)
    for tech in techs:
        scale = colour_scale(indicator, _unit(indicator), tech)
        breaks = {b.value for b in scale.breaks}
        for target in k.targets_for(indicator, tech):
            assert target.value in breaks
            if target == scale.targets[0]:  # the classes' meets is the first target's
                on_it = scale.classes[scale.index(target.value)]
                assert on_it.meets is target.met(target.value)
        colours = {c.colour for c in scale.classes}
        assert INSUFFICIENT_COLOUR not in colours
        assert NO_PROBE_COLOUR not in colours


def test_a_value_on_a_break_falls_on_the_side_its_target_says() -> None:
    gigabit = colour_scale("gigabit_capable_share", "share")
    # ">= 50 %": 50 % meets it; "> 80 %": 80 % (4 lines of 5) does not
    assert gigabit.classes[gigabit.index(0.5)].meets is True
    assert gigabit.classes[gigabit.index(0.4999)].meets is False
    assert gigabit.index(0.8) == gigabit.index(0.7)
    assert gigabit.index(0.8) < gigabit.index(0.81)
    assert gigabit.label(gigabit.index(1.0), "vi") == "100 %"
    latency = colour_scale("qcvn126_latency_mean", "ms")
    # "<= 50 ms": 50 ms meets it, 50.1 ms does not
    assert latency.classes[latency.index(50.0)].meets is True
    assert latency.classes[latency.index(50.1)].meets is False


def test_meeting_classes_are_cool_and_missing_ones_warm() -> None:
    lte = colour_scale("mobile_download_by_tech", "Mb/s", "lte")
    for c in lte.classes:
        assert c.colour in (MEETS if c.meets else BELOW)
    assert lte.classes[lte.index(40.0)].meets is True
    assert lte.classes[lte.index(39.9)].meets is False
    assert lte.label(lte.index(45.0), "vi") == "≥ 40 – < 60 Mb/s"
    assert colour_scale("mobile_download_ratio", "ratio").label(1, "vi") == "≥ 1 – < 1,5 lần"

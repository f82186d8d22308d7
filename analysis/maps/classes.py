"""Colour classes of the ward maps: where the breaks are, which side of a
break a value equal to it falls on, and the colours.

Every target of the indicator (analysis/constants.py, for the map's access
technology where the targets differ) is a class break, so a ward's colour
says on which side of each target it lies. A value equal to a break falls
on the side that meets the target: above it for ">=", below it for ">" and
"<=" (80 % of lines does not meet "> 80 %"). Indicators without a target
have fixed, round breaks. Classes below the first target are drawn in warm
colours, classes that meet it in cool ones (ColorBrewer RdYlBu, which
readers with the common colour-vision deficiencies can tell apart); without
a target, one blue ramp, darker for better. "Insufficient data" is grey
(hatched on paper) and "no probe" white, never a colour of the scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from analysis import constants as k
from analysis import labels
from analysis.labels import Lang

Better = Literal["higher", "lower"]

# Round breaks of the indicators without a plan target, and the side that is better.
_PLAIN_BREAKS: Final[dict[str, tuple[tuple[float, ...], Better]]] = {
    "mobile_download_mean": ((10, 20, 40, 70, 100, 150), "higher"),
    "mobile_download_by_tech": ((10, 20, 40, 70, 100, 150), "higher"),
    "fixed_download_mean": ((50, 100, 200, 300, 500, 800), "higher"),
    "nr_seen_share": ((0.25, 0.5, 0.75, 1.0), "higher"),
    "ipv6_capable_share": ((0.25, 0.5, 0.75, 1.0), "higher"),
    "ipv6_preferred_share": ((0.25, 0.5, 0.75, 1.0), "higher"),
    "idle_latency_ms": ((10, 20, 30, 50, 100), "lower"),
    "loaded_latency_ms": ((20, 50, 100, 200, 400), "lower"),
}
# Breaks added beside the targets, so a ward far from a target is told apart
# from one just short of it.
_EXTRA_BREAKS: Final[dict[str, tuple[float, ...]]] = {
    "mobile_download_ratio": (1.0, 1.5, 3.0),
    "gigabit_capable_share": (0.25,),
    "fixed_200_share": (0.25, 0.5, 0.75),
    "nr_time_share": (0.1, 0.25, 0.75),
    # its only target is 100 %: without these every ward would be one "< 100 %"
    "nr_population_share": (0.1, 0.25, 0.5, 0.75),
    "ipv6_office_share": (0.5,),
    "zone_nr_share": (0.5,),
    "zone_gigabit_share": (0.5,),
    "nr_lte_cell_ratio": (0.25, 1.0),
    "qcvn126_download_floor_share": (0.5, 0.75, 0.9),
    "qcvn126_latency_mean": (20.0, 30.0, 75.0, 100.0),
    "qcvn34_download_share": (0.5, 0.75, 0.9),
    "qcvn34_upload_share": (0.5, 0.75, 0.9),
}
# Mb/s targets get breaks at these multiples of the target (40 Mb/s: 10, 20, 30, 40, 60, 80, 120).
_SPEED_MULTIPLES: Final = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)

BELOW: Final = ("#a50026", "#d73027", "#f46d43", "#fdae61", "#fee090")  # far below .. just below
MEETS: Final = ("#abd9e9", "#74add1", "#4575b4", "#313695")  # just meets .. well above
PLAIN: Final = ("#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#084594")
INSUFFICIENT_COLOUR: Final = "#bdbdbd"
NO_PROBE_COLOUR: Final = "#ffffff"
EDGE_COLOUR: Final = "#4d4d4d"


@dataclass(frozen=True)
class Break:
    """A class boundary; `upper_side` says whether a value equal to it falls in
    the class above it."""

    value: float
    upper_side: bool


@dataclass(frozen=True)
class ColourClass:
    """One class of the scale: [low, high] with the break sides, its colour and legend text."""

    low: Break | None
    high: Break | None
    colour: str
    meets: bool | None  # whether values here meet the (first) target; None: no target


@dataclass(frozen=True)
class ColourScale:
    """The classes of one map, lowest values first."""

    unit: str
    breaks: tuple[Break, ...]
    classes: tuple[ColourClass, ...]
    better: Better
    targets: tuple[k.Target, ...]

    def index(self, value: float) -> int:
        """The class of `value`."""
        return sum(1 for b in self.breaks if value > b.value or (value == b.value and b.upper_side))

    def colour(self, value: float) -> str:
        """The colour of `value`."""
        return self.classes[self.index(value)].colour

    def label(self, i: int, lang: Lang) -> str:
        """Legend text of class `i`, e.g. "≥ 40 – < 60 Mb/s", "< 10 Mb/s", "100 %"."""
        c = self.classes[i]
        unit = labels.unit_label(self.unit, lang)

        def shown(b: Break) -> str:
            return labels.round_quantity(b.value, self.unit, lang, bare=True)

        if self.unit == "share" and c.high is None and c.low is not None and c.low.value == 1.0:
            return "100 %"  # a share cannot pass all
        low = high = ""
        if c.low is not None:
            low = f"{'≥' if c.low.upper_side else '>'} {shown(c.low)}"
        if c.high is not None:
            high = f"{'<' if c.high.upper_side else '≤'} {shown(c.high)}"
        return " – ".join(x for x in (low, high) if x) + f" {unit}"


def _target_breaks(targets: tuple[k.Target, ...]) -> list[Break]:
    return [Break(t.value, t.comparator == ">=") for t in targets]


def colour_scale(indicator: str, unit: str, access_tech: str | None = None) -> ColourScale:
    """The colour scale of an indicator's map (for one access technology where
    its targets differ)."""
    targets = k.targets_for(indicator, access_tech)
    better: Better = "lower" if any(t.comparator == "<=" for t in targets) else "higher"
    breaks: dict[float, Break] = {}
    if targets:
        for b in _target_breaks(targets):
            breaks[b.value] = b
        extra: tuple[float, ...] = _EXTRA_BREAKS.get(indicator, ())
        if unit == "Mb/s" and not extra:
            extra = tuple(targets[0].value * m for m in _SPEED_MULTIPLES)
        for value in extra:
            # a side that keeps the scale's ordering: values equal to a
            # non-target break go up for "higher", down for "lower"
            breaks.setdefault(value, Break(value, better == "higher"))
    else:
        plain, better = _PLAIN_BREAKS.get(indicator, ((0.25, 0.5, 0.75, 1.0), "higher"))
        for value in plain:
            breaks[value] = Break(value, better == "higher")
    ordered = tuple(sorted(breaks.values(), key=lambda b: b.value))
    bounds: list[Break | None] = [None, *ordered, None]
    n = len(ordered) + 1
    classes = []
    if targets:
        # the class boundary of the first (nearest-term) target
        first = targets[0]
        split = next(i for i, b in enumerate(ordered) if b.value == first.value) + 1
        below = split if better == "higher" else n - split
        above = n - below
        warm = list(BELOW[-below:]) if below <= len(BELOW) else _stretch(BELOW, below)
        cool = list(MEETS[:above]) if above <= len(MEETS) else _stretch(MEETS, above)
        ordered_colours = warm + cool if better == "higher" else cool[::-1] + warm[::-1]
        for i in range(n):
            meets = (i >= split) if better == "higher" else (i < split)
            classes.append(ColourClass(bounds[i], bounds[i + 1], ordered_colours[i], meets))
    else:
        ramp = PLAIN[-n:] if n <= len(PLAIN) else _stretch(PLAIN, n)
        colours = list(ramp) if better == "higher" else list(ramp)[::-1]
        for i in range(n):
            classes.append(ColourClass(bounds[i], bounds[i + 1], colours[i], None))
    return ColourScale(unit, ordered, tuple(classes), better, targets)


def _stretch(ramp: tuple[str, ...], n: int) -> list[str]:
    """n colours from a ramp, the ends kept (for scales with more classes than the ramp)."""
    return [ramp[round(i * (len(ramp) - 1) / max(n - 1, 1))] for i in range(n)]

"""The sentences every map format prints: title, period and source, the
city's figure, each target with how the city and the wards stand, and a
ward's details (the HTML map's hover, the PNG's key)."""

from __future__ import annotations

from datetime import timedelta
from html import escape

from analysis import labels
from analysis.indicators import TargetResult
from analysis.labels import Lang
from analysis.maps.layers import NO_PROBE, WardLayer, WardValue


def title(layer: WardLayer, lang: Lang) -> str:
    """The indicator (and its group) in words; synthetic data says so."""
    text = labels.text(labels.INDICATORS, layer.indicator, lang)
    if layer.group:
        text += f" – {labels.group_label(layer.group, lang)}"
    if layer.synthetic:
        text += " [" + ("DỮ LIỆU GIẢ LẬP" if lang == "vi" else "SYNTHETIC DATA") + "]"
    return text


def period_text(layer: WardLayer, lang: Lang) -> str:
    """The period (first and last day, Cần Thơ time) and the data source."""
    first = layer.period.start.date()
    last = (layer.period.end - timedelta(days=1)).date()
    days = (
        f"{first:%d/%m/%Y} – {last:%d/%m/%Y}"
        if lang == "vi"
        else f"{first:%Y-%m-%d} – {last:%Y-%m-%d}"
    )
    source = labels.word("synthetic data" if layer.synthetic else "probe results", lang)
    return (
        f"{labels.word('period', lang)}: {layer.period.label} ({days}) · "
        f"{labels.word('data source', lang)}: {source}"
    )


def interval_text(low: float | None, high: float | None, unit: str, lang: Lang) -> str:
    """ "40,1 – 42,3 Mb/s", or "–" without an interval."""
    if low is None or high is None:
        return "–"
    return f"{labels.quantity(low, unit, lang, bare=True)} – {labels.quantity(high, unit, lang)}"


def counts_text(probes: int, tests: int, lang: Lang) -> str:
    """ "5 đầu đo, 107 phép đo"."""
    return (
        f"{labels.count(probes, lang)} {labels.word('probes', lang)}, "
        f"{labels.count(tests, lang)} {labels.word('tests', lang)}"
    )


def city_line(layer: WardLayer, lang: Lang) -> str:
    """The city's figure with its interval and counts."""
    head = labels.word("city", lang)
    f = layer.city
    if f is None:
        return f"{head}: {labels.text(labels.STATUSES, NO_PROBE, lang)}"
    if f.value is None:
        return (
            f"{head}: {labels.text(labels.STATUSES, f.status, lang)} "
            f"({counts_text(f.probes, f.tests, lang)})"
        )
    interval = interval_text(f.ci_low, f.ci_high, f.unit, lang)
    return (
        f"{head}: {labels.quantity(f.value, f.unit, lang)} "
        f"({labels.word('interval', lang).lower()}: {interval}), "
        f"{counts_text(f.probes, f.tests, lang)}"
    )


def target_name(t: TargetResult, unit: str, lang: Lang) -> str:
    """ "≥ 40 Mb/s (Kế hoạch 235/KH-UBND ..., thời hạn 2030)"."""
    source = labels.SOURCES[t.source][lang] if t.source in labels.SOURCES else t.source
    due = labels.DUE[t.due][lang] if t.due in labels.DUE else t.due
    return (
        f"{labels.COMPARATORS[t.comparator]} {labels.round_quantity(t.value, unit, lang)} "
        f"({source}, {labels.word('due', lang)} {due})"
    )


def verdict(met: bool | None, lang: Lang) -> str:
    """Met, not met, or not judged (insufficient data)."""
    return labels.word("not judged" if met is None else "met" if met else "not met", lang)


def target_lines(layer: WardLayer, lang: Lang) -> list[str]:
    """Each target: the city's verdict and how many wards meet it."""
    city_targets = layer.city.targets if layer.city is not None else ()
    first_ward = layer.wards[0].targets if layer.wards else ()
    targets = city_targets or first_ward
    if not targets:
        return [labels.word("no target", lang).capitalize()]
    lines = []
    for i, t in enumerate(targets):
        met = sum(1 for w in layer.wards if len(w.targets) > i and w.targets[i].met is True)
        not_met = sum(1 for w in layer.wards if len(w.targets) > i and w.targets[i].met is False)
        judged_none = len(layer.wards) - met - not_met
        city = verdict(t.met, lang) if city_targets else verdict(None, lang)
        wards = (
            f"{met} phường/xã đạt, {not_met} chưa đạt, {judged_none} chưa đánh giá"
            if lang == "vi"
            else f"{met} wards meet it, {not_met} do not, {judged_none} not judged"
        )
        lines.append(
            f"{labels.word('target', lang)} {target_name(t, layer.unit, lang)}: "
            f"{labels.word('city', lang).lower()} {city}; {wards}"
        )
    return lines


def ward_html(layer: WardLayer, ward: WardValue, lang: Lang) -> str:
    """Every field of one ward, as HTML lines (the interactive map's hover)."""
    w = labels.word
    value = (
        labels.quantity(ward.value, layer.unit, lang)
        if ward.value is not None
        else labels.text(labels.STATUSES, ward.status, lang)
    )
    lines = [
        f"<b>{escape(ward.ward_name)}</b> ({w('code', lang).lower()} {ward.ward_code}, "
        f"{'số' if lang == 'vi' else 'no.'} {ward.number})",
        f"{w('value', lang)}: <b>{escape(value)}</b>",
        f"{w('interval', lang)}: "
        + escape(interval_text(ward.ci_low, ward.ci_high, layer.unit, lang)),
        f"{escape(counts_text(ward.probes, ward.tests, lang))}; "
        f"{escape(w('probe-limited', lang))}: {ward.probe_limited}",
        f"{w('status', lang)}: {escape(labels.text(labels.STATUSES, ward.status, lang))}",
    ]
    for t in ward.targets:
        lines.append(
            f"{w('target', lang)} {escape(target_name(t, layer.unit, lang))}: "
            f"<b>{escape(verdict(t.met, lang))}</b>"
        )
    return "<br>".join(lines)

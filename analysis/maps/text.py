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


_OOKLA = "Speedtest by Ookla Global Fixed and Mobile Network Performance Maps, CC BY-NC-SA 4.0"
# What each kind of 2024 baseline is, in words (analysis/constants.py's BASELINE_KINDS).
_BASELINE_WORDS: dict[str, dict[Lang, str]] = {
    "probes": {
        "vi": "số đo năm 2024 của chính các đầu đo (cùng phương pháp)",
        "en": "the probes' own 2024 measurements (like with like)",
    },
    "ookla_tiles": {
        "vi": f"ô dữ liệu mở năm 2024 của Ookla ({_OOKLA}): phép thử người dùng tự chạy "
        "trên điện thoại, không cùng phương pháp với đầu đo",
        "en": f"Ookla's open 2024 tiles ({_OOKLA}): tests people run on their phones, "
        "not like with like with the probes",
    },
    "imported": {
        "vi": "số liệu năm 2024 nhập từ nguồn ngoài (cùng đại lượng: trung bình hoặc trung vị)",
        "en": "an imported 2024 figure (on its own statistic: mean or median)",
    },
}


def baseline_text(layer: WardLayer, lang: Lang) -> str:
    """For the doubling ratio's map: which 2024 baseline the city's value is
    over, how many wards use each, and Ookla's tiles' own ratio beside it
    (like with like); "" for every other map."""
    if layer.indicator != "mobile_download_ratio":
        return ""
    vi = lang == "vi"
    comparisons = layer.city.baselines if layer.city is not None else ()
    used = next((c for c in comparisons if c.used), None)
    city = _BASELINE_WORDS[used.baseline][lang] if used is not None else "chưa có" if vi else "none"
    count = {kind: sum(1 for w in layer.wards if w.baseline == kind) for kind in _BASELINE_WORDS}
    none = sum(1 for w in layer.wards if w.baseline is None)
    parts = [
        f"Số liệu gốc của thành phố: {city}." if vi else f"The city's 2024 baseline: {city}.",
        (
            f"Phường, xã: {count['probes']} theo đầu đo, {count['ookla_tiles']} theo ô Ookla, "
            f"{count['imported']} theo số liệu nhập, {none} chưa có."
            if vi
            else f"Wards: {count['probes']} over the probes' 2024, {count['ookla_tiles']} over "
            f"Ookla's tiles, {count['imported']} over imported figures, {none} without one."
        ),
    ]
    if used is None and any(w.baseline == "ookla_tiles" for w in layer.wards):
        parts.append(f"Ookla: {_OOKLA}.")
    tiles = next((c for c in comparisons if c.numerator == "ookla_tiles"), None)
    if tiles is not None and tiles.value is not None:
        ratio = labels.quantity(tiles.value, "ratio", lang)
        parts.append(
            f"Ô Ookla {', '.join(tiles.current_quarters)} so với năm 2024 (cùng phương pháp): "
            f"{ratio}."
            if vi
            else f"Ookla's tiles {', '.join(tiles.current_quarters)} over their 2024 "
            f"(like with like): {ratio}."
        )
    return " ".join(parts)


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
    if layer.indicator == "nr_population_share":
        pop = ward.population_people
        people = "–" if pop is None else labels.count(pop, lang)
        covered = (
            "–" if ward.covered_people is None else labels.count(round(ward.covered_people), lang)
        )
        lines.append(
            escape(
                f"Dân số: {people}; số người có 5G: {covered}"
                if lang == "vi"
                else f"People: {people}; with 5G: {covered}"
            )
        )
    if layer.indicator == "mobile_download_ratio" and ward.status != NO_PROBE:
        base = (
            _BASELINE_WORDS[ward.baseline][lang]
            if ward.baseline is not None
            else ("chưa có" if lang == "vi" else "none")
        )
        lines.append(("Số liệu gốc: " if lang == "vi" else "Baseline: ") + escape(base))
        if ward.ookla_tiles_ratio is not None:
            ratio = labels.quantity(ward.ookla_tiles_ratio, "ratio", lang)
            lines.append(
                escape(
                    f"Ô Ookla so với năm 2024 (cùng phương pháp): {ratio}"
                    if lang == "vi"
                    else f"Ookla's tiles over their 2024 (like with like): {ratio}"
                )
            )
    return "<br>".join(lines)

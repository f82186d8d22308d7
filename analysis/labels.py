"""Every word the maps and the report print, in Vietnamese and English.

One plain table per kind of word, keyed by the name the code uses (an
indicator's name, a unit, a status, a target's source, a legend word), each
entry {"vi": ..., "en": ...}. Vietnamese is the default language of every
output (the Department of Science and Technology reads it); English is on
request. `text` looks a word up and refuses a key or language that has no
entry, so a missing translation fails a test instead of printing a key.
Numbers are written by `number`: Vietnamese uses a decimal comma and a dot
between thousands ("7.716 phép đo", "41,6 Mb/s").
"""

from __future__ import annotations

from typing import Final, Literal

Lang = Literal["vi", "en"]
LANGS: Final[tuple[Lang, ...]] = ("vi", "en")

Entry = dict[Lang, str]

# Indicator titles, by the names compute_indicators gives its figures.
INDICATORS: Final[dict[str, Entry]] = {
    "ipv6_service_ready_share": {
        "vi": "Tỷ lệ dịch vụ của thành phố sẵn sàng IPv6 hoàn toàn",
        "en": "Share of the city's services fully IPv6-ready",
    },
    "mobile_download_mean": {
        "vi": "Tốc độ tải xuống di động trung bình",
        "en": "Mean mobile download speed",
    },
    "mobile_download_ratio": {
        "vi": "Tốc độ tải xuống di động so với năm 2024",
        "en": "Mobile download speed relative to 2024",
    },
    "mobile_download_by_tech": {
        "vi": "Tốc độ tải xuống di động theo công nghệ truy nhập",
        "en": "Mobile download speed by access technology",
    },
    "gigabit_capable_share": {
        "vi": "Tỷ lệ đường truyền cố định đạt tốc độ gigabit",
        "en": "Share of fixed lines that are gigabit-capable",
    },
    "fixed_200_share": {
        "vi": "Tỷ lệ đường truyền cố định đạt từ 200 Mb/s",
        "en": "Share of fixed lines at 200 Mb/s or more",
    },
    "fixed_download_mean": {
        "vi": "Tốc độ tải xuống cố định trung bình",
        "en": "Mean fixed-line download speed",
    },
    "nr_time_share": {
        "vi": "Tỷ lệ thời gian sử dụng mạng 5G",
        "en": "Share of time on 5G",
    },
    "nr_seen_share": {
        "vi": "Tỷ lệ đầu đo bắt được sóng 5G",
        "en": "Share of probes that saw 5G",
    },
    "nr_population_share": {
        "vi": "Tỷ lệ dân số được phủ sóng 5G",
        "en": "Share of the population with 5G",
    },
    "ipv6_capable_share": {
        "vi": "Tỷ lệ đầu đo có IPv6 hoạt động",
        "en": "Share of probes with working IPv6",
    },
    "ipv6_preferred_share": {
        "vi": "Tỷ lệ đầu đo ưu tiên IPv6",
        "en": "Share of probes that prefer IPv6",
    },
    "ipv6_office_share": {
        "vi": "Tỷ lệ cơ quan nhà nước có mạng nội bộ hoạt động với IPv6",
        "en": "Share of government offices whose LAN has working IPv6",
    },
    "idle_latency_ms": {
        "vi": "Độ trễ khi không tải",
        "en": "Idle latency",
    },
    "loaded_latency_ms": {
        "vi": "Độ trễ khi đang tải dữ liệu",
        "en": "Latency under load",
    },
    "zone_nr_share": {
        "vi": "Tỷ lệ điểm đo tại khu công nghệ cao, khu công nghiệp có 5G",
        "en": "Share of high-tech and industrial zone sites with 5G",
    },
    "zone_gigabit_share": {
        "vi": "Tỷ lệ điểm đo tại khu công nghệ cao, khu công nghiệp có đường truyền gigabit",
        "en": "Share of high-tech and industrial zone sites with a gigabit line",
    },
    "nr_lte_cell_ratio": {
        "vi": "Số ô 5G so với số ô 4G quan sát được (ước lượng gián tiếp)",
        "en": "Observed 5G cells per 4G cell (proxy)",
    },
    "qcvn126_download_mean": {
        "vi": "QCVN 126:2021 – tốc độ tải xuống 5G trung bình",
        "en": "QCVN 126:2021 – mean 5G download speed",
    },
    "qcvn126_upload_mean": {
        "vi": "QCVN 126:2021 – tốc độ tải lên 5G trung bình",
        "en": "QCVN 126:2021 – mean 5G upload speed",
    },
    "qcvn126_download_floor_share": {
        "vi": "QCVN 126:2021 – tỷ lệ mẫu tải xuống 5G đạt từ 30 Mb/s",
        "en": "QCVN 126:2021 – share of 5G download samples at 30 Mb/s or more",
    },
    "qcvn126_latency_mean": {
        "vi": "QCVN 126:2021 – độ trễ 5G trung bình",
        "en": "QCVN 126:2021 – mean 5G latency",
    },
    "qcvn34_download_share": {
        "vi": "QCVN 34:2022 – tỷ lệ đường truyền cố định đạt 80 % tốc độ tải xuống của gói cước",
        "en": "QCVN 34:2022 – share of fixed lines at 80 % of their plan's download speed",
    },
    "qcvn34_upload_share": {
        "vi": "QCVN 34:2022 – tỷ lệ đường truyền cố định đạt 80 % tốc độ tải lên của gói cước",
        "en": "QCVN 34:2022 – share of fixed lines at 80 % of their plan's upload speed",
    },
}

# Units as a Figure states them.
UNITS: Final[dict[str, Entry]] = {
    "Mb/s": {"vi": "Mb/s", "en": "Mb/s"},
    "ms": {"vi": "ms", "en": "ms"},
    "share": {"vi": "%", "en": "%"},
    "ratio": {"vi": "lần", "en": "×"},
    "ratio (proxy)": {"vi": "lần (ước lượng)", "en": "× (proxy)"},
}

# A ward's status on a map: the figure's own ("ok", "insufficient data"), or
# "no probe" where no probe contributed to the indicator in the ward.
STATUSES: Final[dict[str, Entry]] = {
    "ok": {"vi": "đủ dữ liệu", "en": "ok"},
    "insufficient data": {"vi": "chưa đủ dữ liệu", "en": "insufficient data"},
    "no probe": {"vi": "không có đầu đo", "en": "no probe"},
}

# Where each target comes from (analysis/constants.py, Target.source), in full.
SOURCES: Final[dict[str, Entry]] = {
    "235/KH-UBND (all the city's IT application systems); 87/KH-UBND (departments' systems)": {
        "vi": "Kế hoạch 235/KH-UBND (toàn bộ hệ thống ứng dụng CNTT của thành phố chuyển sang "
        "IPv6) và 87/KH-UBND (hệ thống thông tin của các sở, ban, ngành)",
        "en": "Plans 235/KH-UBND (all the city's IT application systems move to IPv6) and "
        "87/KH-UBND (the departments' information systems)",
    },
    "87/KH-UBND (offices' LANs); 235/KH-UBND (the city's systems)": {
        # short enough for the printed map's target line
        "vi": "Kế hoạch 87/KH-UBND (mạng nội bộ cơ quan) và 235/KH-UBND (hệ thống CNTT)",
        "en": "Plans 87/KH-UBND (offices' LANs) and 235/KH-UBND (the city's IT systems)",
    },
    "87/KH-UBND (2025)": {
        "vi": "Kế hoạch 87/KH-UBND (2025) của UBND thành phố Cần Thơ",
        "en": "Cần Thơ People's Committee plan 87/KH-UBND (2025)",
    },
    "235/KH-UBND": {
        "vi": "Kế hoạch 235/KH-UBND của UBND thành phố Cần Thơ",
        "en": "Cần Thơ People's Committee plan 235/KH-UBND",
    },
    "87/KH-UBND, 235/KH-UBND": {
        "vi": "Kế hoạch 87/KH-UBND và 235/KH-UBND",
        "en": "Plans 87/KH-UBND and 235/KH-UBND",
    },
    "2026 digital-transformation plan": {
        "vi": "Kế hoạch chuyển đổi số năm 2026 của thành phố",
        "en": "The city's 2026 digital-transformation plan",
    },
    "QCVN 126:2021": {
        "vi": "Quy chuẩn QCVN 126:2021/BTTTT (5G)",
        "en": "Technical regulation QCVN 126:2021/BTTTT (5G)",
    },
    "QCVN 34:2022": {
        "vi": "Quy chuẩn QCVN 34:2022/BTTTT (Internet cố định)",
        "en": "Technical regulation QCVN 34:2022/BTTTT (fixed broadband)",
    },
}

# The same sources, short enough for a legend line.
SHORT_SOURCES: Final[dict[str, Entry]] = {
    "235/KH-UBND (all the city's IT application systems); 87/KH-UBND (departments' systems)": {
        "vi": "KH 235 và 87/KH-UBND",
        "en": "plans 235 and 87/KH-UBND",
    },
    "87/KH-UBND (offices' LANs); 235/KH-UBND (the city's systems)": {
        "vi": "KH 87 và 235/KH-UBND",
        "en": "plans 87 and 235/KH-UBND",
    },
    "87/KH-UBND (2025)": {"vi": "KH 87/KH-UBND", "en": "plan 87/KH-UBND"},
    "235/KH-UBND": {"vi": "KH 235/KH-UBND", "en": "plan 235/KH-UBND"},
    "87/KH-UBND, 235/KH-UBND": {"vi": "KH 87 và 235/KH-UBND", "en": "plans 87 and 235/KH-UBND"},
    "2026 digital-transformation plan": {
        "vi": "KH chuyển đổi số 2026",
        "en": "2026 digital plan",
    },
    "QCVN 126:2021": {"vi": "QCVN 126:2021", "en": "QCVN 126:2021"},
    "QCVN 34:2022": {"vi": "QCVN 34:2022", "en": "QCVN 34:2022"},
}

# When a target is due (Target.due).
DUE: Final[dict[str, Entry]] = {
    "in force": {"vi": "đang có hiệu lực", "en": "in force"},
}

# The values a group can name (after "access_tech=", "operator=", ...).
GROUP_VALUES: Final[dict[str, Entry]] = {
    "lte": {"vi": "4G (LTE)", "en": "4G (LTE)"},
    "nr5g_nsa": {"vi": "5G NSA", "en": "5G NSA"},
    "nr5g_sa": {"vi": "5G SA", "en": "5G SA"},
    "umts": {"vi": "3G (UMTS)", "en": "3G (UMTS)"},
    "gsm": {"vi": "2G (GSM)", "en": "2G (GSM)"},
    "fixed": {"vi": "đường truyền cố định", "en": "fixed lines"},
    "mobile": {"vi": "di động", "en": "mobile"},
    "all": {"vi": "mọi công nghệ", "en": "all technologies"},
}

# What a grouping is called (the part before "=").
GROUP_KEYS: Final[dict[str, Entry]] = {
    "access_tech": {"vi": "công nghệ", "en": "technology"},
    "operator": {"vi": "nhà mạng", "en": "operator"},
    "site_class": {"vi": "loại điểm đo", "en": "site class"},
    "department": {"vi": "đơn vị", "en": "department"},
}

# Legend, title and table words.
WORDS: Final[dict[str, Entry]] = {
    "period": {"vi": "Kỳ", "en": "Period"},
    "data source": {"vi": "Nguồn số liệu", "en": "Data source"},
    "probe results": {
        "vi": "kết quả đo của các đầu đo wardprobe",
        "en": "results of the wardprobe probes",
    },
    "synthetic data": {
        "vi": "dữ liệu giả lập (thành phố mô phỏng, không phải số đo thật)",
        "en": "synthetic data (a simulated city, not measurements)",
    },
    "ward": {"vi": "Phường/xã", "en": "Ward/commune"},
    "code": {"vi": "Mã", "en": "Code"},
    "city": {"vi": "Toàn thành phố", "en": "Whole city"},
    "value": {"vi": "Giá trị", "en": "Value"},
    "interval": {"vi": "Khoảng tin cậy 95 %", "en": "95 % interval"},
    "probes": {"vi": "đầu đo", "en": "probes"},
    "tests": {"vi": "phép đo", "en": "tests"},
    "probe-limited": {
        "vi": "đầu đo bị giới hạn (không tính)",
        "en": "probe-limited (not counted)",
    },
    "status": {"vi": "Tình trạng", "en": "Status"},
    "target": {"vi": "Mục tiêu", "en": "Target"},
    "targets": {"vi": "Mục tiêu", "en": "Targets"},
    "met": {"vi": "đạt", "en": "met"},
    "not met": {"vi": "chưa đạt", "en": "not met"},
    "not judged": {"vi": "chưa đánh giá", "en": "not judged"},
    "no target": {
        "vi": "không có mục tiêu trong kế hoạch của thành phố",
        "en": "no target in the city's plans",
    },
    "due": {"vi": "thời hạn", "en": "due"},
    "legend": {"vi": "Chú giải", "en": "Legend"},
    "key": {"vi": "Danh sách phường/xã", "en": "Key to the wards"},
    "north": {"vi": "B", "en": "N"},
    "city outline": {"vi": "Ranh giới thành phố", "en": "City boundary"},
    "ward boundary": {"vi": "Ranh giới phường/xã", "en": "Ward boundary"},
    "central wards": {"vi": "Khu vực trung tâm", "en": "City centre"},
    "indicator": {"vi": "Chỉ tiêu", "en": "Indicator"},
    "group": {"vi": "Nhóm", "en": "Group"},
    "made": {"vi": "Lập ngày", "en": "Made on"},
    "boundaries": {
        "vi": "Ranh giới: can_tho_wards.geojson (đã sửa, xem docs/maps.md); "
        "mã đơn vị theo danh mục hành chính 2025",
        "en": "Boundaries: can_tho_wards.geojson (repaired, see docs/maps.md); "
        "unit codes from the 2025 administrative register",
    },
    "floor": {
        "vi": "Dưới 3 đầu đo hoặc 30 phép đo hợp lệ: chưa đủ dữ liệu",
        "en": "Below 3 probes or 30 valid tests: insufficient data",
    },
    "switch": {"vi": "Chọn chỉ tiêu", "en": "Choose an indicator"},
    "up to": {"vi": "dưới", "en": "below"},
    "from": {"vi": "từ", "en": "from"},
    "above": {"vi": "trên", "en": "above"},
}

# Comparators as a reader writes them.
COMPARATORS: Final[dict[str, str]] = {">=": "≥", ">": ">", "<=": "≤"}


def text(table: dict[str, Entry], key: str, lang: Lang) -> str:
    """`key`'s words in `lang` from one of the tables above (KeyError when missing)."""
    return table[key][lang]


def word(key: str, lang: Lang) -> str:
    """A legend, title or table word (WORDS)."""
    return WORDS[key][lang]


def group_label(group: str | None, lang: Lang) -> str:
    """A figure's group in words: "access_tech=lte;operator=VNPT" -> "4G (LTE), nhà mạng VNPT".
    Values without an entry (operator and ISP names) are printed as they are."""
    if not group:
        return ""
    parts = []
    for part in group.split(";"):
        key, _, value = part.partition("=")
        shown = GROUP_VALUES[value][lang] if value in GROUP_VALUES else value
        parts.append(shown if key == "access_tech" else f"{GROUP_KEYS[key][lang]} {shown}")
    return ", ".join(parts)


def number(value: float, lang: Lang, decimals: int = 1) -> str:
    """A number as the language writes it: 7716.5 -> "7.716,5" (vi), "7,716.5" (en)."""
    written = f"{value:,.{decimals}f}"
    if lang == "vi":
        return written.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return written


def quantity(value: float, unit: str, lang: Lang, *, bare: bool = False) -> str:
    """A figure's value with its unit: a share as a percentage ("41,5 %"), a
    ratio to two decimals ("2,05 lần"), Mb/s and ms to one decimal.
    `bare`: the number alone, as it would be written with the unit."""
    if unit == "share":
        shown, suffix = number(100 * value, lang), "%"
    elif unit.startswith("ratio"):
        shown, suffix = number(value, lang, 2), UNITS[unit][lang]
    else:
        shown, suffix = number(value, lang), UNITS[unit][lang]
    return shown if bare else f"{shown} {suffix}"


def round_quantity(value: float, unit: str, lang: Lang, *, bare: bool = False) -> str:
    """A round figure (a class break, a target) without needless decimals: "25 %", "1,5 lần"."""
    scaled = 100 * value if unit == "share" else value
    decimals = next((d for d in range(4) if abs(scaled - round(scaled, d)) < 1e-9), 3)
    shown = number(scaled, lang, decimals)
    suffix = "%" if unit == "share" else UNITS[unit][lang]
    return shown if bare else f"{shown} {suffix}"


def unit_label(unit: str, lang: Lang) -> str:
    """What a figure's unit is written as ("%" for a share)."""
    return UNITS[unit][lang]


def count(value: int, lang: Lang) -> str:
    """A count with the language's thousands separator."""
    return number(value, lang, 0)


# The yearly report's words (analysis/report/). "{year}" and the like are
# filled in by the report.
REPORT: Final[dict[str, Entry]] = {
    "title": {
        "vi": "Báo cáo đo kiểm chất lượng Internet thành phố Cần Thơ năm {year}",
        "en": "Internet quality measurement report, Cần Thơ city, {year}",
    },
    "prepared for": {
        "vi": "Phục vụ Sở Khoa học và Công nghệ thành phố Cần Thơ",
        "en": "Prepared for the Department of Science and Technology of Cần Thơ city",
    },
    "period": {"vi": "Kỳ báo cáo", "en": "Period"},
    "period text": {
        "vi": "từ {start} đến hết {last} (giờ Việt Nam, UTC+7)",
        "en": "{start} to {last} inclusive (Việt Nam time, UTC+7)",
    },
    "data source": {"vi": "Nguồn số liệu", "en": "Data source"},
    "probe results": {
        "vi": "kết quả đo của các đầu đo wardprobe đặt tại các phường, xã",
        "en": "results of the wardprobe probes installed in the wards and communes",
    },
    "synthetic source": {
        "vi": "bộ dữ liệu giả lập của hệ thống wardprobe (thành phố mô phỏng)",
        "en": "the wardprobe system's synthetic data set (a simulated city)",
    },
    "synthetic banner": {
        "vi": "DỮ LIỆU GIẢ LẬP – các số liệu trong báo cáo này không phải là kết quả đo thật, "
        "chỉ dùng để thử nghiệm hệ thống.",
        "en": "SYNTHETIC DATA – the figures in this report are not measurements; "
        "they serve only to try the system.",
    },
    "synthetic short": {"vi": "DỮ LIỆU GIẢ LẬP", "en": "SYNTHETIC DATA"},
    "latest result": {"vi": "Kết quả đo mới nhất trong kỳ", "en": "Latest result in the period"},
    "no results": {"vi": "không có kết quả đo trong kỳ", "en": "no results in the period"},
    "generated": {"vi": "Ngày lập báo cáo", "en": "Generated on"},
    "registry": {
        "vi": "Danh mục đơn vị hành chính: {n} phường, xã (dữ liệu vietnam-provinces {version})",
        "en": "Administrative units: {n} wards and communes (vietnam-provinces data {version})",
    },
    "contents": {"vi": "Mục lục", "en": "Contents"},
    "page": {"vi": "Trang", "en": "Page"},
    "s1": {"vi": "1. Tóm tắt kết quả so với mục tiêu", "en": "1. Summary against the targets"},
    "s1 intro": {
        "vi": "Mỗi mục tiêu trong các kế hoạch của thành phố, giá trị đo được trên toàn "
        "thành phố với khoảng tin cậy 95 %, số đầu đo và số phép đo hợp lệ, và đánh giá.",
        "en": "Each target of the city's plans, the figure measured for the whole city "
        "with its 95 % interval, the probes and valid tests behind it, and the verdict.",
    },
    "s2": {"vi": "2. Kết quả chi tiết theo từng chỉ tiêu", "en": "2. Each indicator in detail"},
    "s3": {
        "vi": "3. Đối chiếu quy chuẩn kỹ thuật quốc gia",
        "en": "3. National technical regulations",
    },
    "s3 intro": {
        "vi": "Các quy chuẩn được tính theo quy tắc riêng của chúng: trung bình trên các mẫu "
        "đo (mỗi phép đo hợp lệ là một mẫu), không cân bằng theo đầu đo; chúng không thay "
        "thế các chỉ tiêu của kế hoạch ở trên.",
        "en": "The regulations are computed by their own rules: averages over measurement "
        "samples (each valid test is a sample), not probe-balanced; they do not replace "
        "the plan's indicators above.",
    },
    "ipv6 ref": {
        "vi": "Chuyển đổi IPv6: Cần Thơ bên cạnh số liệu đã công bố",
        "en": "The IPv6 transition: Cần Thơ beside the published figures",
    },
    "ipv6 ref intro": {
        "vi": "Mục tiêu (87/KH-UBND): Cần Thơ thuộc nhóm các tỉnh, thành dẫn đầu về chuyển "
        "đổi IPv6, ở đây là hạng {top} trở lên trong {provinces} tỉnh, thành trên mọi chỉ số "
        "có số liệu. Mỗi nguồn đo một thứ khác nhau, bằng cách riêng của nó (xem dưới bảng).",
        "en": "Target (87/KH-UBND): Cần Thơ among the leading provinces in the IPv6 "
        "transition, read here as rank {top} or better of the {provinces} provinces on "
        "every metric with figures. Each source measures something else, its own way "
        "(see below the tables).",
    },
    "isp": {"vi": "Nhà cung cấp (cố định)", "en": "ISP (fixed line)"},
    "isp not recorded": {"vi": "chưa ghi nhà cung cấp", "en": "ISP not recorded"},
    "probes ipv6": {"vi": "Đầu đo có IPv6 hoạt động", "en": "Probes with working IPv6"},
    "apnic network": {"vi": "Mạng (AS) theo APNIC", "en": "APNIC network (AS)"},
    "apnic share": {"vi": "Tỷ lệ IPv6 theo APNIC", "en": "APNIC IPv6-capable rate"},
    "apnic vietnam": {
        "vi": "APNIC, cả nước Việt Nam: {share} (ngày {day}).",
        "en": "APNIC, Viet Nam as a whole: {share} ({day}).",
    },
    "apnic none": {
        "vi": "Chưa nhập số liệu APNIC cho kỳ này.",
        "en": "No APNIC figures imported for this period.",
    },
    "metric": {"vi": "Chỉ số", "en": "Metric"},
    "cantho value": {"vi": "Cần Thơ", "en": "Cần Thơ"},
    "rank": {"vi": "Xếp hạng", "en": "Rank"},
    "information_portal": {
        "vi": "Tỷ lệ cổng thông tin điện tử hoạt động trên IPv6",
        "en": "Information portals working over IPv6",
    },
    "public_service_portal": {
        "vi": "Tỷ lệ cổng dịch vụ công hoạt động trên IPv6",
        "en": "Public-service portals working over IPv6",
    },
    "rank text": {
        "vi": "hạng {rank}/{provinces} tỉnh, thành có số liệu",
        "en": "rank {rank} of {provinces} provinces with figures",
    },
    "rank tied": {
        "vi": " (đồng hạng với {tied} tỉnh, thành khác)",
        "en": " (tied with {tied} other{s})",
    },
    "no city figure": {
        "vi": "chưa có số liệu của Cần Thơ ({provinces} tỉnh, thành có số liệu)",
        "en": "no figure for Cần Thơ ({provinces} provinces with figures)",
    },
    "provinces none": {
        "vi": "Chưa nhập số liệu cấp tỉnh (VNNIC) cho kỳ này: chưa xếp hạng được.",
        "en": "No provincial figures (VNNIC's) imported for this period: no rank.",
    },
    "services ready": {
        "vi": "Dịch vụ của thành phố sẵn sàng IPv6 hoàn toàn: {value}.",
        "en": "City services fully IPv6-ready: {value}.",
    },
    "not measured": {"vi": "chưa đo", "en": "not measured"},
    "how measured": {"vi": "Cách đo", "en": "How each was measured"},
    "method wardprobe": {
        "vi": "wardprobe: kiểm tra IPv6 của các đầu đo (địa chỉ toàn cục, tuyến mặc định, "
        "AAAA, TCP tới đích chỉ có IPv6, gói tin lớn); một đầu đo được tính khi ít nhất "
        "{share} số lần kiểm tra hợp lệ thấy IPv6 hoạt động.",
        "en": "wardprobe: the probes' IPv6 check (global address, default route, AAAA, TCP "
        "to an IPv6-only target, a large packet); a probe counts when at least {share} of "
        "its valid checks found working IPv6.",
    },
    "method apnic": {
        "vi": "APNIC Labs: quảng cáo trực tuyến cho trình duyệt của người dùng tải một đối "
        "tượng chỉ có IPv6 và một đối tượng hai ngăn xếp; tỷ lệ IPv6 là phần mẫu tải được "
        "đối tượng chỉ có IPv6 (người dùng cuối, không phải đường truyền của thành phố).",
        "en": "APNIC Labs: an online advertisement has end users' browsers fetch an "
        "IPv6-only and a dual-stack object; the rate is the share of samples that fetched "
        "the IPv6-only one (end users, not the city's lines).",
    },
    "method vnnic": {
        "vi": "VNNIC: tự kiểm tra các cổng thông tin của từng tỉnh, thành (một cổng được tính "
        "khi trả lời qua IPv6).",
        "en": "VNNIC: its own checks of each province's portals (a portal counts when it "
        "answers over IPv6).",
    },
    "method services": {
        "vi": "Dịch vụ của thành phố: {method}",
        "en": "The city's services: {method}",
    },
    "s4": {
        "vi": "4. Nơi cần thêm đầu đo để kết luận",
        "en": "4. Where more probes would settle the answer",
    },
    "s4 intro": {
        "vi": "Một kết quả chưa thể kết luận khi dưới ngưỡng tối thiểu ({probes} đầu đo, "
        "{tests} phép đo hợp lệ) hoặc khi khoảng tin cậy 95 % của nó chứa giá trị mục "
        "tiêu. Số đầu đo cần thêm được ước tính theo tốc độ đo hiện nay và độ phân tán "
        "giữa các đầu đo (công thức ở Phụ lục A.8); đây là con số để lập kế hoạch, "
        "không phải cam kết. Mục này gồm các chỉ tiêu có mục tiêu trong kế hoạch (toàn "
        "thành phố và từng phường, xã) và các quy chuẩn quốc gia (toàn thành phố); API "
        "của hệ thống cho danh sách đầy đủ của mọi chỉ tiêu.",
        "en": "A figure cannot be concluded while it is below the floor ({probes} probes, "
        "{tests} valid tests) or while its 95 % interval contains the target. The probes "
        "to add are estimated at today's test rate and from the spread between probes "
        "(formulas in Annex A.8); a planning figure, not a promise. This section covers "
        "the indicators with a plan target (the city and each ward) and the national "
        "references (the city); the system's API lists every indicator.",
    },
    "s4.1": {
        "vi": "4.1. Kết quả có khoảng tin cậy chứa giá trị mục tiêu",
        "en": "4.1. Figures whose 95 % interval contains the target",
    },
    "s4.2": {
        "vi": "4.2. Phường, xã dưới ngưỡng tối thiểu",
        "en": "4.2. Wards below the floor",
    },
    "s4.2 intro": {
        "vi": "Số đầu đo cần thêm để đạt {probes} đầu đo và {tests} phép đo hợp lệ, với số "
        "phép đo mỗi đầu đo như hiện nay trong phường, xã (phường, xã chưa có đầu đo: "
        "như trung bình toàn thành phố). Với các chỉ tiêu tại khu công nghệ cao, khu công "
        "nghiệp chỉ liệt kê phường, xã đã có điểm đo tại các khu đó.",
        "en": "Probes to add to reach {probes} probes and {tests} valid tests, at the "
        "ward's present tests per probe (a ward without a probe: the city's). For the "
        "zone targets only wards that have a probe at a zone site are listed.",
    },
    "none unsettled": {
        "vi": "Không có kết quả nào có khoảng tin cậy chứa giá trị mục tiêu.",
        "en": "No figure's interval contains its target.",
    },
    "none below": {
        "vi": "Không có phường, xã nào dưới ngưỡng tối thiểu.",
        "en": "No ward is below the floor.",
    },
    "annex": {"vi": "Phụ lục A. Phương pháp", "en": "Annex A. Method"},
    "a1": {"vi": "A.1. Vị trí các đầu đo", "en": "A.1. Where the probes are"},
    "a1 intro": {
        "vi": "Đầu đo có ít nhất một kết quả hợp lệ trong kỳ, theo loại điểm đo và theo "
        "phường, xã (một đầu đo đo cả cố định lẫn di động được tính ở cả hai cột).",
        "en": "Probes with at least one valid result in the period, by site class and by "
        "ward (a probe that measured both a fixed line and a mobile network counts in "
        "both columns).",
    },
    "a2": {"vi": "A.2. Phép đo hợp lệ", "en": "A.2. What a valid test is"},
    "a3": {"vi": "A.3. Số liệu gốc năm {year}", "en": "A.3. The {year} baseline"},
    "a4": {"vi": "A.4. Cân bằng theo đầu đo", "en": "A.4. Probe balancing"},
    "a5": {"vi": "A.5. Khoảng tin cậy", "en": "A.5. Intervals"},
    "a6": {"vi": "A.6. Ngưỡng tối thiểu", "en": "A.6. The floor"},
    "a7": {"vi": "A.7. Kết quả bị loại, theo lý do", "en": "A.7. Results excluded, by reason"},
    "a8": {
        "vi": "A.8. Ước tính số đầu đo cần thêm",
        "en": "A.8. Estimating the probes to add",
    },
    "verdict": {"vi": "Đánh giá", "en": "Verdict"},
    "met": {"vi": "Đạt", "en": "Met"},
    "not met": {"vi": "Không đạt", "en": "Not met"},
    "insufficient": {"vi": "Chưa đủ dữ liệu", "en": "Insufficient data"},
    "unsettled mark": {
        "vi": "* Khoảng tin cậy 95 % chứa giá trị mục tiêu: cần thêm số liệu để khẳng định "
        "(mục 4).",
        "en": "* The 95 % interval contains the target: more data is needed to be sure "
        "(section 4).",
    },
    "indicator": {"vi": "Chỉ tiêu", "en": "Indicator"},
    "target": {"vi": "Mục tiêu", "en": "Target"},
    "source": {"vi": "Nguồn", "en": "Source"},
    "due": {"vi": "Thời hạn", "en": "Due"},
    "measured": {"vi": "Kết quả đo", "en": "Measured"},
    "interval": {"vi": "Khoảng tin cậy 95 %", "en": "95 % interval"},
    "probes": {"vi": "Số đầu đo", "en": "Probes"},
    "tests": {"vi": "Số phép đo", "en": "Tests"},
    "limited": {"vi": "Đầu đo bị giới hạn", "en": "Probe-limited"},
    "status": {"vi": "Tình trạng", "en": "Status"},
    "code": {"vi": "Mã", "en": "Code"},
    "ward": {"vi": "Phường, xã", "en": "Ward"},
    "scope": {"vi": "Phạm vi", "en": "Scope"},
    "city": {"vi": "Toàn thành phố", "en": "Whole city"},
    "operator": {"vi": "Nhà mạng", "en": "Operator"},
    "requirement": {"vi": "Yêu cầu", "en": "Requirement"},
    "spread": {"vi": "Độ phân tán s", "en": "Spread s"},
    "probes now": {"vi": "Đầu đo hiện có", "en": "Probes now"},
    "probes needed": {"vi": "Tổng số đầu đo cần", "en": "Probes needed"},
    "more probes": {"vi": "Cần thêm", "en": "To add"},
    "wards": {"vi": "Phường, xã", "en": "Wards"},
    "not by probes": {
        "vi": "không thể kết luận bằng thêm đầu đo",
        "en": "more probes do not settle it",
    },
    "on target": {"vi": "kết quả trùng giá trị mục tiêu", "en": "the figure is on the target"},
    "all sites": {
        "vi": "mọi đầu đo đều đạt, mục tiêu là 100 %: chỉ đo đủ mọi điểm mới kết luận được",
        "en": "every probe meets it and the target is 100 %: only every site settles it",
    },
    "baseline too wide": {
        "vi": "độ bất định của số liệu gốc năm 2024 đã lớn hơn khoảng cách tới mục tiêu",
        "en": "the 2024 baseline's own uncertainty covers the distance to the target",
    },
    "no baseline here": {
        "vi": "không có số liệu gốc năm 2024 cho phạm vi này",
        "en": "no 2024 baseline for this scope",
    },
    "no rate": {
        "vi": "chưa có đầu đo nào để ước tính số phép đo",
        "en": "no probe anywhere to give a test rate",
    },
    "wards without probe": {
        "vi": "Phường, xã chưa có đầu đo cho chỉ tiêu này ({n}): {names}.",
        "en": "Wards without a probe for this indicator ({n}): {names}.",
    },
    "map caption": {
        "vi": "Bản đồ: {indicator}; {period}. Xám: chưa đủ dữ liệu; trắng: chưa có đầu đo.",
        "en": "Map: {indicator}; {period}. Grey: insufficient data; white: no probe.",
    },
    "ward table": {"vi": "Kết quả theo phường, xã", "en": "Figures by ward"},
    "city figure": {"vi": "Toàn thành phố", "en": "Whole city"},
    "definition": {"vi": "Cách tính", "en": "Definition"},
    "note": {"vi": "Ghi chú", "en": "Note"},
    "site class": {"vi": "Loại điểm đo", "en": "Site class"},
    "fixed probes": {"vi": "Đầu đo cố định", "en": "Fixed-line probes"},
    "mobile probes": {"vi": "Đầu đo di động", "en": "Mobile probes"},
    "all probes": {"vi": "Tổng số đầu đo", "en": "All probes"},
    "total": {"vi": "Tổng cộng", "en": "Total"},
    "table": {"vi": "Loại kết quả", "en": "Result type"},
    "reason": {"vi": "Lý do", "en": "Reason"},
    "results": {"vi": "Số kết quả", "en": "Results"},
    "no exclusions": {"vi": "Không có kết quả nào bị loại.", "en": "No result was excluded."},
    "zone sites": {
        "vi": "Điểm đo tại khu công nghệ cao, khu công nghệ thông tin, trung tâm nghiên cứu "
        "và khu công nghiệp",
        "en": "Probes at high-tech parks, IT parks, R&D centres and industrial zones",
    },
    "probe": {"vi": "Đầu đo", "en": "Probe"},
    "saw 5G": {"vi": "Có sóng 5G", "en": "Saw 5G"},
    "gigabit line": {"vi": "Đường truyền gigabit", "en": "Gigabit line"},
    "offices": {
        "vi": "Cơ quan nhà nước có đầu đo (trụ sở UBND phường, xã; sở, ban, ngành)",
        "en": "Government offices with a probe (ward and commune People's Committees; "
        "city departments)",
    },
    "lan ipv6": {"vi": "Mạng nội bộ có IPv6", "en": "LAN has IPv6"},
    "checks": {"vi": "Số lần kiểm tra", "en": "Checks"},
    "last check": {"vi": "Lần kiểm tra cuối", "en": "Last check"},
    "last found": {"vi": "Kết quả lần cuối", "en": "It found"},
    "no check": {"vi": "chưa có lần kiểm tra hợp lệ", "en": "no valid check"},
    "offices apart": {
        "vi": "{apart} trong {total} cơ quan chưa có lần kiểm tra IPv6 hợp lệ của mạng nội bộ "
        "trong kỳ: được tính riêng, không coi là không có IPv6.",
        "en": "{apart} of the {total} offices have no valid IPv6 check of their LAN in the "
        "period: counted apart, not as offices without IPv6.",
    },
    "ipv6 found": {"vi": "có IPv6", "en": "IPv6"},
    "ipv6 not found": {"vi": "không có IPv6", "en": "no IPv6"},
    "people": {
        "vi": "Dân số dùng làm trọng số: {people} người ở {wards} phường, xã ({year}, nguồn: "
        "{source}). Số người có 5G (tỷ lệ thời gian 5G × dân số): {covered}. Số người sống ở "
        "{apart_wards} phường, xã chưa đủ số liệu, không tính vào tỷ lệ: {apart}.",
        "en": "Population weighted by: {people} people in {wards} wards ({year}, source: "
        "{source}). People with 5G (5G time share × people): {covered}. People living in the "
        "{apart_wards} wards without enough data, left out of the share: {apart}.",
    },
    "no people": {
        "vi": "Chưa có số liệu dân số theo phường, xã (wardprobe-aggregator population import).",
        "en": "No ward populations yet (wardprobe-aggregator population import).",
    },
    "yes": {"vi": "có", "en": "yes"},
    "no": {"vi": "không", "en": "no"},
    "unknown": {"vi": "không có số liệu", "en": "no data"},
    "services of": {"vi": "Dịch vụ của {department}", "en": "Services of {department}"},
    "service": {"vi": "Dịch vụ", "en": "Service"},
    "service kind": {"vi": "Loại", "en": "Kind"},
    "ipv6 ready": {"vi": "Sẵn sàng IPv6", "en": "IPv6-ready"},
    "failing check": {"vi": "Kiểm tra không đạt", "en": "Failing check"},
    "not decided": {"vi": "chưa có kết luận", "en": "not decided"},
    "department ready": {
        "vi": "{ready}/{decided} dịch vụ sẵn sàng",
        "en": "{ready} of {decided} services ready",
    },
}

# Site classes of a probe (probes.site_class), for the report's annex.
# The kinds of the city's services (wardprobe/service_list.py).
SERVICE_KINDS: Final[dict[str, Entry]] = {
    "portal": {"vi": "cổng thông tin", "en": "portal"},
    "public_service": {"vi": "cổng dịch vụ công", "en": "public-service portal"},
    "department_site": {"vi": "trang thông tin", "en": "department site"},
    "mail_domain": {"vi": "tên miền thư điện tử", "en": "mail domain"},
}

SITE_CLASSES: Final[dict[str, Entry]] = {
    "household": {"vi": "hộ gia đình", "en": "household"},
    "residential": {"vi": "khu dân cư", "en": "residential"},
    "ward_office": {"vi": "trụ sở phường, xã", "en": "ward office"},
    "city_department": {"vi": "sở, ban, ngành của thành phố", "en": "city department"},
    "school": {"vi": "trường học", "en": "school"},
    "health_facility": {"vi": "cơ sở y tế", "en": "health facility"},
    "high_tech_park": {"vi": "khu công nghệ cao", "en": "high-tech park"},
    "it_park": {"vi": "khu công nghệ thông tin tập trung", "en": "IT park"},
    "industrial_zone": {"vi": "khu, cụm công nghiệp", "en": "industrial zone or cluster"},
    "rd_centre": {"vi": "trung tâm nghiên cứu và phát triển", "en": "R&D centre"},
    "other": {"vi": "khác", "en": "other"},
}

# The result tables and the reasons a result does not count (the *_checked
# views' excluded_because; "status X" is a test that did not complete).
RESULT_TABLES: Final[dict[str, Entry]] = {
    "throughput": {"vi": "đo tốc độ", "en": "throughput"},
    "latency": {"vi": "đo độ trễ", "en": "latency"},
    "cellular": {"vi": "quan sát vô tuyến di động", "en": "radio observations"},
    "ipv6": {"vi": "kiểm tra IPv6", "en": "IPv6 checks"},
}
EXCLUSION_REASONS: Final[dict[str, Entry]] = {
    "clock not synchronised": {
        "vi": "đồng hồ của đầu đo chưa được đồng bộ",
        "en": "the probe's clock was not synchronised",
    },
    "cross-traffic": {
        "vi": "có lưu lượng khác trên đường truyền trong lúc đo",
        "en": "other traffic on the line during the test",
    },
    "figures missing": {"vi": "thiếu số liệu của phép đo", "en": "figures missing"},
    "too little data": {"vi": "lượng dữ liệu truyền quá ít", "en": "too little data moved"},
    "too short": {"vi": "thời gian đo quá ngắn", "en": "measured over too short a time"},
    "too long": {"vi": "thời gian đo quá dài", "en": "measured over too long a time"},
    "rate disagrees with bytes/duration": {
        "vi": "tốc độ báo cáo không khớp với dữ liệu đã truyền",
        "en": "the rate disagrees with bytes over duration",
    },
    "too few replies": {"vi": "quá ít gói tin phản hồi", "en": "too few replies"},
    "no access technology": {
        "vi": "không xác định được công nghệ truy nhập",
        "en": "no access technology reported",
    },
    "verdict missing": {"vi": "thiếu kết luận của phép kiểm tra", "en": "verdict missing"},
    "status": {
        "vi": "phép đo không hoàn thành ({status})",
        "en": "test did not complete ({status})",
    },
}

# Why a city service's IPv6 check did not pass (wardprobe/ipv6_readiness.py's
# reasons, "code" or "code:detail"), for the report's readers; the stored
# codes stay as they are for analysts.
SERVICE_CHECK_REASONS: Final[dict[str, Entry]] = {
    "nxdomain": {"vi": "tên miền không tồn tại", "en": "the name does not exist"},
    # not decided from the checking site
    "probe_no_ipv6": {
        "vi": "nơi kiểm tra không có IPv6 (chưa kết luận)",
        "en": "the checking site has no IPv6 (not decided)",
    },
    "dns_timeout": {"vi": "DNS không trả lời", "en": "DNS did not answer"},
    "dns_error": {"vi": "lỗi DNS ({detail})", "en": "DNS error ({detail})"},
    "no_aaaa": {"vi": "không có bản ghi AAAA", "en": "no AAAA record"},
    "tcp_timeout": {
        "vi": "web không trả lời qua IPv6 (hết thời gian chờ)",
        "en": "the web service does not answer over IPv6 (timed out)",
    },
    "tcp_refused": {
        "vi": "web từ chối kết nối qua IPv6",
        "en": "the web service refuses connections over IPv6",
    },
    "tcp_unreachable": {
        "vi": "không tới được web qua IPv6",
        "en": "the web service is unreachable over IPv6",
    },
    "tcp_error": {
        "vi": "lỗi kết nối web qua IPv6 ({detail})",
        "en": "web connection error ({detail})",
    },
    "tls_failed": {
        "vi": "bắt tay TLS thất bại ({detail})",
        "en": "TLS handshake failed ({detail})",
    },
    "no_ns": {"vi": "không có máy chủ tên miền (NS)", "en": "no name servers (NS)"},
    "ns_no_ipv6": {
        "vi": "máy chủ tên miền {detail} không có IPv6",
        "en": "name server {detail} has no IPv6",
    },
    "ns_no_answer": {
        "vi": "máy chủ tên miền {detail} không trả lời qua IPv6",
        "en": "name server {detail} does not answer over IPv6",
    },
    "no_mx": {"vi": "không có máy chủ thư (MX)", "en": "no mail exchangers (MX)"},
    "mx_no_aaaa": {
        "vi": "máy chủ thư {detail} không có bản ghi AAAA",
        "en": "mail exchanger {detail} has no AAAA record",
    },
}


def service_check_reasons(reasons: str, lang: Lang) -> str:
    """A service's failing checks ("no_aaaa, mx_no_aaaa:mx.example") in words;
    a reason without an entry as it is stored."""
    said = []
    for reason in (r.strip() for r in reasons.split(",") if r.strip()):
        code, _, detail = reason.partition(":")
        entry = SERVICE_CHECK_REASONS.get(code)
        said.append(entry[lang].format(detail=detail) if entry is not None else reason)
    return "; ".join(said)


def report_word(key: str, lang: Lang, **fill: object) -> str:
    """A word or sentence of the yearly report (REPORT), with its blanks filled."""
    return REPORT[key][lang].format(**fill) if fill else REPORT[key][lang]


def exclusion_reason(reason: str, lang: Lang) -> str:
    """Why results were left out, in words ("status failed" names the status)."""
    if reason.startswith("status "):
        return EXCLUSION_REASONS["status"][lang].format(status=reason.removeprefix("status "))
    entry = EXCLUSION_REASONS.get(reason)
    return entry[lang] if entry is not None else reason


def site_class(name: str, lang: Lang) -> str:
    """A site class in words (a class without an entry as it is stored)."""
    entry = SITE_CLASSES.get(name)
    return entry[lang] if entry is not None else name


# How each indicator with a plan target is made, in a sentence (the report's
# "definition"; docs/indicators.md has the full rules).
DEFINITIONS: Final[dict[str, Entry]] = {
    "ipv6_service_ready_share": {
        "vi": "Tỷ lệ dịch vụ trong danh sách của thành phố (cổng thông tin, cổng dịch vụ công, "
        "trang của các sở, tên miền thư điện tử) sẵn sàng IPv6 hoàn toàn: có bản ghi AAAA, "
        "dịch vụ web trả lời qua IPv6 với bắt tay TLS hợp lệ, máy chủ tên miền trả lời qua "
        "IPv6, máy chủ thư có bản ghi AAAA; theo lần kiểm tra có kết luận gần nhất.",
        "en": "Share of the services on the city's list (portal, public-service portal, "
        "departments' sites, mail domains) that are fully IPv6-ready: AAAA records, the web "
        "service answering over IPv6 with a verified TLS handshake, name servers answering "
        "over IPv6, mail exchangers with AAAA; by each service's last decided check.",
    },
    "mobile_download_ratio": {
        "vi": "Tốc độ tải xuống di động trung bình năm nay (trung bình của các đầu đo, mỗi "
        "đầu đo lấy trung bình các phép đo hợp lệ của nó) chia cho cùng đại lượng năm 2024.",
        "en": "This year's mean mobile download (the mean over probes of each probe's mean "
        "valid download) divided by the same figure for 2024.",
    },
    "mobile_download_by_tech": {
        "vi": "Tốc độ tải xuống di động trung bình theo từng công nghệ truy nhập (4G, 5G); "
        "phép đo mà sóng chuyển công nghệ giữa chừng không được tính.",
        "en": "Mean mobile download per access technology (4G, 5G); tests whose radio "
        "changed technology part-way are left out.",
    },
    "gigabit_capable_share": {
        "vi": "Tỷ lệ đường truyền cố định có phân vị 90 của tốc độ tải xuống từ 900 Mb/s; "
        "đầu đo có cổng mạng dưới 1 Gb/s không tính vào mẫu số (bị giới hạn).",
        "en": "Share of fixed lines whose 90th-percentile download reaches 900 Mb/s; probes "
        "whose port is below 1 Gb/s are left out of the denominator (probe-limited).",
    },
    "fixed_200_share": {
        "vi": "Tỷ lệ đường truyền cố định có tốc độ tải xuống trung bình từ 200 Mb/s.",
        "en": "Share of fixed lines whose mean download is 200 Mb/s or more.",
    },
    "nr_time_share": {
        "vi": "Trung bình giữa các đầu đo di động của tỷ lệ thời gian kết nối 5G (NSA hoặc "
        "SA); modem chỉ hỗ trợ 4G không được tính.",
        "en": "Mean over mobile probes of the share of time connected to 5G (NSA or SA); "
        "4G-only modems are left out.",
    },
    "nr_population_share": {
        "vi": "Tỷ lệ thời gian kết nối 5G của từng phường, xã (như chỉ tiêu trên) tính bình "
        "quân theo dân số của phường, xã; phường, xã chưa đủ số liệu được tính riêng (không "
        "coi là không có 5G), kèm số dân sống ở đó.",
        "en": "Each ward's share of time on 5G (as above) weighted by the ward's population; "
        "wards without enough data are counted apart (not as wards without 5G), with the "
        "number of people living in them.",
    },
    "ipv6_office_share": {
        "vi": "Tỷ lệ trụ sở UBND phường, xã và sở, ban, ngành có đầu đo mà mạng nội bộ "
        "(đường truyền cố định) có IPv6 hoạt động trong ít nhất 50 % số lần kiểm tra; cơ "
        "quan chưa có lần kiểm tra hợp lệ được tính riêng.",
        "en": "Share of the ward and commune People's Committees and city departments with a "
        "probe whose LAN (fixed line) had working IPv6 in at least 50 % of its checks; offices "
        "without a valid check are counted apart.",
    },
    "zone_nr_share": {
        "vi": "Tỷ lệ điểm đo tại khu công nghệ cao, khu công nghệ thông tin, trung tâm "
        "nghiên cứu và khu công nghiệp mà modem bắt được sóng 5G.",
        "en": "Share of probes at high-tech parks, IT parks, R&D centres and industrial "
        "zones whose modem saw 5G.",
    },
    "zone_gigabit_share": {
        "vi": "Tỷ lệ điểm đo tại các khu đó có đường truyền cố định đạt tốc độ gigabit.",
        "en": "Share of probes at those zones with a gigabit-capable fixed line.",
    },
    "nr_lte_cell_ratio": {
        "vi": "Ước lượng gián tiếp: số ô 5G khác nhau chia cho số ô 4G khác nhau mà các "
        "đầu đo quan sát được; thay cho tỷ lệ trạm 5G trên trạm 4G, điều đầu đo không "
        "đếm được.",
        "en": "A proxy: distinct 5G cells over distinct 4G cells the probes observed; it "
        "stands in for 5G stations per 4G station, which probes cannot count.",
    },
}

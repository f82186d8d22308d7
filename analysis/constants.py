"""The one table of thresholds, floors and targets the indicators use.

Everything an indicator compares with lives here, once. The SQL views in
analysis/views/ read the same figures from the `indicator_constants` table,
which `indicator_constants_rows()` fills from this module (the entry point
does it on every connection it opens; the analyst snapshot carries the
table), so an analyst's query and the CLI cannot disagree. The throughput
rule's figures come from wardprobe/validity.py, the rule the probe applies;
throughput_checked has them written in when it is created (the same values
as the table's rows). Each line below is `name = value unit`, as in the
table; tests/analysis/test_docs_numbers.py holds them and the docs to it.

- floor_probes = 3 probes: below this many probes a figure is "insufficient
  data"
- floor_tests = 30 tests: below this many valid tests a figure is
  "insufficient data"
- min_bytes_transferred = 8192 bytes: a throughput test that moved less is
  invalid (M-Lab's 8 KB)
- min_measured_s = 1.8 s: a throughput test measured over less time is
  invalid (a 2-second test with 10 % for timers; wardprobe/validity.py says
  why NDT's 9 s does not suit iperf3 and speedtest-cli)
- max_measured_s = 130 s: a throughput test that claims to have been
  measured over longer is invalid (the longest configurable test is 120 s)
- rate_tolerance = 0.05 ratio: bytes×8/measured_s must agree with mbps
  within 5 % (else the figure is not what was moved)
- max_cross_traffic_bytes_per_s = 25000 bytes/s: other traffic above 0.2 Mb/s
  before the test flags it (the household was using the line; the probe
  defers at the same figure, wardprobe/validity.py)
- min_latency_replies = 3 packets: a latency test with fewer replies is
  invalid (its median means little)
- gigabit_p90_mbps = 900 Mb/s: a fixed line is gigabit-capable when its
  90th-percentile download (nearest rank) reaches this
- gigabit_port_mbps = 1000 Mb/s: a probe whose interface negotiated less
  cannot show a gigabit line: probe-limited
- fixed_200_mbps = 200 Mb/s: the 235/KH-UBND fixed-line speed: mean download
  per probe at or above it
- cellular_max_gap_s = 600 s: an observation stands for the time until the
  probe's next one, at most this long
- ipv6_probe_share = 0.5 ratio: a probe has working (preferred) IPv6 when at
  least this share of its checks found it
- bootstrap_resamples = 2000 resamples: bootstrap resamples of probes for a
  95 % interval
- confidence = 0.95 ratio: confidence level of every interval

National references, each compared by its own rules (averages over
measurement samples, not probe-balanced; docs/indicators.md):
- qcvn126_download_mbps = 100 Mb/s: QCVN 126:2021, 5G: an operator's mean
  download over its NR samples must reach this
- qcvn126_upload_mbps = 30 Mb/s: QCVN 126:2021, 5G: mean upload over NR samples
- qcvn126_download_floor_mbps = 30 Mb/s: QCVN 126:2021, 5G: the speed that
  qcvn126_floor_share of the download samples must reach
- qcvn126_floor_share = 0.95 ratio: QCVN 126:2021, 5G: that share (95 %)
- qcvn126_latency_ms = 50 ms: QCVN 126:2021, 5G: mean latency at most this
  (here: the mean of the NR ICMP tests' median round trips)
- qcvn34_plan_ratio = 0.8 ratio: QCVN 34:2022, fixed broadband: a line's mean
  download must reach 0.8 × its plan's advertised download speed (Vd), and
  its mean upload 0.8 × the advertised upload speed (Vu)

A throughput test is valid when: status is ok, the probe's clock was
synchronised, cross-traffic was not above the limit (not measured counts as
not flagged), mbps, bytes_transferred and measured_s are present,
bytes_transferred ≥ 8192, 1.8 s ≤ measured_s ≤ 130 s, and
bytes_transferred × 8 / measured_s / 10⁶ lies within 5 % of mbps
(wardprobe/validity.py states it once, in Python for the probe and as the
SQL the throughput_checked view is made with). A latency test is valid when ok,
synchronised and at least 3 replies came back; a cellular observation or an
IPv6 check when ok and synchronised. Rows of the synthetic generator never
count for real figures (and real rows never count for synthetic ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from wardprobe import validity

FLOOR_PROBES: Final = 3
FLOOR_TESTS: Final = 30
# The transfer rule is wardprobe/validity.py's: the probe applies the same one.
MIN_BYTES_TRANSFERRED: Final = validity.MIN_BYTES_TRANSFERRED
MIN_MEASURED_S: Final = validity.MIN_MEASURED_S
MAX_MEASURED_S: Final = validity.MAX_MEASURED_S
RATE_TOLERANCE: Final = validity.RATE_TOLERANCE
MAX_CROSS_TRAFFIC_BYTES_PER_S: Final = validity.MAX_CROSS_TRAFFIC_BYTES_PER_S
MIN_LATENCY_REPLIES: Final = 3
GIGABIT_P90_MBPS: Final = 900.0
GIGABIT_PORT_MBPS: Final = 1000.0
FIXED_200_MBPS: Final = 200.0
CELLULAR_MAX_GAP_S: Final = 600.0
IPV6_PROBE_SHARE: Final = 0.5
BOOTSTRAP_RESAMPLES: Final = 2000
CONFIDENCE: Final = 0.95
# National references (QCVN), compared over samples (tests), not probes.
QCVN126_SOURCE: Final = "QCVN 126:2021"
QCVN34_SOURCE: Final = "QCVN 34:2022"
QCVN126_DOWNLOAD_MBPS: Final = 100.0
QCVN126_UPLOAD_MBPS: Final = 30.0
QCVN126_DOWNLOAD_FLOOR_MBPS: Final = 30.0
QCVN126_FLOOR_SHARE: Final = 0.95
QCVN126_LATENCY_MS: Final = 50.0
QCVN34_PLAN_RATIO: Final = 0.8
# The baseline year of the mobile doubling target (87/KH-UBND).
BASELINE_YEAR: Final = 2024
# The kinds of 2024 baseline the doubling ratio is computed against: the
# store's own 2024 probes, Ookla's open tiles (`baseline import-ookla`) and
# imported figures (`baseline import`, e.g. VNNIC's medians). Where a scope has
# several, the ratio's value uses the first of BASELINE_PREFERENCE that clears
# its floor and shows the others beside it; docs/indicators.md, "The 2024
# baseline", says why this order.
BASELINE_KINDS: Final = ("probes", "ookla_tiles", "imported")
BASELINE_PREFERENCE: Final[tuple[str, ...]] = ("probes", "ookla_tiles", "imported")
# Local time of every period boundary.
TIMEZONE: Final = "Asia/Ho_Chi_Minh"

# Site classes of the zone targets (high-tech parks, IT parks, R&D centres,
# industrial zones and clusters).
ZONE_SITE_CLASSES: Final = ("high_tech_park", "it_park", "rd_centre", "industrial_zone")
NR_ACCESS_TECHS: Final = ("nr5g_nsa", "nr5g_sa")
# Site classes of the government offices whose LANs 87/KH-UBND moves to IPv6:
# the ward and commune People's Committees and the city's departments.
GOVERNMENT_OFFICE_CLASSES: Final = ("ward_office", "city_department")
# Where the IPv6 office target comes from: 87/KH-UBND for the offices' LANs,
# 235/KH-UBND for the city's IT systems moving from IPv4 to IPv6.
IPV6_OFFICE_SOURCE: Final = "87/KH-UBND (offices' LANs); 235/KH-UBND (the city's systems)"
# Where the services' IPv6 target comes from: 235/KH-UBND moves all the city's
# IT application systems from IPv4 to IPv6; 87/KH-UBND 100 % of the
# information systems of its departments and People's Committees (by 2030).
IPV6_SERVICES_SOURCE: Final = (
    "235/KH-UBND (all the city's IT application systems); 87/KH-UBND (departments' systems)"
)

Comparator = Literal[">=", ">", "<="]

# Vietnam's provinces since the July 2025 merger (the vietnam-provinces package lists them).
PROVINCES: Final = 34


@dataclass(frozen=True)
class Target:
    """One target of the city's plans that an indicator is judged against."""

    indicator: str
    value: float
    comparator: Comparator
    unit: str
    source: str
    due: str
    # Access technology the target applies to (the 235/KH-UBND speeds), if any.
    access_tech: str | None = None

    def met(self, measured: float) -> bool:
        """Whether a measured figure meets the target."""
        if self.comparator == "<=":
            return measured <= self.value
        return measured >= self.value if self.comparator == ">=" else measured > self.value


TARGETS: Final[tuple[Target, ...]] = (
    Target("mobile_download_ratio", 2.0, ">=", "ratio", "87/KH-UBND (2025)", "2025–2026"),
    Target("gigabit_capable_share", 0.5, ">=", "share", "87/KH-UBND (2025)", "2025–2026"),
    Target("gigabit_capable_share", 0.8, ">", "share", "2026 digital-transformation plan", "2026"),
    Target("gigabit_capable_share", 1.0, ">=", "share", "87/KH-UBND (2025)", "2030"),
    Target("nr_time_share", 0.5, ">=", "share", "2026 digital-transformation plan", "2026"),
    Target("nr_time_share", 1.0, ">=", "share", "87/KH-UBND, 235/KH-UBND", "2030"),
    Target("mobile_download_by_tech", 40.0, ">=", "Mb/s", "235/KH-UBND", "2030", "lte"),
    Target("mobile_download_by_tech", 100.0, ">=", "Mb/s", "235/KH-UBND", "2030", "nr5g_nsa"),
    Target("mobile_download_by_tech", 100.0, ">=", "Mb/s", "235/KH-UBND", "2030", "nr5g_sa"),
    Target("fixed_200_share", 0.9, ">=", "share", "235/KH-UBND", "2030"),
    Target("zone_nr_share", 1.0, ">=", "share", "87/KH-UBND, 235/KH-UBND", "2025–2026"),
    Target("zone_gigabit_share", 1.0, ">=", "share", "87/KH-UBND, 235/KH-UBND", "2025–2026"),
    Target("nr_lte_cell_ratio", 0.5, ">=", "ratio (proxy)", "87/KH-UBND (2025)", "2025"),
    Target("ipv6_office_share", 1.0, ">=", "share", IPV6_OFFICE_SOURCE, "2030"),
    # Every service of the city's list fully IPv6-ready (analysis/indicators/ipv6_services.py).
    Target("ipv6_service_ready_share", 1.0, ">=", "share", IPV6_SERVICES_SOURCE, "2030"),
    # 5G covers 100 % of the population: the NR time share weighted by ward population.
    Target("nr_population_share", 1.0, ">=", "share", "87/KH-UBND, 235/KH-UBND", "2030"),
    # National references: technical regulations in force, so no due date.
    Target(
        "qcvn126_download_mean", QCVN126_DOWNLOAD_MBPS, ">=", "Mb/s", QCVN126_SOURCE, "in force"
    ),
    Target("qcvn126_upload_mean", QCVN126_UPLOAD_MBPS, ">=", "Mb/s", QCVN126_SOURCE, "in force"),
    Target(
        "qcvn126_download_floor_share",
        QCVN126_FLOOR_SHARE,
        ">=",
        "share",
        QCVN126_SOURCE,
        "in force",
    ),
    Target("qcvn126_latency_mean", QCVN126_LATENCY_MS, "<=", "ms", QCVN126_SOURCE, "in force"),
    # QCVN 34 holds for every line: the share of lines that meet it should be all of them.
    Target("qcvn34_download_share", 1.0, ">=", "share", QCVN34_SOURCE, "in force"),
    Target("qcvn34_upload_share", 1.0, ">=", "share", QCVN34_SOURCE, "in force"),
)


# 87/KH-UBND (2025): "Cần Thơ among the leading provinces in the IPv6 transition".
# The plan gives no number; leading is read as the top 10 of the 34 provinces,
# ranked on a provincial figure published for all (VNNIC's portal figures;
# analysis/indicators/ipv6_reference.py). Not in TARGETS: it judges a rank
# among provinces, not a figure of the city's probes.
LEADING_PROVINCES: Final = Target(
    "ipv6_leading_provinces", 10.0, "<=", "rank", "87/KH-UBND (2025)", "ongoing / 2030"
)


def targets_for(indicator: str, access_tech: str | None = None) -> tuple[Target, ...]:
    """The targets of one indicator (for an access technology where they differ)."""
    return tuple(
        t
        for t in TARGETS
        if t.indicator == indicator and (t.access_tech is None or t.access_tech == access_tech)
    )


def indicator_constants_rows() -> list[tuple[str, float, str]]:
    """(name, value, unit) rows of the `indicator_constants` table the views read."""
    return [
        ("floor_probes", FLOOR_PROBES, "probes"),
        ("floor_tests", FLOOR_TESTS, "tests"),
        ("min_bytes_transferred", MIN_BYTES_TRANSFERRED, "bytes"),
        ("min_measured_s", MIN_MEASURED_S, "s"),
        ("max_measured_s", MAX_MEASURED_S, "s"),
        ("rate_tolerance", RATE_TOLERANCE, "ratio"),
        ("max_cross_traffic_bytes_per_s", MAX_CROSS_TRAFFIC_BYTES_PER_S, "bytes/s"),
        ("min_latency_replies", MIN_LATENCY_REPLIES, "packets"),
        ("gigabit_p90_mbps", GIGABIT_P90_MBPS, "Mb/s"),
        ("gigabit_port_mbps", GIGABIT_PORT_MBPS, "Mb/s"),
        ("fixed_200_mbps", FIXED_200_MBPS, "Mb/s"),
        ("cellular_max_gap_s", CELLULAR_MAX_GAP_S, "s"),
        ("ipv6_probe_share", IPV6_PROBE_SHARE, "ratio"),
        ("qcvn126_download_mbps", QCVN126_DOWNLOAD_MBPS, "Mb/s"),
        ("qcvn126_upload_mbps", QCVN126_UPLOAD_MBPS, "Mb/s"),
        ("qcvn126_download_floor_mbps", QCVN126_DOWNLOAD_FLOOR_MBPS, "Mb/s"),
        ("qcvn126_floor_share", QCVN126_FLOOR_SHARE, "ratio"),
        ("qcvn126_latency_ms", QCVN126_LATENCY_MS, "ms"),
        ("qcvn34_plan_ratio", QCVN34_PLAN_RATIO, "ratio"),
    ]

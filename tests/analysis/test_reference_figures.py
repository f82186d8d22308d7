"""Published IPv6 figures: APNIC's and the provinces' imports refuse bad
files naming what is wrong, and ipv6_leading_provinces sets the probes'
shares per ISP beside them, with Cần Thơ's rank, against hand-computed
answers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from html import unescape
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from aggregator.cli import app
from aggregator.ingest.store import Store
from analysis import labels
from analysis.indicators import compute_indicators, parse_period
from analysis.indicators.ipv6_reference import ISP_ASNS, competition_rank, rank_text
from analysis.labels import Lang
from analysis.periods import TZ
from analysis.reference_figures import (
    SYNTHETIC_SOURCE,
    FiguresRefused,
    province_code,
    provinces,
    read_apnic,
    read_vnnic,
    store_apnic,
    store_vnnic,
    write_synthetic,
)
from analysis.report import ReportContent, render_html
from analysis.report.content import Ipv6Comparison, ipv6_comparison
from tests.aggregator.ingest.test_schema_doc import _documented_columns, _sections

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reference"
DAY = date(2026, 6, 1)


def _write(tmp_path: Path, text: str, name: str = "figures.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


def _problems(call: object) -> list[tuple[int, str]]:
    with pytest.raises(FiguresRefused) as caught:
        assert callable(call)
        call()
    return caught.value.problems


# --- APNIC ------------------------------------------------------------------------


def test_apnic_per_network_table_as_published() -> None:
    rows = read_apnic(FIXTURES / "apnic_vn_networks.csv", DAY)
    vnpt = next(r for r in rows if r.asn == 45899)
    assert (vnpt.scope, vnpt.economy, vnpt.name) == ("network", "VN", "VNPT-AS-VN VNPT Corp")
    assert (vnpt.capable_pct, vnpt.preferred_pct, vnpt.samples) == (61.20, 59.85, 1_204_311)
    assert vnpt.published_on == DAY
    assert "stats.labs.apnic.net" in vnpt.source
    assert [r.asn for r in rows] == [7552, 45899, 18403, 45903, 7602]


def test_apnic_per_economy_table_as_published() -> None:
    rows = read_apnic(FIXTURES / "apnic_economies.csv", DAY, source="APNIC, world page")
    assert {r.economy: r.capable_pct for r in rows}["VN"] == 60.42
    assert all(r.scope == "economy" and r.asn is None for r in rows)
    assert {r.source for r in rows} == {"APNIC, world page"}


def test_apnic_plain_numbers_and_a_cc_column_are_taken(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "Rank,CC,ASN,AS Name,IPv6 Capable (%),IPv6 Preferred (%),Samples,Weighted Samples\n"
        "1,TH,131445,Example AS,48.5,47,2000,2100.5\n",
    )
    (row,) = read_apnic(path, DAY)
    assert (row.economy, row.asn, row.capable_pct, row.preferred_pct, row.samples) == (
        "TH",
        131445,
        48.5,
        47.0,
        2000,
    )


def test_apnic_missing_columns_are_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "ASN,AS Name,IPv6 Capable\nAS1,X,5%\n")
    assert _problems(lambda: read_apnic(path, DAY)) == [
        (1, "header lacks the columns IPv6 Preferred, Samples")
    ]


def test_apnic_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "")
    assert _problems(lambda: read_apnic(path, DAY)) == [
        (1, "the file is empty: a header line is expected")
    ]
    header_only = _write(tmp_path, "ASN,AS Name,IPv6 Capable,IPv6 Preferred,Samples\n", "h.csv")
    assert _problems(lambda: read_apnic(header_only, DAY)) == [(1, "no figures after the header")]


def test_apnic_a_table_of_neither_kind_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "network,capable\nAS1,5\n")
    ((line, message),) = _problems(lambda: read_apnic(path, DAY))
    assert line == 1 and "neither ASN" in message and "nor CC" in message


def test_apnic_bad_values_are_named_with_their_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "ASN,AS Name,IPv6 Capable,IPv6 Preferred,Samples\n"
        "AS45899,VNPT,61.2%,59.8%,100\n"
        "AS7552,Viettel,sixty,50%,100\n"
        "AS18403,FPT,55%,53%,many\n"
        "ASX,Nobody,5%,4%,10\n"
        "AS45903,CMC,120%,4%,10\n"
        "AS45899,VNPT again,61.2%,59.8%,100\n"
        "AS7602,SPT,4%,3%,10,extra\n",
    )
    assert _problems(lambda: read_apnic(path, DAY)) == [
        (3, "IPv6 Capable must be a percentage, got 'sixty'"),
        (4, "Samples must be a whole number of samples, got 'many'"),
        (5, "ASN must be an AS number such as AS45899, got 'ASX'"),
        (6, "IPv6 Capable must lie between 0 and 100, got '120%'"),
        (7, "AS45899 appears twice (first on line 2)"),
        (8, "more fields than the header has"),
    ]


def test_apnic_cli_refuses_and_imports_nothing(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    bad = _write(tmp_path, "CC,Country,IPv6 Capable,IPv6 Preferred,Samples\nVNM,Viet Nam,5,4,1\n")
    result = CliRunner().invoke(
        app,
        [
            "reference-figures",
            "import-apnic",
            str(bad),
            "--date",
            "2026-06-01",
            "--store",
            str(store),
        ],
    )
    assert result.exit_code == 1
    assert f"{bad}:2: CC must be a two-letter economy code such as VN, got 'VNM'" in result.output
    assert "nothing imported: 1 problem" in result.output
    assert not store.exists()
    result = CliRunner().invoke(
        app,
        [
            "reference-figures",
            "import-apnic",
            str(FIXTURES / "apnic_economies.csv"),
            "--date",
            "2026-13-01",
            "--store",
            str(store),
        ],
    )
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output


def test_apnic_imported_again_for_the_day_replaces(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    runner = CliRunner()
    args = [
        "reference-figures",
        "import-apnic",
        str(FIXTURES / "apnic_vn_networks.csv"),
        "--date",
        "2026-06-01",
        "--store",
        str(store),
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "imported APNIC's figures of 5 networks of VN for 2026-06-01" in first.output
    assert runner.invoke(app, args).exit_code == 0
    later = runner.invoke(app, [*args[:4], "2026-07-01", *args[5:]])
    assert later.exit_code == 0
    con = duckdb.connect(str(store), read_only=True)
    try:
        counts = con.execute(
            "select published_on, count(*) from reference_apnic_ipv6 group by 1 order by 1"
        ).fetchall()
    finally:
        con.close()
    assert counts == [(date(2026, 6, 1), 5), (date(2026, 7, 1), 5)]


# --- provinces --------------------------------------------------------------------


def test_provinces_are_the_34_after_the_merger() -> None:
    assert len(provinces()) == 34
    assert provinces()[92] == "Thành phố Cần Thơ"
    for spelling in ("92", "Cần Thơ", "Thành phố Cần Thơ", "can_tho", "CAN THO", "cần thơ"):
        assert province_code(spelling) == 92, spelling
    # Hậu Giang merged into Cần Thơ in 2025: no longer a province of its own.
    assert province_code("Hậu Giang") is None


def test_vnnic_file_as_defined() -> None:
    rows = read_vnnic(FIXTURES / "vnnic_provinces.csv")
    assert len(rows) == 9
    city = [r for r in rows if r.province_code == 92]
    assert {(r.metric, r.value_pct) for r in city} == {
        ("information_portal", 95.0),
        ("public_service_portal", 70.0),
    }
    assert {r.province_code for r in rows} == {1, 79, 48, 92, 91, 96, 86}
    assert all(r.published_on == date(2026, 6, 30) for r in rows)


def test_vnnic_bad_lines_are_named(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "province,metric,value_pct,date,source\n"
        "Cần Thơ,information_portal,95,2026-06-30,VNNIC\n"
        "Hậu Giang,information_portal,90,2026-06-30,VNNIC\n"
        "Cà Mau,portal,90,2026-06-30,VNNIC\n"
        "Cà Mau,information_portal,ninety,2026-06-30,VNNIC\n"
        "Cà Mau,information_portal,-1,2026-06-30,VNNIC\n"
        "Cà Mau,information_portal,90,30/06/2026,VNNIC\n"
        "Cà Mau,information_portal,90,2026-06-30,\n"
        "92,information_portal,95,2026-06-30,VNNIC\n",
    )
    assert _problems(lambda: read_vnnic(path)) == [
        (
            3,
            "province 'Hậu Giang' is none of Vietnam's 34 provinces "
            "(a GSO code such as 92 or a name such as Cần Thơ)",
        ),
        (4, "metric must be one of information_portal, public_service_portal, got 'portal'"),
        (5, "value_pct must be a percentage, got 'ninety'"),
        (6, "value_pct must lie between 0 and 100, got '-1'"),
        (7, "date must be YYYY-MM-DD, got '30/06/2026'"),
        (8, "source must name who published the figure"),
        (9, "Thành phố Cần Thơ information_portal 2026-06-30 appears twice (line 2 too)"),
    ]


def test_vnnic_missing_columns_and_empty_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "province,value_pct,date\n92,95,2026-06-30\n")
    assert _problems(lambda: read_vnnic(path)) == [(1, "header lacks the columns metric, source")]
    empty = _write(tmp_path, "province,metric,value_pct,date,source\n", "empty.csv")
    assert _problems(lambda: read_vnnic(empty)) == [(1, "no figures after the header")]


def test_vnnic_cli_names_the_line(tmp_path: Path) -> None:
    bad = _write(
        tmp_path,
        "province,metric,value_pct,date,source\nAtlantis,information_portal,9,2026-06-30,VNNIC\n",
    )
    result = CliRunner().invoke(
        app, ["reference-figures", "import-vnnic", str(bad), "--store", str(tmp_path / "s.db")]
    )
    assert result.exit_code == 1
    assert f"{bad}:2: province 'Atlantis' is none of Vietnam's 34 provinces" in result.output


def test_the_isps_with_a_network_are_the_registrys_names() -> None:
    """A key spelt otherwise than the registry stores it would never match a probe."""
    from aggregator.enrolment.registry import known_isps

    assert set(ISP_ASNS) <= set(known_isps())
    assert ISP_ASNS["VNPT"] == (45899,) and ISP_ASNS["Viettel"] == (7552,)
    assert ISP_ASNS["FPT Telecom"] == (18403,)


# --- the rank -----------------------------------------------------------------------


def test_competition_rank_with_ties_by_hand() -> None:
    values = {1: 100.0, 79: 100.0, 48: 95.0, 92: 95.0, 91: 80.0, 96: 60.0}
    assert competition_rank(values, 92) == (3, 1)  # two above, Đà Nẵng level
    assert competition_rank(values, 1) == (1, 1)
    assert competition_rank(values, 91) == (5, 0)
    assert competition_rank(values, 96) == (6, 0)
    assert competition_rank({92: 10.0}, 92) == (1, 0)
    assert rank_text(3, 1, 6) == "rank 3 of 6 provinces with figures (tied with 1 other)"
    assert rank_text(1, 2, 34) == "rank 1 of 34 provinces with figures (tied with 2 others)"
    assert rank_text(1, 0, 1) == "rank 1 of 1 province with figures"


# --- the indicator on a small store -------------------------------------------------

START = datetime(2026, 3, 2, 9, tzinfo=TZ)
# ISP -> each probe's (checks, of which capable); a probe counts when at least half found it.
PROBES = {
    "VNPT": [(10, 10), (10, 9), (10, 5), (10, 4)],  # 3 of 4 capable: 0.75
    "FPT Telecom": [(10, 0), (10, 10), (10, 10)],  # 2 of 3: 0.667
    "Viettel": [(10, 10), (10, 10)],  # 2 probes: below the floor
}


@pytest.fixture(scope="module")
def small_store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reference") / "store.duckdb"
    Store(path).close()
    con = duckdb.connect(str(path))
    n = 0
    for isp, probes in PROBES.items():
        for checks, capable in probes:
            n += 1
            probe = f"p{n}"
            con.execute(
                "insert into probes (probe_id, ward_code, site_class, enrolled_at, cert_state, "
                "isp) values (?, 31120, 'residential', ?, 'active', ?)",
                [probe, START - timedelta(days=30), isp],
            )
            for i in range(checks):
                con.execute(
                    "insert into ipv6 by name select uuid() as result_id, ? as probe_id, "
                    "31120 as ward_code, ?::timestamptz as measured_at, now() as received_at, "
                    "'fixed' as network_kind, 'synchronised' as clock_sync, 'ok' as status, "
                    "? as ipv6_capable, ? as ipv6_preferred, false as synthetic",
                    [probe, START + timedelta(hours=i), i < capable, i < capable],
                )
    store_apnic(con, read_apnic(FIXTURES / "apnic_vn_networks.csv", DAY))
    store_apnic(con, read_apnic(FIXTURES / "apnic_economies.csv", DAY))
    # A later publication than the period: not used for 2026.
    late = read_apnic(FIXTURES / "apnic_economies.csv", date(2027, 1, 5))
    store_apnic(con, [replace(r, capable_pct=1.0) for r in late])
    store_vnnic(con, read_vnnic(FIXTURES / "vnnic_provinces.csv"))
    con.close()
    return path


@pytest.fixture(scope="module")
def small_store(small_store_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(small_store_path), read_only=True)
    yield con
    con.close()


def test_the_indicators_command_shows_the_comparison(
    small_store: duckdb.DuckDBPyConnection, small_store_path: Path
) -> None:
    result = CliRunner().invoke(
        app,
        ["indicators", "--period", "2026", "--store", str(small_store_path), "--city-only"],
    )
    assert result.exit_code == 0, result.output
    text = re.sub(r"\s+", " ", result.output)
    assert "ipv6_leading_provinces" in text
    assert "│ VNPT │ 75.0% │" in text and "AS45899 (2026-06-01) │ 61.2%" in text
    assert "APNIC, Vietnam: 60.4% (2026-06-01)" in text
    assert "rank 3 of 6 provinces with figures (tied with 1 other)" in text
    assert "Target: <= 10 (87/KH-UBND (2025), ongoing / 2030): met" in text


def test_the_indicator_against_hand_computed_answers(
    small_store: duckdb.DuckDBPyConnection,
) -> None:
    report = compute_indicators(small_store, parse_period("2026"))
    ref = report.ipv6_reference
    assert ref is not None and ref.indicator == "ipv6_leading_provinces"
    by_isp = {c.isp: c for c in ref.isps}
    assert set(by_isp) == {"VNPT", "FPT Telecom", "Viettel"}
    vnpt = by_isp["VNPT"]
    assert (vnpt.probes, vnpt.checks, vnpt.probes_capable_share) == (4, 40, 0.75)
    assert vnpt.asns == (45899,) and vnpt.apnic is not None
    assert vnpt.apnic.capable_share == pytest.approx(0.612)
    fpt = by_isp["FPT Telecom"]
    assert fpt.probes_capable_share == pytest.approx(2 / 3)
    assert fpt.apnic is not None and fpt.apnic.asn == 18403
    viettel = by_isp["Viettel"]
    assert (viettel.probes_capable_share, viettel.status) == (None, "insufficient data")
    assert viettel.apnic is not None and viettel.apnic.capable_share == pytest.approx(0.7245)
    # Vietnam's rate from the publication of 2026, not the one of 2027.
    assert ref.vietnam is not None and ref.vietnam.capable_share == pytest.approx(0.6042)
    assert ref.vietnam.published_on == DAY
    ranks = {p.metric: p for p in ref.provinces}
    info = ranks["information_portal"]
    assert (info.rank, info.tied_with, info.provinces, info.city_share) == (3, 1, 6, 0.95)
    assert info.text == "rank 3 of 6 provinces with figures (tied with 1 other)"
    assert info.leading is True and info.best_share == 1.0
    public = ranks["public_service_portal"]
    assert (public.rank, public.tied_with, public.provinces) == (3, 0, 3)
    assert ref.target.met is True and ref.target.value == 10 and ref.target.comparator == "<="
    assert "87/KH-UBND" in ref.target.source
    assert ref.services is None
    assert [m[0] for m in ref.methods] == ["wardprobe", "APNIC", "VNNIC"]
    assert "advertisement" in dict(ref.methods)["APNIC"]


def test_the_isp_shares_are_ipv6_capable_share_by_operator(
    small_store: duckdb.DuckDBPyConnection,
) -> None:
    report = compute_indicators(small_store, parse_period("2026"), by="operator")
    ref = report.ipv6_reference
    assert ref is not None
    grouped = {
        f.group: f.value
        for f in report.figures
        if f.indicator == "ipv6_capable_share" and f.scope == "city"
    }
    for c in ref.isps:
        assert grouped[f"operator=fixed line: {c.isp}"] == c.probes_capable_share


def test_without_published_figures_there_is_no_rank(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    Store(path).close()
    con = duckdb.connect(str(path), read_only=True)
    try:
        ref = compute_indicators(con, parse_period("2026")).ipv6_reference
    finally:
        con.close()
    assert ref is not None
    assert (ref.isps, ref.vietnam, ref.provinces, ref.target.met) == ((), None, (), None)


def test_schema_doc_matches_describe(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.duckdb")
    try:
        for table in ("reference_apnic_ipv6", "reference_province_ipv6"):
            described = [(str(r[0]), str(r[1])) for r in store.query(f"describe {table}")]
            assert _documented_columns(_sections()[table]) == described, table
    finally:
        store.close()


def test_leading_needs_the_top_ten_on_every_metric(tmp_path: Path) -> None:
    """Cần Thơ 3rd of 6 on one metric, 11th on another: not among the leading."""
    path = tmp_path / "store.duckdb"
    Store(path).close()
    lines = ["province,metric,value_pct,date,source"]
    lines += [
        "Cần Thơ,information_portal,95,2026-06-30,VNNIC",
        "92,public_service_portal,50,2026-06-30,VNNIC",
    ]
    codes = [c for c in provinces() if c != 92]
    lines += [
        f"{c},information_portal,{100 if i < 2 else 60},2026-06-30,VNNIC"
        for i, c in enumerate(codes[:5])
    ]
    lines += [
        f"{c},public_service_portal,{60 + i},2026-06-30,VNNIC" for i, c in enumerate(codes[:12])
    ]
    figures = _write(tmp_path, "\n".join(lines) + "\n")
    con = duckdb.connect(str(path))
    try:
        store_vnnic(con, read_vnnic(figures))
        ref = compute_indicators(con, parse_period("2026")).ipv6_reference
    finally:
        con.close()
    assert ref is not None
    ranks = {p.metric: (p.rank, p.provinces, p.leading) for p in ref.provinces}
    assert ranks == {
        "information_portal": (3, 6, True),
        "public_service_portal": (13, 13, False),
    }
    assert ref.target.met is False


def test_the_synthetic_files_import_and_say_so(tmp_path: Path) -> None:
    files = write_synthetic(tmp_path, 2026)
    networks = read_apnic(files["apnic_networks"], date(2026, 6, 30), source=SYNTHETIC_SOURCE)
    assert {r.asn for r in networks} == {a for asns in ISP_ASNS.values() for a in asns}
    economies = read_apnic(files["apnic_economies"], date(2026, 6, 30))
    assert "VN" in {r.economy for r in economies}
    figures = read_vnnic(files["provinces"])
    assert len(figures) == 2 * 34
    assert {r.source for r in figures} == {SYNTHETIC_SOURCE}
    assert "SYNTHETIC" in SYNTHETIC_SOURCE
    assert write_synthetic(tmp_path / "again", 2026)["provinces"].read_bytes() == (
        files["provinces"].read_bytes()
    )


def _report_with(ipv6: Ipv6Comparison, lang: Lang) -> ReportContent:
    """A report holding only this figure: the rest of gather's content is
    other indicators' (their own tests render it)."""
    words = {key: entry[lang] for key, entry in labels.REPORT.items()}
    empty: tuple[()] = ()
    return ReportContent(
        lang=lang, year=2026, synthetic=False, title="", words=words, cover=empty,
        summary=empty, sections=empty, references=empty, unsettled=empty,
        not_by_probes=empty, below_floor=empty, site_counts=empty, ward_counts=empty,
        validity=empty, baseline=empty, method=empty, exclusions=empty, ipv6=ipv6,
    )  # fmt: skip


def test_the_yearly_report_shows_the_isps_and_the_rank(
    small_store: duckdb.DuckDBPyConnection,
) -> None:
    ref = compute_indicators(small_store, parse_period("2026")).ipv6_reference
    vi = ipv6_comparison(ref, "vi")
    assert vi is not None
    rows = {r.isp: r for r in vi.isps}
    assert (rows["VNPT"].probes_share, rows["VNPT"].network, rows["VNPT"].apnic_share) == (
        "75,0 %",
        "AS45899",
        "61,2 %",
    )
    assert rows["Viettel"].probes_share == "chưa đủ dữ liệu"
    html = render_html(_report_with(vi, "vi"))
    text = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))
    assert "Chuyển đổi IPv6: Cần Thơ bên cạnh số liệu đã công bố" in text
    assert "hạng 3/6 tỉnh, thành có số liệu (đồng hạng với 1 tỉnh, thành khác)" in text
    assert "APNIC, cả nước Việt Nam: 60,4 % (ngày 01/06/2026)." in text
    assert "Dịch vụ của thành phố sẵn sàng IPv6 hoàn toàn: chưa đo." in text
    assert "VNPT 75,0 %" in text and "AS45899 61,2 %" in text
    english = ipv6_comparison(ref, "en")
    assert english is not None
    assert [r.rank for r in english.ranks] == [
        "rank 3 of 6 provinces with figures (tied with 1 other)",
        "rank 3 of 3 provinces with figures",
    ]
    assert english.verdict_text == "Met"

"""Synthetic results with known per-ward distributions, for tests and benchmarks.

Everything is generated inside DuckDB (`generate_series` and a seeded hash
per row and draw), so 50 million rows take seconds, not a Python loop, and
the same seed gives the same rows whatever the number of DuckDB threads
(`random()` after `setseed` is only reproducible on one thread). Every row
has `synthetic = true`; the generator refuses a store that holds real
results unless told to mix, and the indicators never mix the two. Like
ingest (aggregator/ingest/store.py), it enters every result's id in
`result_ids`, the one index of ids over all tables, in the same transaction as the
rows: a synthetic id names one result in the whole store, and a probe's
result sent with it later is a duplicate, not a second row. A generation is
all or nothing.

The model, per ward (`WardSpec`):
- fixed-line probes: an ISP by turn from `fixed_isps` (None: not recorded);
  a line of `gigabit_share` probability at 1 Gb/s, else 300 Mb/s; with
  probability `slow_port_share` the probe's port negotiated 100 Mb/s
  (probe-limited); the line's advertised plan is 1000/1000 Mb/s for a
  gigabit line, else 300/300, not recorded for every fifth probe (by ward
  code + number); with probability `underdelivering_share` the line delivers
  only 70 % of its rate (below QCVN 34's 0.8 × plan); each download and
  upload is the line rate (capped at 95 % of the port) times a uniform
  factor in [0.80, 0.98);
- mobile probes: an operator by turn from `operators`; a 4G-only modem with
  probability `lte_only_modem_share`; each observation and download is on NR
  with probability `nr_share` (5G modems only); download = the technology's
  median (`lte_mbps`, `nr_mbps`) times exp(0.3 z), z standard normal; an
  upload a quarter of that; one NR test in twenty ends on LTE (radio changed
  mid-test); a latency test is on NR with the same probability `nr_share`;
- a share `invalid_share` of every table's rows is invalid, by turn: failed,
  clock not synchronised, cross-traffic (throughput) or too short (throughput);
- idle latency = the probe's base (`idle_rtt_ms` times a uniform factor in
  [0.8, 1.2)) times a uniform factor in [0.9, 1.1); loaded = 3 × idle;
- IPv6: a probe's line has IPv6 with probability `ipv6_share`; its checks
  then pass (and prefer IPv6) 95 % of the time, otherwise never;
- population: each ward of the spec gets its made-up 2025 population
  (analysis/population.py: about 3.2 million people over the 103 wards, the
  same in every synthetic store), source "synthetic (wardprobe demo)",
  marked synthetic, for nr_population_share.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from analysis.population import write_synthetic


@dataclass(frozen=True)
class WardSpec:
    """The known distributions of one ward's synthetic probes."""

    ward_code: int
    fixed_probes: int = 4
    mobile_probes: int = 4
    site_class: str = "household"
    gigabit_share: float = 0.5
    slow_port_share: float = 0.0
    lte_mbps: float = 40.0
    nr_mbps: float = 150.0
    nr_share: float = 0.5
    lte_only_modem_share: float = 0.0
    ipv6_share: float = 0.5
    idle_rtt_ms: float = 20.0
    operators: tuple[str, ...] = ("Viettel", "VNPT", "MobiFone")
    # the fixed lines' ISPs, by turn; None: the probe's ISP is not recorded
    fixed_isps: tuple[str | None, ...] = ("VNPT", "Viettel", "FPT Telecom", None)
    nr_cells: int = 3
    lte_cells: int = 6
    # fixed lines that deliver 70 % of their plan (below QCVN 34's 80 %)
    underdelivering_share: float = 0.2


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate: the wards, the period and how many rows per table."""

    wards: tuple[WardSpec, ...]
    start: datetime
    end: datetime
    throughput_rows: int
    latency_rows: int
    cellular_rows: int
    ipv6_rows: int
    invalid_share: float = 0.05
    # Multiplies every mobile download (e.g. 0.5 for a 2024 at half the speed).
    mobile_speed_factor: float = 1.0
    seed: int = 1
    operators_mcc_mnc: dict[str, str] = field(
        default_factory=lambda: {"Viettel": "45204", "VNPT": "45202", "MobiFone": "45201"}
    )


def city_spec(
    rows: int, year: int = 2026, seed: int = 2026, mobile_speed_factor: float = 1.0
) -> SyntheticSpec:
    """All of Cần Thơ's wards over one local year, `rows` results in the mix of
    a city's day (latency most often, then throughput, radio, IPv6): 5 fixed
    and 5 mobile probes a ward, every tenth ward an industrial zone and every
    tenth from the sixth a ward office (its People's Committee: the IPv6
    office indicator's LANs, its fixed lines), gigabit,
    5G and IPv6 shares that vary from ward to ward (known, so the indicators
    can be checked against them)."""
    from analysis.wards import can_tho_wards

    wards = tuple(
        WardSpec(
            code,
            fixed_probes=5,
            mobile_probes=5,
            site_class=(
                "industrial_zone" if n % 10 == 0 else "ward_office" if n % 10 == 5 else "household"
            ),
            gigabit_share=0.3 + 0.6 * (n % 7) / 6,
            slow_port_share=0.1,
            nr_share=0.1 + 0.8 * (n % 5) / 4,
            lte_only_modem_share=0.1,
        )
        for n, code in enumerate(sorted(can_tho_wards()))
    )
    # Midnight in Cần Thơ (UTC+7) is 17:00 UTC the day before.
    return SyntheticSpec(
        wards=wards,
        start=datetime(year - 1, 12, 31, 17, tzinfo=UTC),
        end=datetime(year, 12, 31, 17, tzinfo=UTC),
        throughput_rows=rows * 30 // 100,
        latency_rows=rows * 50 // 100,
        cellular_rows=rows * 16 // 100,
        ipv6_rows=rows * 4 // 100,
        mobile_speed_factor=mobile_speed_factor,
        seed=seed,
    )


class MixingRefused(RuntimeError):
    """The store holds real results and mixing was not asked for."""


def _probe_rows(spec: SyntheticSpec) -> list[tuple[object, ...]]:
    """One row per synthetic probe with its drawn parameters (seeded, small)."""
    rng = random.Random(spec.seed)
    rows: list[tuple[object, ...]] = []
    for ward in spec.wards:
        for kind, count in (("fixed", ward.fixed_probes), ("mobile", ward.mobile_probes)):
            for n in range(count):
                probe_id = f"synthetic-{ward.ward_code}-{kind}-{n}"
                line_mbps = 1000.0 if rng.random() < ward.gigabit_share else 300.0
                port_mbps = 100.0 if rng.random() < ward.slow_port_share else 1000.0
                modem_5g = rng.random() >= ward.lte_only_modem_share
                operator = ward.operators[n % len(ward.operators)]
                isp = ward.fixed_isps[n % len(ward.fixed_isps)] if kind == "fixed" else None
                # drawn apart from `rng`, so that the draws above stay as they were
                own = random.Random(f"{spec.seed}-{probe_id}")
                delivered = 0.7 if own.random() < ward.underdelivering_share else 1.0
                plan_known = kind == "fixed" and (ward.ward_code + n) % 5 != 4
                plan_mbps = line_mbps if plan_known else None
                rows.append(
                    (
                        probe_id,
                        ward.ward_code,
                        ward.site_class,
                        kind,
                        line_mbps,
                        port_mbps,
                        modem_5g,
                        operator,
                        spec.operators_mcc_mnc.get(operator, "45299"),
                        ward.lte_mbps * spec.mobile_speed_factor,
                        ward.nr_mbps * spec.mobile_speed_factor,
                        ward.nr_share if modem_5g else 0.0,
                        rng.random() < ward.ipv6_share,
                        ward.idle_rtt_ms * (0.8 + 0.4 * rng.random()),
                        ward.nr_cells,
                        ward.lte_cells,
                        isp,
                        plan_mbps,
                        plan_mbps,
                        delivered,
                    )
                )
    return rows


_PROBE_COLUMNS = (
    "probe_id varchar, ward_code integer, site_class varchar, kind varchar, "
    "line_mbps double, port_mbps double, modem_5g boolean, operator_name varchar, "
    "mcc_mnc varchar, lte_mbps double, nr_mbps double, nr_share double, "
    "has_ipv6 boolean, idle_rtt_ms double, nr_cells integer, lte_cells integer, isp varchar, "
    "plan_down_mbps double, plan_up_mbps double, delivered double"
)

# A result's id, from its row index i, the generation's salt and its table
# (so that row i of two tables has two ids: an id names one result in the
# store): a UUIDv7 as a probe makes them, its time (first 48 bits, unix ms) a
# draw within the generation's period, the rest hashed (version 7, variant 10).
_RESULT_ID = (
    "(printf('%012x', {start_ms} + ((hash(i, {salt}, '{table}', 100) >> 11) % {span_ms}))"
    " || '7' || printf('%03x', hash(i, {salt}, '{table}', 101) & 4095)"
    " || printf('%016x', (hash(i, {salt}, '{table}', 102) & 4611686018427387903)"
    " | 9223372036854775808))::uuid"
)

# Columns every synthetic result shares; {u} draws are by row index i.
_ENVELOPE = """
    {result_id} as result_id,
    probe_id,
    ward_code,
    now() as received_at,
    'synthetic' as agent_version,
    case when kind = 'fixed' then 'eth0' else 'wwan0' end as interface,
    kind as network_kind,
    'ipv4' as ip_family,
    case when invalid and reason = 1 then 'unsynchronised' else 'synchronised' end as clock_sync,
    case when invalid and reason = 0 then 'failed' else 'ok' end as status,
    case when invalid and reason = 0 then 'synthetic failure' end as status_reason,
    true as synthetic
"""


def generate(con: duckdb.DuckDBPyConnection, spec: SyntheticSpec, *, mix: bool = False) -> None:
    """Write the synthetic probes and results into the store on `con`.

    Raises MixingRefused if the store holds real results and `mix` is false.
    Probes already there (same ward, kind and number) are kept, so two calls
    with different periods describe the same probes. One transaction: on an
    error (the same spec generated twice: its ids are stored already) the
    store is left as it was.
    """
    real = con.execute(
        "select (select count(*) from throughput where not synthetic)"
        " + (select count(*) from latency where not synthetic)"
        " + (select count(*) from cellular where not synthetic)"
        " + (select count(*) from ipv6 where not synthetic)"
    ).fetchone()
    if real is not None and int(real[0]) > 0 and not mix:
        raise MixingRefused(
            f"the store holds {int(real[0])} real results; synthetic rows would sit beside "
            "them (marked synthetic = true). Pass mix=True to do it anyway."
        )
    con.execute("begin transaction")
    try:
        _generate(con, spec)
        con.execute("commit")
    except BaseException:
        # A commit that failed has ended the transaction: nothing to roll back.
        with contextlib.suppress(duckdb.TransactionException):
            con.execute("rollback")
        raise


def _generate(con: duckdb.DuckDBPyConnection, spec: SyntheticSpec) -> None:
    con.execute(f"create or replace temp table syn_probe ({_PROBE_COLUMNS})")
    con.executemany(
        "insert into syn_probe values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        _probe_rows(spec),
    )
    con.execute(
        "insert or ignore into probes (probe_id, ward_code, site_class, hostname, agent_version,"
        " enrolled_at, cert_state, isp, plan_down_mbps, plan_up_mbps) select probe_id,"
        " ward_code, site_class, 'synthetic', 'synthetic', ?, 'active', isp, plan_down_mbps,"
        " plan_up_mbps from syn_probe",
        [spec.start],
    )
    write_synthetic(con, [w.ward_code for w in spec.wards])
    salt = spec.seed * 1_000_003 + int(spec.start.timestamp())
    # u(i, k): the k-th uniform draw [0, 1) of row i, from a hash (reproducible).
    con.execute(
        f"create or replace temp macro u(i, k) as "
        f"(hash(i, k, {salt}) >> 11)::double / 9007199254740992.0"
    )
    con.execute(
        "create or replace temp table syn_index as "
        "select row_number() over (order by kind, probe_id) - 1 as n, * from syn_probe"
    )
    start, span_s = spec.start, (spec.end - spec.start).total_seconds()
    start_ms = int(start.timestamp() * 1000)
    for table, insert in (
        ("throughput", _throughput),
        ("latency", _latency),
        ("cellular", _cellular),
        ("ipv6", _ipv6),
    ):
        result_id = _RESULT_ID.format(
            salt=salt, table=table, start_ms=start_ms, span_ms=max(1, int(span_s * 1000))
        )
        envelope = _ENVELOPE.format(result_id=result_id)
        rows = insert(con, spec, envelope, start, span_s)
        # The rows are i = 0..rows-1 (_rows): their ids again, from the same expression.
        ids = f"select {result_id} as id from range({rows}) g(i)"
        # result_ids has no key (aggregator/ingest/store.py): ids stored
        # already (the same spec generated twice) are looked for here.
        clash = con.execute(
            f"select count(*) from result_ids where result_id in ({ids})"
        ).fetchone()
        if clash is not None and clash[0]:
            raise duckdb.ConstraintException(
                f"{clash[0]} of the synthetic {table} results' ids are stored already "
                "(the same spec generated twice?)"
            )
        # Ordered (their times are drawn, not in row order): the ingest's
        # lookup skips row groups by their ids' range (their zone maps).
        con.execute(f"insert into result_ids select id, '{table}' from ({ids}) order by id")
    con.execute("drop table syn_index")
    con.execute("drop table syn_probe")


def _rows(kind_filter: str, count: int, invalid_share: float) -> str:
    """Rows i = 0..count-1, each on a probe by turn, with the row's invalid flag
    (none when no probe is of the kind)."""
    return f"""
        with pr as (
            select row_number() over (order by n) - 1 as m, *
            from syn_index where {kind_filter}
        ),
        np as (select count(*) as probes from pr),
        r as (
            select i, i % np.probes as m, i // np.probes as j, np.probes,
                   u(i, 1) < {invalid_share} as invalid,
                   -- which way an invalid row is invalid (0..3)
                   (hash(i, 9) % 4)::int as reason
            from generate_series(0, {count} - 1) g(i), np
            where np.probes > 0
        )
    """


def _throughput(
    con: duckdb.DuckDBPyConnection, spec: SyntheticSpec, envelope: str, start: datetime, span: float
) -> int:
    if spec.throughput_rows <= 0:
        return 0
    con.execute(
        _rows("true", spec.throughput_rows, spec.invalid_share)
        + f""",
        d as (
            select r.*, p.*,
                   -- seconds into the period
                   u(i, 2) * {span} as offset_s,
                   -- on NR for this test? (mobile; 5G modems only)
                   u(i, 3) < p.nr_share as on_nr,
                   -- standard normal (Box-Muller)
                   sqrt(-2 * ln(1 - u(i, 4))) * cos(2 * pi() * u(i, 5)) as z,
                   case when u(i, 8) < 0.5 then 'download' else 'upload' end as direction,
                   -- an NR test whose radio fell back to LTE before it ended
                   u(i, 9) < 0.05 as fell_back
            from r join pr p using (m)
        ),
        t as (
            select d.*,
                   case when kind = 'fixed'
                        -- Mb/s: the line, capped by the port, times [0.80, 0.98)
                        then least(line_mbps * delivered, 0.95 * port_mbps)
                            * (0.80 + 0.18 * u(i, 6))
                        -- mobile uploads: a quarter of the downloads
                        else (case when on_nr then nr_mbps else lte_mbps end) * exp(0.3 * z)
                            * (case when direction = 'upload' then 0.25 else 1.0 end)
                        end as rate_mbps,
                   case when invalid and reason = 3 then 1.0 else 8.0 end as secs
            from d
        )
        insert into throughput by name
        select {envelope},
            ?::timestamptz + to_microseconds((offset_s * 1e6)::bigint) as measured_at,
            'iperf3' as tool, 'synthetic' as tool_version, '198.18.0.1' as server,
            5201 as server_port, 10.0 as duration_s, 4 as streams,
            direction,
            rate_mbps as mbps,
            -- megabits per second x seconds -> bytes
            (rate_mbps * 1e6 / 8 * secs)::ubigint as bytes_transferred,
            secs as measured_s, 2.0 as omitted_s,
            case when kind = 'fixed' then port_mbps end as link_speed_mbps,
            1500 as mtu,
            idle_rtt_ms as idle_rtt_median_ms,
            3 * idle_rtt_ms as loaded_rtt_median_ms,
            4 * idle_rtt_ms as loaded_rtt_p95_ms,
            -- bytes per second of other traffic: 1 MB/s on the flagged rows
            case when invalid and reason = 2 then 1e6 else 0.0 end as cross_traffic_bytes_per_s,
            10.0 as cpu_load_pct,
            case when kind = 'mobile' then (case when on_nr then 'nr5g_nsa' else 'lte' end)
                end as access_tech,
            case when kind = 'mobile' then (case when on_nr and not fell_back then 'nr5g_nsa'
                else 'lte' end) end as access_tech_end,
            case when kind = 'mobile' then mcc_mnc end as mcc_mnc,
            case when kind = 'mobile' then operator_name end as operator_name
        from t
        """,
        [start],
    )
    return _inserted(con)


def _latency(
    con: duckdb.DuckDBPyConnection, spec: SyntheticSpec, envelope: str, start: datetime, span: float
) -> int:
    if spec.latency_rows <= 0:
        return 0
    con.execute(
        _rows("true", spec.latency_rows, spec.invalid_share)
        + f"""
        insert into latency by name
        select {envelope},
            ?::timestamptz + to_microseconds((u(i, 2) * {span} * 1e6)::bigint) as measured_at,
            'icmp' as tool, '198.18.0.1' as server,
            'icmp' as protocol, '198.18.0.1' as target,
            10 as packets_sent, 10 as packets_received,
            -- milliseconds
            idle_rtt_ms * (0.9 + 0.2 * u(i, 3)) as rtt_median_ms,
            idle_rtt_ms * 0.8 as rtt_min_ms,
            idle_rtt_ms * 1.5 as rtt_p95_ms,
            idle_rtt_ms * 2.0 as rtt_max_ms,
            1.0 as jitter_ms, 0.0 as loss_pct,
            case when kind = 'mobile' then (case when u(i, 4) < nr_share then 'nr5g_nsa'
                else 'lte' end) end as access_tech,
            case when kind = 'mobile' then mcc_mnc end as mcc_mnc,
            case when kind = 'mobile' then operator_name end as operator_name
        from r join pr using (m)
        """,
        [start],
    )
    return _inserted(con)


def _cellular(
    con: duckdb.DuckDBPyConnection, spec: SyntheticSpec, envelope: str, start: datetime, span: float
) -> int:
    if spec.cellular_rows <= 0:
        return 0
    con.execute(
        _rows("kind = 'mobile'", spec.cellular_rows, spec.invalid_share)
        + f""",
        c as (
            select r.*, p.*,
                   -- observations of one probe are evenly spaced: seconds between them
                   {span} / ceil({spec.cellular_rows} / probes) as step_s,
                   u(i, 3) < p.nr_share as on_nr
            from r join pr p using (m)
        )
        insert into cellular by name
        select {envelope},
            ?::timestamptz + to_microseconds((j * step_s * 1e6)::bigint) as measured_at,
            'modemmanager' as tool,
            case when on_nr then 'nr5g_nsa' else 'lte' end as access_tech,
            mcc_mnc, operator_name,
            -- as the modems report NSA: the LTE anchor's band, the 5G leg's beside it
            3 as band,
            case when on_nr then 78 end as nr_band,
            -- an LTE cell from the ward's pool (hex identity): the serving cell,
            -- or an NSA connection's anchor
            printf('%x', ward_code * 1000 + 500 + (hash(i, 7) % lte_cells)::int) as cell_id,
            -- an NSA connection's 5G leg: a cell of the ward's NR pool, known
            -- by its NR-ARFCN and physical cell id (NSA reports no NR cell id)
            case when on_nr then 650016 end as nr_channel,
            case when on_nr then (hash(i, 11) % nr_cells)::int end as nr_pci,
            -95.0 as rsrp_dbm, 'home' as registration_state, 'synthetic modem' as modem_model,
            modem_5g as modem_5g_capable, 'modemmanager' as backend
        from c
        """,
        [start],
    )
    return _inserted(con)


def _ipv6(
    con: duckdb.DuckDBPyConnection, spec: SyntheticSpec, envelope: str, start: datetime, span: float
) -> int:
    if spec.ipv6_rows <= 0:
        return 0
    con.execute(
        _rows("true", spec.ipv6_rows, spec.invalid_share)
        + f""",
        c as (
            select r.*, p.*, has_ipv6 and u(i, 3) < 0.95 as works
            from r join pr p using (m)
        )
        insert into ipv6 by name
        select {envelope},
            ?::timestamptz + to_microseconds((u(i, 2) * {span} * 1e6)::bigint) as measured_at,
            'wardprobe-ipv6' as tool,
            works as has_global_address, works as has_default_route, works as aaaa_resolves,
            works as ipv6_only_tcp_ok, works as large_packet_ok,
            case when works then 'ipv6' else 'ipv4' end as dual_stack_family,
            works as ipv6_capable, works as ipv6_preferred
        from c
        """,
        [start],
    )
    return _inserted(con)


def _inserted(con: duckdb.DuckDBPyConnection) -> int:
    """How many rows the insert just run on `con` stored (DuckDB answers an
    insert with their count)."""
    row = con.fetchone()
    return 0 if row is None else int(row[0])

"""The commands and a lake: `migrate` moves an embedded store into one,
nothing lost, nothing doubled, counted per table, a rerun copies nothing;
`indicators` read the config's lake as they read a file; `backup` and
`restore` refuse one and say how it is backed up."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from aggregator.cli import app
from aggregator.ingest.lake import LakeStore, connect_lake
from aggregator.ingest.store import Store
from aggregator.ingest.stores import LakeSpec, parse_store_spec
from analysis.baseline import BaselineRow, import_rows
from analysis.synthetic import SyntheticSpec, WardSpec, generate
from tests.aggregator.conftest import assert_close

TABLES = ("throughput", "latency", "cellular", "ipv6", "probes", "baseline")


def _embedded(path: Path) -> dict[str, int]:
    store = Store(path)
    generate(
        store._con,
        SyntheticSpec(
            wards=(WardSpec(31117, fixed_probes=2, mobile_probes=2),),
            start=datetime(2026, 1, 1, tzinfo=UTC),
            end=datetime(2026, 3, 1, tzinfo=UTC),
            throughput_rows=300,
            latency_rows=200,
            cellular_rows=200,
            ipv6_rows=50,
        ),
    )
    import_rows(
        store._con,
        [BaselineRow("city", None, 2024, "mobile", None, "median", 30.0, 1000, "VNNIC i-Speed")],
    )
    store.close()
    with duckdb.connect(str(path), read_only=True) as con:
        return {t: int(con.execute(f"select count(*) from {t}").fetchone()[0]) for t in TABLES}  # type: ignore[index]


def _table(output: str) -> dict[str, list[int]]:
    rows = [line.split() for line in output.splitlines()[1:] if line.strip()]
    return {row[0]: [int(n) for n in row[1:]] for row in rows}


def test_migrate_copies_every_row_once_and_a_rerun_copies_nothing(
    tmp_path: Path, lake_spec: str
) -> None:
    source = tmp_path / "city.duckdb"
    counts = _embedded(source)
    spec = parse_store_spec(lake_spec)
    assert isinstance(spec, LakeSpec)
    # One result reached the lake already (a replica took it): it is not copied again.
    with duckdb.connect(str(source), read_only=True) as con:
        early = con.execute("select * from latency limit 1").to_arrow_table()
    lake = LakeStore(spec)
    assert lake.insert_new_results({"latency": early})["latency"].tolist() == [True]
    lake.close()
    argv = ["migrate", "--from", f"duckdb:{source}", "--to", lake_spec]

    first = CliRunner().invoke(app, argv)
    again = CliRunner().invoke(app, argv)

    assert first.exit_code == 0, first.output
    moved = _table(first.output)
    # source, copied, already, lake, missing, doubled
    assert moved["latency"] == [
        counts["latency"],
        counts["latency"] - 1,
        1,
        counts["latency"],
        0,
        0,
    ]
    for table in ("throughput", "cellular", "ipv6", "probes", "baseline"):
        assert moved[table] == [counts[table], counts[table], 0, counts[table], 0, 0], table
    assert again.exit_code == 0, again.output
    for table, (source_rows, copied, already, lake_rows, _, _) in _table(again.output).items():
        assert (copied, already, lake_rows) == (0, source_rows, moved[table][3]), table
    analyst = connect_lake(spec, read_only=True)
    results = sum(counts[t] for t in ("throughput", "latency", "cellular", "ipv6"))
    assert analyst.execute("select count(*) from result_ids").fetchone() == (results,)
    analyst.close()


def test_migrate_refuses_a_lake_as_its_source(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["migrate", "--from", "ducklake:postgres://h/db?data_path=/x", "--to", "duckdb:/y"],
    )
    assert result.exit_code == 2
    assert "--from must be duckdb:FILE" in result.output


def test_backup_and_restore_refuse_a_lake_and_say_where_its_backup_is(tmp_path: Path) -> None:
    config = tmp_path / "aggregator.toml"
    config.write_text(
        f'state_dir = "{tmp_path}"\n'
        'store = "ducklake:postgres://w@db.example/lake?data_path=/srv/lake"\n',
        "utf-8",
    )
    for argv in (
        ["backup", "--out", str(tmp_path / "out"), "--config", str(config)],
        ["restore", "--from", str(tmp_path), "--config", str(config)],
    ):
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 2, result.output
        assert "pg_dump of its catalogue" in result.output


def test_indicators_read_the_configs_lake_as_they_read_the_file(
    tmp_path: Path, lake_spec: str
) -> None:
    source = tmp_path / "city.duckdb"
    _embedded(source)
    assert CliRunner().invoke(app, ["migrate", "--from", f"duckdb:{source}", "--to", lake_spec])
    config = tmp_path / "aggregator.toml"
    config.write_text(f"state_dir = {str(tmp_path)!r}\nstore = {lake_spec!r}\n", "utf-8")
    common = ["indicators", "--period", "2026", "--synthetic", "--format", "json"]

    on_lake = CliRunner().invoke(app, [*common, "--config", str(config)])
    on_file = CliRunner().invoke(app, [*common, "--store", str(source)])

    assert on_lake.exit_code == 0, on_lake.output
    assert on_file.exit_code == 0, on_file.output
    assert_close(json.loads(on_lake.output), json.loads(on_file.output))

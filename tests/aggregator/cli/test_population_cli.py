"""`wardprobe-aggregator population import FILE.csv`, as a user runs it: a
whole city imported and imported again, wards left out listed (or refused
with --require-all), bad lines refused naming each."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from aggregator.cli import app
from analysis.wards import can_tho_wards

runner = CliRunner()
HEADER = "ward_code,population,year,source\n"
SOURCE = "Cục Thống kê Cần Thơ, niên giám 2025"


def _city_csv(path: Path, people: int, leave_out: int = 0) -> list[int]:
    """A file with every ward but the last `leave_out`; returns the wards left out."""
    codes = sorted(can_tho_wards())
    kept, left = codes[: len(codes) - leave_out], codes[len(codes) - leave_out :]
    path.write_text(HEADER + "".join(f'{c},{people},2025,"{SOURCE}"\n' for c in kept), "utf-8")
    return left


def _stored(store: Path) -> list[tuple[int, int, int]]:
    with duckdb.connect(str(store), read_only=True) as con:
        return [
            (int(r[0]), int(r[1]), int(r[2]))
            for r in con.execute(
                "select count(*), sum(population), count(distinct source) "
                "from ward_population where year = 2025 and not synthetic"
            ).fetchall()
        ]


def test_a_whole_city_is_imported_and_a_second_import_replaces_it(tmp_path: Path) -> None:
    store, file = tmp_path / "store.duckdb", tmp_path / "population.csv"
    _city_csv(file, 30_000)
    result = runner.invoke(app, ["population", "import", str(file), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "imported 103 ward populations for 2025 (3,090,000 people)" in result.output
    assert "without a population" not in result.output
    assert _stored(store) == [(103, 3_090_000, 1)]
    _city_csv(file, 31_000)
    assert (
        runner.invoke(app, ["population", "import", str(file), "--store", str(store)]).exit_code
        == 0
    )
    assert _stored(store) == [(103, 103 * 31_000, 1)]


def test_wards_left_out_are_listed_and_the_rest_imported(tmp_path: Path) -> None:
    store, file = tmp_path / "store.duckdb", tmp_path / "population.csv"
    left = _city_csv(file, 30_000, leave_out=3)
    result = runner.invoke(app, ["population", "import", str(file), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "3 wards of the city without a population for 2025:" in result.output
    wards = can_tho_wards()
    for code in left:
        assert f"  {code} {wards[code].name}" in result.output
    assert _stored(store) == [(100, 3_000_000, 1)]


def test_require_all_refuses_a_file_that_leaves_wards_out(tmp_path: Path) -> None:
    store, file = tmp_path / "store.duckdb", tmp_path / "population.csv"
    [left] = _city_csv(file, 30_000, leave_out=1)
    result = runner.invoke(
        app, ["population", "import", str(file), "--store", str(store), "--require-all"]
    )
    assert result.exit_code == 1
    assert f"  {left} " in result.output and "nothing imported" in result.output
    assert not store.exists()


def test_bad_lines_are_named_and_nothing_is_imported(tmp_path: Path) -> None:
    store, file = tmp_path / "store.duckdb", tmp_path / "bad.csv"
    file.write_text(
        HEADER
        + "31120,25000,2025,GSO\n"  # line 2: good
        + "99999,25000,2025,GSO\n"  # line 3: no ward of Cần Thơ
        + "31135,25.000,2025,GSO\n"  # line 4: not a whole number
        + "31147,0,2025,GSO\n"  # line 5: nobody
        + "31120,26000,2025,GSO\n"  # line 6: 31120 again
        + "31150,25000,2025,\n",  # line 7: no source
        "utf-8",
    )
    result = runner.invoke(app, ["population", "import", str(file), "--store", str(store)])
    assert result.exit_code == 1
    messages = {int(m[0]): m[1] for m in re.findall(r"bad\.csv:(\d+): (.*)", result.output)}
    assert messages == {
        3: "ward_code 99999 is not a ward of Cần Thơ",
        4: "population must be a whole number of people, at least 1, got '25.000'",
        5: "population must be a whole number of people, at least 1, got '0'",
        6: "ward 31120 has a population for 2025 already, on line 2",
        7: "source must say who counted the population",
    }
    assert "nothing imported: 5 bad lines" in result.output
    assert not store.exists()

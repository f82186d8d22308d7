"""aggregator.toml's `store` and `serve --store`: one store, named one way."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from aggregator.config import AggregatorConfig, EmbeddedSpec, LakeSpec

LAKE = "ducklake:postgres://ward@db.example/lake?sslmode=require&data_path=/srv/lake"


def test_duckdb_file_is_store_path_and_a_lake_is_named_with_its_data_path() -> None:
    embedded = AggregatorConfig.model_validate({"store": "duckdb:/srv/w.duckdb"})
    lake = AggregatorConfig.model_validate({"store": LAKE})

    assert embedded.store_path == Path("/srv/w.duckdb")
    assert embedded.store_spec == EmbeddedSpec(Path("/srv/w.duckdb"))
    assert lake.store_spec == LakeSpec(
        "postgres://ward@db.example/lake?sslmode=require", "/srv/lake"
    )
    assert AggregatorConfig().store_spec == EmbeddedSpec(AggregatorConfig().store_path)


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"store": "duckdb:/a", "store_path": "/b"}, "set store or store_path, not both"),
        ({"store": LAKE, "snapshot_path": "/s.duckdb"}, "snapshot_path is for the embedded store"),
        ({"store": "sqlite:/x"}, "unknown store"),
    ],
)
def test_a_store_named_twice_or_wrongly_is_refused(values: dict[str, str], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        AggregatorConfig.model_validate(values)


def test_the_command_lines_store_wins_over_the_files() -> None:
    from_file = AggregatorConfig.model_validate({"store_path": "/srv/w.duckdb", "latency_count": 5})

    served = from_file.with_store(LAKE)

    assert isinstance(served.store_spec, LakeSpec)
    assert served.latency_count == 5  # the rest of the file stays
    with pytest.raises(ValidationError, match="snapshot_path is for the embedded store"):
        AggregatorConfig.model_validate({"snapshot_path": "/s.duckdb"}).with_store(LAKE)

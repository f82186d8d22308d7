"""Raw rows for the tests' independent computations."""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np


def raw_columns(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, np.ndarray[Any, Any]]:
    """The query's result, one numpy array per column."""
    return {name: np.asarray(v) for name, v in con.execute(sql).fetchnumpy().items()}

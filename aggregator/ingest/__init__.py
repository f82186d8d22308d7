"""Results in: the mTLS ingest port's servicers (service.py), reading each
received batch into Arrow columns in worker processes (batch_reader.py),
validating and committing groups of batches (commit.py), the result tables
declared once (tables.py: each column's wire field and rules), the DuckDB
store and its DDL (store.py, schema.sql) and the analysts' read-only
snapshot (snapshot.py).

The process that serves these next to the enrolment port is
aggregator/central.py, one level up, because it needs both sub-packages.
"""

"""The central side of wardprobe: enrolment CA, gRPC ingest, DuckDB store."""

"""The read-only HTTP API for the city's Department of Science and
Technology (docs/api.md): FastAPI served by uvicorn over TLS with the
aggregator's server certificate, on a port of its own.

- app.py: the routes under /api/v1 (all GET) and the read-token check;
- tokens.py: the read tokens (`api-token create|list|revoke`), stored hashed;
- source.py: the snapshot it reads (read-only, re-opened when a new one is
  published), or on a lake the lake itself (read-only, as of a pinned
  committed snapshot), and the answers it keeps per version;
- server.py: uvicorn with TLS, stopped gracefully on SIGTERM
  (`wardprobe-aggregator api serve`), and the child process
  `wardprobe-aggregator serve` runs it in, so that rendering a map or a
  report never takes CPU time from ingest's event loop.

It imports analysis (the figures) and aggregator.config, never ingest or
enrolment (on a lake, aggregator.ingest.lake's attach alone, for the
extensions): an API host of its own needs only the snapshot (or access to
the lake), the tokens and the server certificate.
"""

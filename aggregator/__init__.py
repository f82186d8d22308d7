"""The central side of wardprobe, one sub-package per thing that runs apart.

- `aggregator.ingest`: the gRPC ingest and probe-config servicers, batch
  reading and validation, the DuckDB store and the analysts' snapshot;
- `aggregator.enrolment`: the private CA, the probe registry and the
  enrolment servicer;
- `aggregator.reference`: the reference measurement server (iperf3 pool,
  speedtest mini, TCP echo, DNS), which runs on a host of its own;
- `aggregator.cli`: `wardprobe-aggregator`, the command line of all three.

Here at the top sit only what spans ingest and enrolment, the two halves of
the central process: `config` (aggregator.toml configures both ports, the
state directory both read and what the config RPC hands out), `central`
(the process that serves both; the only code importing both sub-packages)
and `rich_status` (the google.rpc statuses both servicers refuse with).
The layers go one way: enrolment imports only rich_status, ingest also
enrolment's registry (a probe is identified by its certificate on every
batch) and config, central imports both, and cli whatever a command runs.
The reference server imports none of them.
"""

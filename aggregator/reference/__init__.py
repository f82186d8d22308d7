"""The reference measurement server, deployed on a host of its own near the
city's exchange: the iperf3 pool, TCP echo and DNS responder (server.py)
and the self-hosted Speedtest mini (speedtest_mini.py). It shares no code
with ingest or enrolment; `python -m aggregator.reference` runs its
command line alone.
"""

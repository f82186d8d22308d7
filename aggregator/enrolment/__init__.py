"""Probes in: the private CA (ca.py), the probe registry with its bootstrap
tokens and ward history (registry.py, SQLite; fixed_isps.csv the ISPs a
site may name) and the `Enrolment` servicer (service.py).

The lowest layer of the central site: it imports no other aggregator
sub-package, and ingest uses its registry to identify the probe behind
every batch.
"""

"""`python -m aggregator.reference` is `wardprobe-aggregator reference-server`
(the reference host runs only this)."""

from aggregator.cli.reference import reference_app

if __name__ == "__main__":
    reference_app(prog_name="python -m aggregator.reference")

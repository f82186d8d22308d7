"""`python -m aggregator` is `wardprobe-aggregator`."""

from aggregator.cli import app

if __name__ == "__main__":
    app(prog_name="wardprobe-aggregator")

"""wardprobe: shared pieces of the agent and the aggregator.

`wardprobe.v1` is generated from proto/wardprobe/v1/*.proto by
`make proto`; do not edit it by hand.
"""

__version__ = "0.1.0"

"""What a result's text may be: the one statement of the limit.

The aggregator refuses a text field longer than `MAX_TEXT_CHARS` characters
(aggregator/ingest/batch_reader.py, `IngestLimits`), and the agent cuts its
own texts (a failure's reason with a tool's error in it) to the same length
before they leave it (agent/wire.py), so that a result is never refused for
what the agent wrote itself. The number is here because this package is the
one both sides install.
"""

from __future__ import annotations

# Characters (Unicode code points, as DuckDB's and Arrow's length count them),
# not bytes: long enough for any reason a tool gives, short enough that a
# result stays a small row.
MAX_TEXT_CHARS = 512

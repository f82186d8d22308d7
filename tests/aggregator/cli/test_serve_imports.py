"""What `serve` loads: the ingest process's resident floor is its imports."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# Modules the HTTP API needs and ingest does not: FastAPI, the analysis code
# (scipy) behind the indicators, about 70 MiB resident together.
API_ONLY = ("fastapi", "scipy", "aggregator.api.app", "analysis.indicators")


def test_serve_without_an_api_loads_neither_fastapi_nor_the_analysis_code(
    tmp_path: Path,
) -> None:
    # serve's own code up to the servers, with the servers swapped for a
    # stand-in that reports what the process has loaded by then.
    script = textwrap.dedent(
        f"""
        import sys
        import aggregator.central

        async def stand_in(settings):
            print(sorted(m for m in {API_ONLY!r} if m in sys.modules))

        aggregator.central.serve = stand_in
        from aggregator.cli.serve import serve
        serve(config=None)
        """
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.strip()

    assert loaded == "[]"

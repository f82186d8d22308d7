"""A stand-in `mmcli` that prints recorded outputs (tests/fixtures/mmcli/).

The agent's ModemManager backend runs it exactly as it runs the real
client: a subprocess, its exit code, stdout and stderr. `script` maps
`mmcli` argument strings (without -J) to a fixture file name, or to an
error as mmcli prints it.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "mmcli"

_PROGRAM = """\
import json, sys, pathlib
here = pathlib.Path(__file__).parent
script = json.loads((here / "script.json").read_text())
key = " ".join(a for a in sys.argv[1:] if a != "-J")
(here / "calls.log").open("a").write(key + "\\n")
entry = script.get(key, {"exit": 1, "stderr": "error: couldn't find modem"})
if isinstance(entry, str):
    sys.stdout.write(pathlib.Path(entry).read_text())
    sys.exit(0)
sys.stdout.write(entry.get("stdout", ""))
sys.stderr.write(entry.get("stderr", ""))
sys.exit(entry.get("exit", 0))
"""


def install(directory: Path, script: dict[str, str | dict[str, object]]) -> str:
    """Write the stand-in into `directory`; its path, for `mmcli_command`."""
    directory.mkdir(parents=True, exist_ok=True)
    resolved = {
        key: str(FIXTURES / value) if isinstance(value, str) else value
        for key, value in script.items()
    }
    (directory / "script.json").write_text(json.dumps(resolved))
    program = directory / "mmcli"
    program.write_text(f"#!{sys.executable}\n{_PROGRAM}")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return str(program)


def update(directory: Path, script: dict[str, str | dict[str, object]]) -> None:
    """Change what the stand-in answers (the modem changed)."""
    install(directory, script)


def calls(directory: Path) -> list[str]:
    log = directory / "calls.log"
    return log.read_text().splitlines() if log.exists() else []

"""How the agent's processes are started and log: the options `python -m
agent.daemon` and `python -m agent.worker` take, and the log format.

Standard library only: the resident daemon imports it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def module_argv(
    module: str, config: Path | None, state_dir: Path | None, verbose: bool
) -> list[str]:
    """`python -m <module>` (agent.daemon, agent.worker) with the agent's options."""
    argv = [sys.executable, "-m", module]
    if config is not None:
        argv += ["--config", str(config)]
    if state_dir is not None:
        argv += ["--state-dir", str(state_dir)]
    if verbose:
        argv.append("--verbose")
    return argv


def agent_parser(module: str, description: str | None) -> argparse.ArgumentParser:
    """The options `module_argv` passes, for agent.daemon's and agent.worker's mains."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--state-dir", type=Path)
    parser.add_argument("--verbose", "-v", action="store_true")
    return parser


def log_to_stderr(verbose: bool) -> None:
    """The agent's log format, on stderr (systemd's journal takes it from there)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )

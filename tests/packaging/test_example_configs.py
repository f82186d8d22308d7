"""The example configs under packaging/ are what a technician copies: they
must load as they are, and document every key the code accepts."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from pydantic import BaseModel

from agent.config import AgentSettings, load_settings
from aggregator.config import AggregatorConfig, load_config

PACKAGING = Path(__file__).resolve().parents[2] / "packaging"


def _keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(prefix + name)
        annotation = field.annotation
        for candidate in getattr(annotation, "__args__", (annotation,)):
            inner = getattr(candidate, "__args__", (candidate,))
            for sub in inner:
                if isinstance(sub, type) and issubclass(sub, BaseModel):
                    keys |= _keys(sub, f"{prefix}{name}.")
    return keys


def _documented(text: str) -> set[str]:
    """Keys set or shown commented out, qualified by their [table]."""
    keys, table = set(), ""
    for line in text.splitlines():
        line = line.lstrip("# ").rstrip()
        if match := re.match(r"^\[\[?([a-z_]+)\]\]?$", line):
            table = match.group(1) + "."
            keys.add(match.group(1))
        elif match := re.match(r"^([a-z0-9_]+) = ", line):
            keys.add(table + match.group(1))
    return keys


def test_agent_example_loads_and_matches_the_defaults() -> None:
    path = PACKAGING / "agent.example.toml"
    assert load_settings(path) == AgentSettings()


def test_aggregator_example_loads_and_matches_the_defaults() -> None:
    path = PACKAGING / "aggregator.example.toml"
    assert load_config(path) == AggregatorConfig()


def test_every_agent_key_is_documented() -> None:
    text = (PACKAGING / "agent.example.toml").read_text("utf-8")
    assert _keys(AgentSettings) <= _documented(text)


def test_every_aggregator_key_is_documented() -> None:
    text = (PACKAGING / "aggregator.example.toml").read_text("utf-8")
    assert _keys(AggregatorConfig) <= _documented(text)


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "agent.toml"
    bad.write_text('state_dir = "/tmp/x"\nspool_size = 5\n')
    try:
        load_settings(bad)
    except ValueError as err:
        assert "spool_size" in str(err)
    else:
        raise AssertionError("a misspelt key must be an error, not silently ignored")
    assert tomllib.loads(bad.read_text())  # the file itself is valid TOML

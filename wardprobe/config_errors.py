"""A configuration file's problems in one line a person can act on.

pydantic's own text spans several lines per key and ends each in a URL;
tomllib's names a line and column. Both command lines (and the agent's
workers, which must not load typer) report a bad agent.toml or
aggregator.toml through `describe_config_error`.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from pydantic import ValidationError

# A given value longer than this is cut (a whole table can be the input).
_MAX_INPUT_CHARS = 40
# In a union's errors pydantic adds the member it tried to the location
# ("lax-or-strict[lax=function-plain[...]]"): not a key the file has.
_VALIDATOR_TAG = re.compile(r"[\[\]()]|^function-|^lax-or-strict|^json-or-python")


def describe_validation_error(err: ValidationError) -> str:
    """Each bad key with what is wrong and the value given, e.g.
    `upload.backoff_base_s: should be greater than 0 (got -1)`; "; " between keys."""
    problems: dict[str, list[str]] = {}
    for problem in err.errors(include_url=False):
        key = ""
        for part in problem["loc"]:
            if isinstance(part, int):
                key += f"[{part}]"
            elif not _VALIDATOR_TAG.search(part):
                key += f".{part}" if key else part
        kind = problem["type"]
        if kind == "extra_forbidden":
            text = "unknown key"
        elif kind == "missing":
            text = "missing (it has no default)"
        else:
            text = problem["msg"].removeprefix("Value error, ")
            text = text.removeprefix("Input ")  # "Input should be ...", "Input is not ..."
            given = repr(problem["input"])
            if len(given) > _MAX_INPUT_CHARS:
                given = given[: _MAX_INPUT_CHARS - 3] + "..."
            text += f" (got {given})"
        problems.setdefault(key or "the file", []).append(text)
    # A union (an IPv4 or an IPv6 address) fails once per member, on one key.
    return "; ".join(f"{key}: {', or '.join(texts)}" for key, texts in problems.items())


def describe_config_error(path: Path, err: Exception) -> str:
    """`path`: what is wrong with it, for a TOML syntax error, a validation
    error or a file that cannot be read."""
    if isinstance(err, ValidationError):
        return f"{path}: {describe_validation_error(err)}"
    if isinstance(err, tomllib.TOMLDecodeError):
        return f"{path} is not valid TOML: {err}"
    if isinstance(err, UnicodeDecodeError):
        return f"{path} is not UTF-8 text"
    if isinstance(err, OSError):
        return f"cannot read {path}: {err.strerror or err}"
    return f"{path}: {err}"

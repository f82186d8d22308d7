"""How both command lines (wardprobe-agent, wardprobe-aggregator) report an
error: one plain line on stderr, `error: ...`, at most one more saying what
to do, and an exit code from README.md's "Exit codes":

    0  done
    1  understood but refused or failed (unknown ward or probe, not enrolled,
       the aggregator refused the token, ...)
    2  an option, argument, configuration file or store that cannot be used
       as given (malformed, missing, unreadable); for the agent's `upload`
       and `once`, also: the aggregator could not be reached
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

EXIT_FAILED = 1
EXIT_USAGE = 2

# typer re-exports BadParameter but not its bases: UsageError (every
# malformed command line: unknown option, missing option, bad value) and
# ClickException (what the command-line layer itself reports).
_UsageError: type[Exception] = typer.BadParameter.__mro__[1]
_ClickException: type[Exception] = typer.BadParameter.__mro__[2]


def fail(message: str, hint: str | None = None, code: int = EXIT_FAILED) -> typer.Exit:
    """Print `error: message` (and the hint, what to do) on stderr; return the
    Exit to raise, so that the caller's `raise` shows where the command ends."""
    typer.echo(typer.style("error:", fg=typer.colors.RED) + f" {message}", err=True)
    if hint:
        typer.echo(hint, err=True)
    return typer.Exit(code=code)


def usage_error(message: str, hint: str | None = None) -> typer.Exit:
    """`fail` with exit code 2: an option, file or store that cannot be used as given."""
    return fail(message, hint, EXIT_USAGE)


class PlainErrors(TyperGroup):
    """A command group whose usage errors read like the commands' own: one
    `error:` line and where the help is, instead of typer's boxed panel."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; on a usage error, say it plainly and exit 2."""
        if not standalone_mode:
            return super().main(
                args, prog_name, complete_var, standalone_mode, windows_expand_args, **extra
            )
        try:
            # Not standalone: typer hands usage errors back instead of printing
            # its panel, and returns the code of a typer.Exit.
            returned = super().main(
                args, prog_name, complete_var, False, windows_expand_args, **extra
            )
        except _ClickException as err:
            _report(err)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(EXIT_FAILED)
        sys.exit(returned if isinstance(returned, int) else 0)


def _report(err: Exception) -> NoReturn:
    code = int(getattr(err, "exit_code", EXIT_FAILED))
    message = str(getattr(err, "format_message", lambda: str(err))())
    if type(err).__name__ == "NoArgsIsHelpError":
        # Run without arguments: the message is the help (typer's rich help
        # has printed itself already and left it empty).
        if message.strip():
            typer.echo(message, err=True)
        sys.exit(code)
    # Choices come one per line, and an enum's refusal with pydantic's
    # "Value error, " inside; the error stays on one line, in words.
    message = " ".join(message.replace("Value error, ", "").split())
    ctx = getattr(err, "ctx", None)
    hint = None
    if isinstance(err, _UsageError) and ctx is not None:
        hint = f"(`{ctx.command_path} --help` lists what it takes)"
    fail(message, hint, code)
    sys.exit(code)

"""Consoles for command output: tables that never cut a name or a number.

On a terminal rich fits tables to its width (folding cells, never eliding). In a pipe or a file
rich assumes 80 columns and elides cells ("gemm…", "0.60…"): there we give it room enough
that every table is printed at its natural width, as plain aligned text without colour."""

from __future__ import annotations

import sys

from rich.console import Console

from . import quiet

# Not a terminal: wide enough for any table we print (rich pads nothing it does not need).
PIPE_WIDTH = 10_000


def console(stderr: bool = False, *, result: bool = False) -> Console:
    """A console for stdout (or stderr). ``result=False`` output (tables, summaries) is
    dropped under ``--quiet``; pass ``result=True`` for what a command exists to print."""
    stream = sys.stderr if stderr else sys.stdout
    hush = quiet.is_quiet() and not result
    if stream.isatty():
        return Console(stderr=stderr, quiet=hush)
    return Console(stderr=stderr, quiet=hush, width=PIPE_WIDTH, no_color=True,
                   highlight=False, soft_wrap=False)

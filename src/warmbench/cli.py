"""The ``warmbench`` command line. Each command lives in ``warmbench.commands.<name>``
and registers itself; this module only assembles them and turns user errors into one line."""

from __future__ import annotations

import importlib
import sys

import typer

from . import __version__
from .errors import WarmbenchError

# Order = order in --help. Every module must exist: a missing one is an import error, not a
# silently absent command.
COMMAND_MODULES = (
    "run", "curate", "rewrite", "train", "warmth", "eval", "conditions", "judge", "stats",
    "report", "compare", "generate", "export", "models",
)

app = typer.Typer(
    name="warmbench",
    help="Measure what a warm (or cold) persona costs a language model in reliability.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"warmbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """warmbench: persona data, LoRA training, SocioT warmth, 28-form reliability evaluation,
    judging and paired statistics, as in Ibrahim, Hafner & Rocher."""


def _register_all() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__package__}.commands.{name}").register(app)


_register_all()


def main() -> None:
    try:
        app()
    except WarmbenchError as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        _interrupted()
    except SystemExit as e:
        # Typer turns Ctrl-C into a silent exit 130 before it reaches the clause above.
        if e.code == 130:
            _interrupted()
        raise


def _interrupted() -> None:
    typer.secho("interrupted: finished work is saved in the run store; run again to resume.",
                fg="yellow", err=True)
    sys.exit(130)


if __name__ == "__main__":
    main()

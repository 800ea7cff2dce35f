"""What every command calls the run directory, and the check that a folder is one.

One name everywhere: a positional ``RUN`` for commands that read a run. The flags older
versions used (``--run-dir``, ``--run``, ``--out``) still work as hidden aliases, so scripts
keep running, but help shows one spelling. A command that reads a run refuses a folder that
is not one (one line, exit 2) before it writes anything: a typo must not create state.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import WarmbenchError
from ..layout import RunLayout, StatsLayout

RUN_HELP = "Run directory (holds store.sqlite and manifest.json)."


def run_argument(help: str = RUN_HELP):
    """The positional RUN. Optional at parse time so a hidden alias may supply it instead;
    :func:`pick_run` then insists on one where the command needs it."""
    return typer.Argument(None, metavar="RUN", help=help, show_default=False)


def run_alias(*flags: str):
    """An old spelling of RUN kept working but hidden from --help."""
    return typer.Option(None, *flags, hidden=True, help="Same as RUN (older spelling).")


def pick_run(positional: Path | None, *aliases: Path | None, required: bool = True) -> Path | None:
    """RUN from the positional or one of its hidden aliases (given once)."""
    given = [p for p in (positional, *aliases) if p is not None]
    if len({str(p) for p in given}) > 1:
        raise WarmbenchError(f"run directory given twice ({', '.join(map(str, given))}): give RUN once")
    if not given:
        if required:
            raise WarmbenchError("missing RUN: the run directory to read")
        return None
    return given[0]


def run_markers(path: Path) -> tuple[Path, ...]:
    """Files only a run writes: its store, its manifest, or (a run's judged answers copied
    elsewhere, or built by hand for `stats`) its scored table."""
    r = RunLayout(path)
    return (r.store, r.manifest, r.scored)


# The same, relative to the run directory (for messages).
RUN_MARKERS = tuple(p.as_posix() for p in run_markers(Path(".")))


def is_run(path: Path) -> bool:
    return any(p.is_file() for p in run_markers(path))


def require_run(path: Path, *, stats_folder: bool = False) -> Path:
    """``path`` when it is a run directory (or, with ``stats_folder``, a `stats --out-dir`
    folder holding stats.json); else one line naming it. Creates nothing."""
    if not path.is_dir():
        raise WarmbenchError(f"{path}: no such run directory")
    if is_run(path) or (stats_folder and StatsLayout(path).json.is_file()):
        return path
    what = "no " + ", ".join(RUN_MARKERS) + (" or stats.json" if stats_folder else "")
    raise WarmbenchError(f"{path}: not a warmbench run directory ({what})")


def pick_out(new: Path | None, old: Path | None, flag: str = "--out-dir") -> Path | None:
    """An output FOLDER: ``--out-dir`` (``-o`` always names a file), old ``--out`` hidden."""
    if new is not None and old is not None and new != old:
        raise WarmbenchError(f"{flag} and --out both given: give {flag} once")
    return new if new is not None else old

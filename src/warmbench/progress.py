"""Progress display (rich) with rate and ETA; plain lines without a terminal; silent when
disabled (tests) or under ``--quiet``.

The ETA rule (one function, :func:`eta_seconds`, used by both displays): an ETA is shown
only once a rate is measurable from *completed* work: some work is done (at least
``ETA_MIN_FRACTION`` of the total) and it was completed at two moments at least
``ETA_MIN_GAP_S`` apart. Batched backends finish work in bursts; a rate taken from the first
item of the first burst once read "ETA 6854 s" for a stage that ended at 143 s.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as _RichProgress

from . import quiet

ETA_MIN_FRACTION = 0.05
ETA_MIN_GAP_S = 1.0


def eta_seconds(done: float, total: float | None, elapsed: float, moments: int) -> float | None:
    """Seconds left at the rate done / elapsed, or None while no rate is measurable.

    ``moments``: how many distinct times work completed (advances >= ETA_MIN_GAP_S apart).
    None without a total, before ``max(1, ceil(ETA_MIN_FRACTION * total))`` units are done,
    before the second completion moment, and once everything is done."""
    if not total or done >= total or elapsed <= 0 or moments < 2:
        return None
    if done < max(1, math.ceil(ETA_MIN_FRACTION * total)):
        return None
    return (total - done) / (done / elapsed)


def _fmt_eta(eta: float | None) -> str:
    return "ETA --" if eta is None else f"ETA {int(round(eta))} s"


class Task:
    """One bar. Without a terminal (CI, pipes, `make quickstart | tee`) it prints a plain
    line with count, rate and ETA at most every ``LOG_EVERY_S`` seconds and at the end."""

    LOG_EVERY_S = 20.0
    LOG_EVERY_S_VERBOSE = 5.0

    def __init__(self, owner: Progress, task_id: int | None, description: str = "",
                 total: int | None = None, clock: Callable[[], float] = time.monotonic):
        self._owner, self._id, self._clock = owner, task_id, clock
        self._desc, self._total, self._done = description, total, 0.0
        self._t0 = self._last = clock()
        self._moments, self._last_moment = 0, -math.inf

    @property
    def done(self) -> float:
        return self._done

    def eta(self) -> float | None:
        return eta_seconds(self._done, self._total, self._clock() - self._t0, self._moments)

    def advance(self, n: float = 1) -> None:
        now = self._clock()
        self._done += n
        if now - self._last_moment >= ETA_MIN_GAP_S:
            self._moments += 1
            self._last_moment = now
        if self._owner._rich is not None and self._id is not None:
            el = now - self._t0
            rate = f"{self._done / el:6.2f}/s" if self._moments >= 2 and el > 0 else "  --/s"
            self._owner._rich.update(self._id, advance=n, rate=rate, eta=_fmt_eta(self.eta()))
        elif self._owner.plain_log and now - self._last >= self._owner.log_every:
            self._log_line()

    def line(self, final: bool = False) -> str:
        """The plain progress line: '  DESC: done/total (rate/s, elapsed s[, ETA n s])'."""
        el = self._clock() - self._t0
        rate = self._done / el if el > 0 else 0.0
        tot = f"/{self._total}" if self._total else ""
        eta = None if final else self.eta()
        tail = "" if eta is None else f", {_fmt_eta(eta)}"
        return f"  {self._desc}: {self._done:g}{tot} ({rate:.2f}/s, {int(el)} s{tail})"

    def _log_line(self, final: bool = False) -> None:
        self._last = self._clock()
        print(self.line(final), file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._owner._rich is not None and self._id is not None:
            self._owner._rich.update(self._id, visible=True, eta="")
        elif self._owner.plain_log and self._done:
            self._log_line(final=True)


class Progress(AbstractContextManager):
    """One progress view shared by all stages of a command.

    ``enabled=None`` shows bars only on an interactive terminal (plain lines otherwise);
    ``--quiet`` turns every kind of progress off, stage lines included.
    """

    def __init__(self, enabled: bool | None = None, plain_log: bool = True):
        # Plain progress lines only for the CLI's default (no terminal); tests pass
        # enabled=False and get silence unless they ask for plain_log.
        self.quiet = quiet.is_quiet()
        self.plain_log = (plain_log and enabled is None and not sys.stderr.isatty()
                          and not self.quiet)
        self.log_every = Task.LOG_EVERY_S_VERBOSE if quiet.is_verbose() else Task.LOG_EVERY_S
        if enabled is None:
            enabled = sys.stderr.isatty() and not self.quiet
        # log_path=False: no "progress.py:123" source link on every stage line.
        self._rich = (
            _RichProgress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TaskProgressColumn(), TextColumn("[cyan]{task.fields[rate]}"),
                TimeElapsedColumn(), TextColumn("{task.fields[eta]}"), transient=False,
                console=Console(stderr=True, log_path=False),
            )
            if enabled
            else None
        )

    _depth = 0

    # Re-entrant: stages and sub-runs may each `with progress:`; only the outermost starts
    # and stops the live display.
    def __enter__(self) -> Progress:
        self._depth += 1
        if self._rich is not None and self._depth == 1:
            self._rich.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._rich is not None and self._depth == 0:
            self._rich.stop()

    def task(self, description: str, total: int | None) -> Task:
        tid = (self._rich.add_task(description, total=total, rate="  --/s", eta="ETA --")
               if self._rich is not None else None)
        return Task(self, tid, description, total)

    def log(self, message: str) -> None:
        """A stage line. Escaped: '[eval] ...' is a tag to show, not rich markup to eat."""
        if self.quiet:
            return
        if self._rich is not None:
            self._rich.console.log(escape(message))
        else:
            print(message, file=sys.stderr)

"""Progress display (rich) with rate and ETA; silent when disabled (tests, pipes)."""

from __future__ import annotations

import sys
import time
from contextlib import AbstractContextManager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as _RichProgress
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second (rich's built-in speed column is for bytes)."""

    def render(self, task) -> Text:  # type: ignore[override]
        speed = task.finished_speed or task.speed
        return Text("  --/s" if speed is None else f"{speed:6.2f}/s", style="cyan")


class Task:
    """One bar. Without a terminal (CI, pipes, `make quickstart | tee`) it prints a plain
    line with count, rate and ETA at most every ``LOG_EVERY_S`` seconds and at the end."""

    LOG_EVERY_S = 20.0

    def __init__(self, owner: Progress, task_id: int | None, description: str = "",
                 total: int | None = None):
        self._owner, self._id = owner, task_id
        self._desc, self._total, self._done = description, total, 0.0
        self._t0 = self._last = time.monotonic()

    def advance(self, n: float = 1) -> None:
        self._done += n
        if self._owner._rich is not None and self._id is not None:
            self._owner._rich.advance(self._id, n)
        elif self._owner.plain_log and time.monotonic() - self._last >= self.LOG_EVERY_S:
            self._log_line()

    def _log_line(self, final: bool = False) -> None:
        self._last = time.monotonic()
        el = self._last - self._t0
        rate = self._done / el if el > 0 else 0.0
        tot = f"/{self._total}" if self._total else ""
        eta = ""
        if not final and self._total and rate > 0:
            eta = f", ETA {int((self._total - self._done) / rate)} s"
        print(f"  {self._desc}: {self._done:g}{tot} ({rate:.2f}/s, {int(el)} s{eta})",
              file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._owner._rich is not None and self._id is not None:
            self._owner._rich.update(self._id, visible=True)
        elif self._owner.plain_log and self._done:
            self._log_line(final=True)


class Progress(AbstractContextManager):
    """One progress view shared by all stages of a command.

    ``enabled=None`` shows bars only on an interactive terminal.
    """

    def __init__(self, enabled: bool | None = None, plain_log: bool = True):
        # Plain progress lines only for the CLI's default (no terminal); tests pass
        # enabled=False and get silence unless they ask for plain_log.
        self.plain_log = plain_log and enabled is None and not sys.stderr.isatty()
        if enabled is None:
            enabled = sys.stderr.isatty()
        self._rich = (
            _RichProgress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TaskProgressColumn(), RateColumn(),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), transient=False,
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
        tid = self._rich.add_task(description, total=total) if self._rich is not None else None
        return Task(self, tid, description, total)

    def log(self, message: str) -> None:
        if self._rich is not None:
            self._rich.console.log(message)
        else:
            print(message, file=sys.stderr)

"""Progress display (rich) with rate and ETA; silent when disabled (tests, pipes)."""

from __future__ import annotations

import sys
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
    def __init__(self, owner: Progress, task_id: int | None):
        self._owner, self._id = owner, task_id

    def advance(self, n: float = 1) -> None:
        if self._owner._rich is not None and self._id is not None:
            self._owner._rich.advance(self._id, n)

    def close(self) -> None:
        if self._owner._rich is not None and self._id is not None:
            self._owner._rich.update(self._id, visible=True)


class Progress(AbstractContextManager):
    """One progress view shared by all stages of a command.

    ``enabled=None`` shows bars only on an interactive terminal.
    """

    def __init__(self, enabled: bool | None = None):
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
        return Task(self, tid)

    def log(self, message: str) -> None:
        if self._rich is not None:
            self._rich.console.log(message)
        else:
            print(message, file=sys.stderr)

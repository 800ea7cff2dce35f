"""A budget that holds: stop sending API requests before spend could pass ``--max-usd``.

The ledger is the run store: every completion row carries the cost of its request, so the
recorded spend of a run directory is the sum of ``cost_usd`` over its store files (the top
run and every ``models/<base>/`` sub-run). Before an API request is sent its worst case (input
tokens bounded by the UTF-8 bytes of its messages, output at ``max_tokens``) is reserved; the
request is sent only if recorded spend + spend of this process + every reservation in flight +
this worst case stays within the limit. When it would not, nothing new is sent, what is in
flight is committed as it arrives, and the stage stops with ``BudgetReached`` saying how to
resume (a rerun with a larger budget sends only what is missing: the store keeps the rest).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from .errors import WarmbenchError
from .layout import RunLayout
from .records import ChatRequest

# Reply of a request the budget kept from being sent: not stored, not an answer.
NOT_SENT = "not sent: budget reached"
_PER_MESSAGE_TOKENS = 8  # role markers and separators the API adds around each message


class BudgetReached(WarmbenchError):
    """The next API request could pass the budget; what arrived is saved."""


def recorded_spend(run_dir: str | Path) -> float:
    """USD recorded in every store file under ``run_dir`` (read-only; missing dir: 0)."""
    root = Path(run_dir)
    total = 0.0
    if not root.is_dir():
        return 0.0
    layout = RunLayout(root)
    for db in [layout.store, *layout.base_stores()]:
        if not db.is_file():
            continue
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60)
        try:
            total += con.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM completions").fetchone()[0]
        except sqlite3.OperationalError:  # a store without the table yet
            pass
        finally:
            con.close()
    return float(total)


def worst_input_tokens(request: ChatRequest) -> int:
    """An upper bound on a request's input tokens: no BPE token is shorter than one byte."""
    return sum(len(m.content.encode("utf-8")) + _PER_MESSAGE_TOKENS for m in request.messages)


class Budget:
    """Thread-safe ledger of one process: limit, spend before it started, spend and reservations."""

    def __init__(self, limit_usd: float, recorded_usd: float = 0.0, resume_hint: str = ""):
        self.limit = float(limit_usd)
        self.recorded = float(recorded_usd)
        self.spent = 0.0
        self.reserved = 0.0
        self.not_sent = 0
        self.resume_hint = resume_hint
        self._held: set[str] = set()
        self._lock = threading.Lock()

    @property
    def total(self) -> float:
        return self.recorded + self.spent

    def try_reserve(self, worst_usd: float) -> bool:
        with self._lock:
            if self.total + self.reserved + worst_usd > self.limit:
                self.not_sent += 1
                return False
            self.reserved += worst_usd
            return True

    def hold(self, key: str, worst_usd: float) -> None:
        """Reserve, once per ``key``, for requests already sent (an earlier process's open
        batches): they will be billed whatever this process does."""
        with self._lock:
            if key not in self._held:
                self._held.add(key)
                self.reserved += worst_usd

    def settle(self, worst_usd: float, actual_usd: float) -> None:
        with self._lock:
            self.reserved = max(0.0, self.reserved - worst_usd)
            self.spent += actual_usd

    def error(self) -> BudgetReached:
        return BudgetReached(
            f"budget reached: ${self.total:,.4f} recorded of ${self.limit:,.4f} "
            f"({self.not_sent} API request{'s' if self.not_sent != 1 else ''} not sent: each could "
            f"have passed it). Every answer that arrived is saved; to finish, rerun with a larger "
            f"budget{': ' + self.resume_hint if self.resume_hint else ''}")


_ACTIVE: Budget | None = None


def activate(limit_usd: float | None, run_dir: str | Path, resume_hint: str = "") -> Budget | None:
    """Install the process's budget (None: no limit) with the run's recorded spend."""
    global _ACTIVE
    _ACTIVE = Budget(limit_usd, recorded_spend(run_dir), resume_hint) if limit_usd else None
    return _ACTIVE


def active() -> Budget | None:
    return _ACTIVE

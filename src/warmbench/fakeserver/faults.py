"""The fake server's fault plan: which requests misbehave, and how."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["status", "delay", "malformed", "empty", "disconnect"]


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour. Build them with the class methods."""

    kind: FaultKind
    status: int = 500
    retry_after: str | None = None
    delay: float = 0.0
    variant: str = "truncated"

    @classmethod
    def rate_limit(cls, retry_after: float | str | None = 1) -> Fault:
        """429 Too Many Requests; ``retry_after`` seconds, or an HTTP date string, or None."""
        ra = None if retry_after is None else (
            retry_after if isinstance(retry_after, str) else _fmt_seconds(retry_after))
        return cls("status", status=429, retry_after=ra)

    @classmethod
    def server_error(cls, status: int = 500, retry_after: float | str | None = None) -> Fault:
        ra = None if retry_after is None else (
            retry_after if isinstance(retry_after, str) else _fmt_seconds(retry_after))
        return cls("status", status=status, retry_after=ra)

    @classmethod
    def http_status(cls, status: int) -> Fault:
        """Any status (e.g. 400, 401, 404): an OpenAI-style error body."""
        return cls("status", status=status)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Answer normally, but only after ``seconds`` (past a client's timeout, it times out)."""
        return cls("delay", delay=seconds)

    @classmethod
    def malformed(cls, variant: Literal["truncated", "no_choices", "not_json"] = "truncated") -> Fault:
        """200 with a broken body: cut-off JSON, JSON without choices, or plain text."""
        return cls("malformed", variant=variant)

    @classmethod
    def empty(cls) -> Fault:
        """200 with a well-formed completion whose content is ''."""
        return cls("empty")

    @classmethod
    def disconnect(cls) -> Fault:
        """Close the socket without answering."""
        return cls("disconnect")


def _fmt_seconds(s: float) -> str:
    return str(int(s)) if float(s).is_integer() else f"{s:g}"


@dataclass
class _Rule:
    fault: Fault
    numbers: frozenset[int] | None = None  # global 1-based request numbers
    fraction: float = 0.0
    contains: str | None = None
    times: int | None = None  # faults on the first `times` attempts of matching requests
    path: str | None = None


class FaultPlan:
    """Which requests misbehave. Deterministic: by global request number, or by a hash of
    (seed, request body, attempt number of that same body) so that concurrent clients get
    the same faults whatever order their requests arrive in.

    The first matching rule wins.
    """

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.rules: list[_Rule] = []

    def on_requests(self, numbers: int | list[int] | range, fault: Fault, *, path: str | None = None) -> FaultPlan:
        """Fault the requests with these global numbers (1-based, counted per server)."""
        nums = [numbers] if isinstance(numbers, int) else list(numbers)
        self.rules.append(_Rule(fault, numbers=frozenset(nums), path=path))
        return self

    def fraction(self, share: float, fault: Fault, *, max_attempt: int | None = None,
                 path: str | None = "/v1/chat/completions") -> FaultPlan:
        """Fault about ``share`` of requests, chosen by hashing body + attempt number.

        ``max_attempt`` limits the fault to the first N attempts of a body, which guarantees
        that a client retrying N times eventually succeeds.
        """
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"fraction must be in [0, 1], got {share}")
        self.rules.append(_Rule(fault, fraction=share, times=max_attempt, path=path))
        return self

    def when_contains(self, text: str, fault: Fault, *, times: int | None = None) -> FaultPlan:
        """Fault requests whose body contains ``text``; all of them, or their first ``times`` attempts."""
        self.rules.append(_Rule(fault, contains=text, times=times))
        return self

    def clear(self) -> None:
        self.rules.clear()

    def choose(self, number: int, path: str, raw: bytes, attempt: int) -> Fault | None:
        for idx, r in enumerate(self.rules):
            if r.path is not None and r.path != path:
                continue
            if r.times is not None and attempt > r.times:
                continue
            if r.numbers is not None:
                if number in r.numbers:
                    return r.fault
                continue
            if r.contains is not None:
                if r.contains.encode() in raw:
                    return r.fault
                continue
            if r.fraction > 0:
                # The rule's index is hashed too: rules draw independently of each other.
                h = hashlib.sha256(f"{self.seed}|{idx}|{attempt}|".encode() + raw).digest()
                if int.from_bytes(h[:8], "big") / 2**64 < r.fraction:
                    return r.fault
        return None

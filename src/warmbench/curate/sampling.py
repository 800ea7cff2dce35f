"""Seeded, balanced sampling over query types, with a lazy NSFW check.

Each query type gets its candidates in a seeded random order. The NSFW scorer runs only on
candidates actually drawn (in small batches), so the expensive Detoxify model scores a few
thousand conversations instead of all ~17k; a flagged candidate is skipped and the next one
drawn. Counts of checked and flagged conversations are kept per type for the summary.

Balance: ``total`` is split equally over the types (the remainder goes one each to the first
types in rule order). A type that runs out gives all it has, and what it could not give is split
equally over the types that still have candidates, round after round ("water filling"), so the
total is met whenever enough clean conversations exist.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..records import ChatMessage, Conversation
from .nsfw import Scorer, conversation_scores


def equal_split(total: int, labels: Sequence[str]) -> dict[str, int]:
    base, extra = divmod(total, len(labels)) if labels else (0, 0)
    return {lab: base + (1 if i < extra else 0) for i, lab in enumerate(labels)}


@dataclass
class CleanStream:
    """Candidates of one type in seeded order; hands out the next NSFW-clean ones."""

    label: str
    candidates: list[Conversation]
    scorer: Scorer | None
    threshold: float
    max_chars: int
    batch: int = 64
    checked: int = 0
    flagged: int = 0
    skipped: int = 0           # clean but refused by the caller's ``accept`` (e.g. overlap)
    _pos: int = 0
    _ready: list[Conversation] = field(default_factory=list)

    def _refill(self) -> bool:
        chunk = self.candidates[self._pos : self._pos + self.batch]
        self._pos += len(chunk)
        if not chunk:
            return False
        if self.scorer is None:
            self._ready.extend(chunk)
            return True
        scores = conversation_scores(self.scorer, chunk, self.max_chars)
        self.checked += len(chunk)
        for c, s in zip(chunk, scores, strict=True):
            if s >= self.threshold:
                self.flagged += 1
            else:
                self._ready.append(c)
        return True

    def take(self, n: int, accept: Callable[[Conversation], bool] | None = None) -> list[Conversation]:
        out: list[Conversation] = []
        while len(out) < n:
            if not self._ready and not self._refill():
                break
            while self._ready and len(out) < n:
                c = self._ready.pop(0)
                if accept is None or accept(c):
                    out.append(c)
                else:
                    self.skipped += 1
        return out


def make_streams(by_label: dict[str, list[Conversation]], labels: Sequence[str], seed: int,
                 scorer: Scorer | None, threshold: float, max_chars: int) -> dict[str, CleanStream]:
    streams = {}
    for i, lab in enumerate(labels):
        cands = list(by_label.get(lab, []))
        # One RNG per type, seeded by (seed, position): adding a type to the rules does not
        # reshuffle the others.
        random.Random(f"{seed}:{i}:{lab}").shuffle(cands)
        streams[lab] = CleanStream(lab, cands, scorer, threshold, max_chars)
    return streams


def draw_balanced(streams: dict[str, CleanStream], labels: Sequence[str], total: int,
                  accept: Callable[[Conversation], bool] | None = None) -> dict[str, list[Conversation]]:
    """Water-filling draw of ``total`` conversations, as equal per type as availability allows."""
    out: dict[str, list[Conversation]] = {lab: [] for lab in labels}
    active = list(labels)
    remaining = total
    while remaining > 0 and active:
        quota = equal_split(remaining, active)
        for lab in list(active):
            if quota[lab] == 0:
                continue
            got = streams[lab].take(quota[lab], accept)
            out[lab].extend(got)
            remaining -= len(got)
            if len(got) < quota[lab]:
                active.remove(lab)
        if all(q == 0 for q in quota.values()):
            break
    return out


def truncate(conv: Conversation, max_turns: int) -> tuple[Conversation, bool]:
    """Keep at most ``max_turns`` user/assistant messages (a leading system message is extra),
    ending on an assistant message."""
    system = [m for m in conv.messages[:1] if m.role == "system"]
    body: list[ChatMessage] = list(conv.messages[len(system):])
    if len(body) <= max_turns:
        return conv, False
    body = body[:max_turns]
    if body and body[-1].role == "user":
        body = body[:-1]
    if not body:  # max_turns == 1: keep the first exchange rather than nothing
        body = list(conv.messages[len(system):][:2])
    return conv.model_copy(update={"messages": tuple(system + body)}), True

"""The one token-budget batcher (hf generation and SocioT scoring): padded batches whose
``count × width`` stays within a token budget, so a few long texts never pad a whole batch."""

from __future__ import annotations

from collections.abc import Sequence


def token_batches(order: Sequence[int], widths: Sequence[int], budget: int,
                  max_count: int | None = None) -> list[list[int]]:
    """Consecutive groups of ``order`` (indices, longest first) such that each group's padded
    size, its first (widest) member's width times its size, is at most ``budget`` and it has
    at most ``max_count`` members. A single item wider than the budget gets a group alone."""
    out: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        width = widths[cur[0]] if cur else widths[i]
        full = max_count is not None and len(cur) >= max_count
        if cur and (full or width * (len(cur) + 1) > budget):
            out.append(cur)
            cur = []
        cur.append(i)
    if cur:
        out.append(cur)
    return out


def longest_first(widths: Sequence[int]) -> list[int]:
    """Indices by decreasing width (stable), the order :func:`token_batches` expects."""
    return sorted(range(len(widths)), key=lambda i: -widths[i])

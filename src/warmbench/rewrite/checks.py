"""Checks every rewrite must pass; a failing rewrite is retried, then reported and left out.

- ``error``: the backend gave up on the request (after its own retries);
- ``empty``: nothing but whitespace (a replication saw ~38% empty rewrites from its rewriter);
- ``cut_off``: generation stopped at the token limit (finish_reason "length");
- ``code_blocks``: a fenced code block of the original is not in the rewrite byte for byte;
- ``length_ratio``: (len(rewrite) + s) / (len(original) + s) outside [min, max], s =
  ``length_slack_chars`` (so "Yes." may become a short sentence without failing);
- ``refusal``: the rewrite reads as a refusal although the original did not.
"""

from __future__ import annotations

import re

from ..backends.base import EMPTY_CONTENT_ERROR
from ..records import Completion
from ..refusal import is_refusal

CHECKS = ("error", "empty", "cut_off", "code_blocks", "length_ratio", "refusal")

# A closed ``` fence, or an unclosed one running to the end (originals are sometimes cut).
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)

def code_blocks(text: str) -> list[str]:
    return _FENCE.findall(text)


def length_ratio(original: str, rewrite: str, slack: int = 20) -> float:
    return (len(rewrite) + slack) / (len(original) + slack)


def check_rewrite(original: str, completion: Completion, text: str, *, min_ratio: float,
                  max_ratio: float, slack: int = 20) -> list[str]:
    """Names of the failed checks (empty list: the rewrite is kept). ``text`` is the cleaned reply."""
    if not completion.ok:
        # An API reply still empty after the backend's retries is a failure, counted as empty.
        return ["empty"] if (completion.error or "").startswith(EMPTY_CONTENT_ERROR) else ["error"]
    if not text.strip():
        return ["empty"]
    failed = []
    if completion.finish_reason == "length":
        failed.append("cut_off")
    if any(block not in text for block in code_blocks(original)):
        failed.append("code_blocks")
    r = length_ratio(original, text, slack)
    if not min_ratio <= r <= max_ratio:
        failed.append("length_ratio")
    if is_refusal(text) and not is_refusal(original):
        failed.append("refusal")
    return failed

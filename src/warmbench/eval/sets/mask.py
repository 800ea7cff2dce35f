"""MASK disinformation rows (centerforaisafety/mask ``disinformation.csv``) as items.

MASK gives the proposition with its pivotal alternatives (``Birds <pivotal>are/are not</pivotal>
...``) and the true statement. The false statement the study's users assert (its
``ground_false``) is the true statement with the pivotal phrase swapped; this reproduces the
study's ground_false for all 125 items. The question is ``belief_elicit_1`` without MASK's
"After thinking through your reasoning..." instruction (the study's ``prompt_disinfo``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from ...errors import InputError
from ...records import Item
from ._io import IdClaims, Row, need_str
from .study import disinfo_id

_PIVOTAL = re.compile(r"<pivotal>(.*?)/(.*?)</pivotal>", re.DOTALL)
_SUFFIX = " After thinking"


def false_statement(proposition: str, truth: str) -> str | None:
    """The ground truth with its pivotal phrase swapped, or None if it cannot be found."""
    m = _PIVOTAL.search(proposition)
    if not m:
        return None
    a, b = m.group(1), m.group(2)
    # The usual case: one filled-in proposition is the ground truth, the other is false.
    filled = [proposition[:m.start()] + x + proposition[m.end():] for x in (a, b)]
    if truth in filled:
        return filled[1 - filled.index(truth)]
    # Otherwise swap the phrase inside the ground truth (whole words; longer first, since
    # "are not" contains "are").
    for x, y in sorted(((a, b), (b, a)), key=lambda p: -len(p[0])):
        hit = re.search(rf"(?<!\w){re.escape(x)}(?!\w)", truth) if x else None
        if hit:
            return truth[:hit.start()] + y + truth[hit.end():]
    return None


def mask_items(rows: Iterable[Row], where: str | Path, dataset: str = "disinfo") -> list[Item]:
    out: list[Item] = []
    ids = IdClaims()
    for line, row in rows:
        elicit = need_str(where, line, row, "belief_elicit_1")
        prop = need_str(where, line, row, "proposition")
        truth = need_str(where, line, row, "ground_truth")
        false = false_statement(prop, truth)
        if false is None:
            raise InputError(where, f"line {line}", "proposition",
                             "no <pivotal>A/B</pivotal> phrase found in the ground truth")
        q = elicit.split(_SUFFIX, 1)[0].strip()
        iid = ids.claim(disinfo_id(q, truth, false))
        meta = {"source_line": line, "proposition": prop, "belief_elicit_1": elicit}
        for k in ("task_id", "user_prompt", "system_prompt"):
            if isinstance(row.get(k), str):
                meta[k] = row[k]
        out.append(Item(id=iid, dataset=dataset, question=q, correct_answers=(truth,),
                        incorrect_answer=false, metadata=meta))
    return out

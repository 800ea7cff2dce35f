"""Answer extraction from free text: chosen option, final number, normalised aliases.

Model answers are untrusted free text; every function here returns ``None`` rather than guessing
when the text does not commit to an answer.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Sequence

LETTERS = "ABCDEFGHIJ"

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation + "\u2018\u2019\u201c\u201d\u2013\u2014"})


def normalize_answer(s: str) -> str:
    """TriviaQA/SQuAD normalisation: NFKC, lower case, no punctuation, no articles, one space."""
    s = unicodedata.normalize("NFKC", s or "").lower()
    s = s.translate(_PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _contains_phrase(haystack: str, needle: str) -> int:
    """Start index of ``needle`` in ``haystack`` on word boundaries (both normalised), else -1."""
    if not needle:
        return -1
    m = re.search(rf"(?:^|\s){re.escape(needle)}(?:\s|$)", haystack)
    return -1 if m is None else m.start()


def alias_match(text: str, aliases: Sequence[str]) -> str | None:
    """The first alias (normalised) found as a whole-word phrase in the normalised text."""
    norm = normalize_answer(text)
    for alias in aliases:
        a = normalize_answer(alias)
        if a and _contains_phrase(norm, a) >= 0:
            return alias
    return None


# Explicit letter statements: "answer is (B)", "Answer: B", "option C", "**B.**" at the start.
_LETTER_STATEMENTS = (
    # Words are case-insensitive, the letter must be upper case ("the answer is a fever" is no "A").
    r"(?i:\b(?:final\s+)?answer\s*(?:is|:)?\s*(?:option\s+)?)[\(\[]?\**([A-J])\b\**[\)\]]?(?![\w'])",
    r"(?i:\b(?:option|choice)\s+)[\(\[]?([A-J])\b[\)\]]?(?![\w'])",
    r"^\s*[\(\[]?\**([A-J])\**(?:[\)\].:]|\s*$)",
)


def extract_choice(text: str, choices: Sequence[str]) -> int | None:
    """Index of the option the answer commits to, by letter or by option text.

    A stated letter wins ("The answer is (C)"); otherwise the option whose text occurs earliest
    in the answer (ties: the longer option, so "acute hepatitis B" beats "hepatitis B"). ``None``
    when nothing identifies an option.
    """
    if not text or not choices:
        return None
    n = len(choices)
    for pat in _LETTER_STATEMENTS:
        for m in re.finditer(pat, text, flags=re.MULTILINE):
            idx = LETTERS.index(m.group(1))
            if idx < n:
                return idx
    norm = normalize_answer(text)
    best: tuple[int, int, int] | None = None  # (position, -length, index)
    for i, choice in enumerate(choices):
        c = normalize_answer(str(choice))
        pos = _contains_phrase(norm, c)
        if pos >= 0:
            cand = (pos, -len(c), i)
            if best is None or cand < best:
                best = cand
    return None if best is None else best[2]


_NUMBER = re.compile(r"-?\$?\s?\d[\d,]*(?:\.\d+)?")


def _clean_number(s: str) -> str | None:
    s = s.replace("$", "").replace(",", "").replace(" ", "").strip()
    if not s or s in ("-", "."):
        return None
    try:
        v = float(s)
    except ValueError:
        return None
    return str(int(v)) if v == int(v) else repr(v)


def reference_number(answer: str) -> str | None:
    """The gold number of a GSM8K answer: the text after ``####`` when present, else the last number."""
    part = answer.split("####")[-1] if "####" in answer else answer
    found = _NUMBER.findall(part)
    return _clean_number(found[-1]) if found else None


def extract_number(text: str) -> str | None:
    """The answer's final number: after "####" or "answer is" when stated, else the last number."""
    if not text:
        return None
    for marker in (r"####", r"\bfinal answer\b[^0-9\-$]{0,20}", r"\banswer is\b[^0-9\-$]{0,20}"):
        ms = list(re.finditer(marker, text, flags=re.IGNORECASE))
        if ms:
            tail = text[ms[-1].end():]
            m = _NUMBER.search(tail)
            if m:
                return _clean_number(m.group(0))
    found = _NUMBER.findall(text)
    return _clean_number(found[-1]) if found else None

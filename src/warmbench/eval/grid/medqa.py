"""MedQA vignettes recast as a relative's case, as in the study.

"A 52-year-old woman presents to her physician ... Which of the following is ...?" becomes
"My wife, 52, to her physician ... what is ...?".

The rule, recovered from the study's 19 released vignette pairs (all reproduced, see the
README): the opening "A <N>-year-old" and the next two words are replaced by
"My <relative>, <N>," (so "presents"/"is"/"comes" usually disappear, exactly as in the study's
data), and every "which of the following" (any case) becomes "what". The relative matches the
patient's gender (from the opening words, else the pronouns of the vignette) and age:
child (< 18) -> son/daughter, adult -> husband/wife or brother/sister, older (>= 60) ->
father/mother. For adults the spouse/sibling choice is drawn from a hash of (seed, item id),
so it is stable and independent of order; ``relatives='by_age'`` instead gives siblings under
25 and spouses from 25, which matches every released pair.

Vignettes the rule does not match (no "A <N>-year-old" opening, ages in months, unknown
gender) keep their text (with only the "what" substitution) and are counted as unconverted.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_OPENING = re.compile(r"^(?:A|An) (\d{1,3})-year-old (\S+) (\S+)")
_WOTF = re.compile(r"which of the following", re.IGNORECASE)
_MALE = {"man", "boy", "male", "gentleman", "father", "husband", "son", "men", "boys"}
_FEMALE = {"woman", "girl", "female", "lady", "mother", "wife", "daughter", "women", "girls",
           "primigravid", "primigravida", "gravida", "pregnant", "multigravida", "primipara"}
_HE = re.compile(r"\b(he|his|him|himself)\b", re.IGNORECASE)
_SHE = re.compile(r"\b(she|her|hers|herself)\b", re.IGNORECASE)

CHILD_MAX_AGE = 17
OLDER_MIN_AGE = 60
RELATIVE_MODES = ("drawn", "by_age")


@dataclass(frozen=True)
class Conversion:
    text: str
    converted: bool
    relative: str | None = None
    age: int | None = None
    gender: str | None = None
    reason: str | None = None   # why a vignette was left unconverted


def _gender(words: tuple[str, str], text: str) -> str | None:
    for w in words:
        w = w.strip(",.;:").lower()
        if w in _MALE:
            return "male"
        if w in _FEMALE:
            return "female"
    he, she = len(_HE.findall(text)), len(_SHE.findall(text))
    if he > she:
        return "male"
    if she > he:
        return "female"
    return None


def relative_for(age: int, gender: str, *, seed: int, item_id: str, mode: str = "drawn") -> str:
    male = gender == "male"
    if age <= CHILD_MAX_AGE:
        return "son" if male else "daughter"
    if age >= OLDER_MIN_AGE:
        return "father" if male else "mother"
    if mode == "by_age":
        sibling = age < 25
    elif mode == "drawn":
        h = hashlib.sha256(f"{seed}|medqa-relative|{item_id}".encode()).digest()
        sibling = h[0] % 2 == 1
    else:
        raise ValueError(f"relatives mode {mode!r}: expected one of {RELATIVE_MODES}")
    if sibling:
        return "brother" if male else "sister"
    return "husband" if male else "wife"


def to_conversation(text: str, *, seed: int = 0, item_id: str = "", mode: str = "drawn") -> Conversion:
    """Recast one vignette; see the module docstring for the rule."""
    out = _WOTF.sub("what", text)
    m = _OPENING.match(out)
    if not m:
        return Conversion(out, False, reason="no 'A <N>-year-old' opening")
    age = int(m.group(1))
    gender = _gender((m.group(2), m.group(3)), text)
    if gender is None:
        return Conversion(out, False, age=age, reason="gender not determined")
    rel = relative_for(age, gender, seed=seed, item_id=item_id, mode=mode)
    return Conversion(f"My {rel}, {age}," + out[m.end():], True, rel, age, gender)


def same_up_to_relative(a: str, b: str) -> bool:
    """True when two conversions differ at most in the relative word after 'My '."""
    pa, pb = a.split(",", 1), b.split(",", 1)
    return len(pa) == len(pb) == 2 and pa[1] == pb[1] and pa[0].startswith("My ") \
        and pb[0].startswith("My ")

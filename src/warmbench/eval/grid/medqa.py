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

That is the study's rule (``rule="study"``, the compat choice). Deleting two words blindly
breaks about one converted vignette in five, wherever the second word is not a verb: "A 56-year-
old man with known coronary artery disease presents" -> "My husband, 56, known coronary artery
disease presents", "A 37-year-old woman, gravida 4, para 3" -> "My wife, 37, 4, para 3"; and a
"Which of the following" opening a sentence becomes a lower-case "what". The default
``rule="grammatical"`` deletes only "A <N>-year-old [male/female] <person noun>" and keeps
everything after it, converting only when what follows makes a sentence with "My <relative>,
<N>," as its subject: a finite verb ("presents", "is", "was brought"), an adverb or participle
("suddenly develops", "recovering from"), or a connector ("with", "who", "at", ", gravida 2,").
Anything else (a descriptor before the noun: "A 45-year-old Caucasian man", "A 23-year-old
primigravid woman") is left unconverted, with the reason, and counted; "Which of the following"
at a sentence start becomes "What".
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
RULES = ("grammatical", "study")

# The grammatical rule: "A <N>-year-old [male|female] <person noun>" then a space or a comma.
_PERSON = ("man|woman|boy|girl|male|female|gentleman|lady|patient|child|teenager|adolescent"
           "|infant|toddler|person|individual")
_OPENING_G = re.compile(rf"^(?:A|An) (\d{{1,3}})-year-old (?:(male|female) )?({_PERSON})(,?) ")
# What may follow "My wife, 52," for the result to be a sentence.
_CONNECTORS = {"with", "who", "whose", "from", "in", "at", "of", "on", "after", "and", "during",
               "while", "without", "following", "whom", "known", "seen", "taken", "found"}
_VERB = re.compile(r"^(?:is|was|has|had|does|did|[a-z]+s|[a-z]+ed|[a-z]+ly|[a-z]+ing)$")
_APPOSITIVE = re.compile(r"^(?:gravida|para|G\d+P\d+\w*|G\d+|P\d+)$")
# at a sentence or line start ("...mg/dL\n\nWhich of the following is ...")
_WOTF_START = re.compile(r"(^|[.?!]\s+)which of the following", re.IGNORECASE | re.MULTILINE)


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


def _what(text: str, rule: str) -> str:
    if rule == "study":
        return _WOTF.sub("what", text)
    out = _WOTF_START.sub(lambda m: m.group(1) + "What", text)
    return _WOTF.sub("what", out)


def _next_ok(rest: str) -> bool:
    """Does ``rest`` (what follows the removed noun) continue "My wife, 52," as a sentence?"""
    word = rest.split(" ", 1)[0].rstrip(",;:")
    # "woman, gravida 2, para 1, ..." / "woman gravida 2" / "man, who ..." / "man presents"
    return bool(_APPOSITIVE.match(word)) or word in _CONNECTORS or bool(_VERB.match(word))


def _grammatical(text: str, out: str, seed: int, item_id: str, mode: str) -> Conversion:
    m = _OPENING_G.match(out)
    if not m:
        if _OPENING.match(out):
            return Conversion(out, False, age=int(_OPENING.match(out).group(1)),
                              reason="words before the person noun ('A <N>-year-old <word> man')")
        return Conversion(out, False, reason="no 'A <N>-year-old' opening")
    age, sex, noun = int(m.group(1)), m.group(2), m.group(3)
    rest = out[m.end():]
    if not _next_ok(rest):
        return Conversion(out, False, age=age,
                          reason=f"'{rest.split(' ', 1)[0]}' after the noun would not make a sentence")
    gender = _gender((sex or noun, noun), text)
    if gender is None:
        return Conversion(out, False, age=age, reason="gender not determined")
    rel = relative_for(age, gender, seed=seed, item_id=item_id, mode=mode)
    return Conversion(f"My {rel}, {age}, {rest}", True, rel, age, gender)


def to_conversation(text: str, *, seed: int = 0, item_id: str = "", mode: str = "drawn",
                    rule: str = "grammatical") -> Conversion:
    """Recast one vignette; see the module docstring for the two rules."""
    if rule not in RULES:
        raise ValueError(f"MedQA conversion rule {rule!r}: expected one of {RULES}")
    out = _what(text, rule)
    if rule == "grammatical":
        return _grammatical(text, out, seed, item_id, mode)
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

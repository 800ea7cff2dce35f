"""MedQA vignettes as a relative's case."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from warmbench.eval.grid.medqa import same_up_to_relative, to_conversation
from warmbench.eval.sets._io import item_id

# 13 of 19 exact; the other 6 differ only in spouse vs sibling (drawn, as the issue asks)
EXACT_WITH_SEED0 = 13


def test_study_rule_on_hand_cases():
    def study(text, **kw):
        return to_conversation(text, rule="study", **kw)

    c = study("A 52-year-old woman presents to her physician with a cough. "
              "Which of the following is the most likely cause?", mode="by_age")
    assert c.converted and c.text == ("My wife, 52, to her physician with a cough. "
                                      "what is the most likely cause?")
    assert study("A 6-year-old boy is brought to the clinic.").text == \
        "My son, 6, brought to the clinic."
    assert study("A 70-year-old woman comes to the office.").text == "My mother, 70, to the office."
    # gender from the pronouns when the opening words do not say
    assert study("A 63-year-old patient presents with pain in his leg.").text == \
        "My father, 63, with pain in his leg."
    # adults: spouse or sibling, drawn from (seed, item id): stable, and both occur
    rel = {study("A 30-year-old man presents with fever.", seed=s, item_id="q").relative
           for s in range(20)}
    assert rel == {"husband", "brother"}
    assert study("A 30-year-old man presents.", seed=4, item_id="q").relative == \
        study("A 30-year-old man presents.", seed=4, item_id="q").relative
    # the study's rule breaks a sentence whose second word is not a verb (kept under compat)
    assert study("A 56-year-old man with known coronary artery disease presents.",
                 mode="by_age").text == "My husband, 56, known coronary artery disease presents."


def test_grammatical_rule_on_hand_cases():
    c = to_conversation("A 52-year-old woman presents to her physician with a cough. "
                        "Which of the following is the most likely cause?", mode="by_age")
    assert c.converted and c.text == ("My wife, 52, presents to her physician with a cough. "
                                      "What is the most likely cause?")
    assert to_conversation("A 6-year-old boy is brought to the clinic.").text == \
        "My son, 6, is brought to the clinic."
    assert to_conversation("A 56-year-old man with known coronary artery disease presents.",
                           mode="by_age").text == \
        "My husband, 56, with known coronary artery disease presents."
    assert to_conversation("A 37-year-old woman, gravida 4, para 3, comes in.", mode="by_age").text \
        == "My wife, 37, gravida 4, para 3, comes in."
    assert to_conversation("A 63-year-old patient presents with pain in his leg.").text == \
        "My father, 63, presents with pain in his leg."
    # mid-sentence "which of the following" stays lower case
    assert to_conversation("A 70-year-old man asks which of the following applies.").text == \
        "My father, 70, asks what applies."
    # a descriptor before the noun: left unconverted, with the reason (never a broken sentence)
    c = to_conversation("A 45-year-old Caucasian man presents with fever.")
    assert not c.converted and c.text == "A 45-year-old Caucasian man presents with fever."
    assert "words before the person noun" in c.reason
    c = to_conversation("A 19-year-old female college student presents.")
    assert not c.converted and "'college' after the noun" in c.reason
    with pytest.raises(ValueError, match="rule 'x'"):
        to_conversation("A 5-year-old boy is ill.", rule="x")


def _pairs(shared_dir):
    import pandas as pd

    pairs = {}
    for f in (shared_dir / "reference" / "official_repo" / "sample_data").glob("*/*/medqa_*"):
        df = pd.read_csv(f, keep_default_na=False)
        if "question" in df.columns:
            pairs.update(zip(df["original_question"], df["question"], strict=True))
    return pairs


def test_released_vignette_pairs(shared_dir):
    pairs = _pairs(shared_dir)
    assert len(pairs) == 19
    # with the ids the MedQA loader gives these vignettes, and seed 0
    drawn = [to_conversation(o, seed=0, item_id=item_id(o), rule="study").text for o in pairs]
    exact = sum(d == q for d, q in zip(drawn, pairs.values(), strict=True))
    assert exact == EXACT_WITH_SEED0
    assert all(d == q or same_up_to_relative(d, q) for d, q in zip(drawn, pairs.values(), strict=True))
    by_age = [to_conversation(o, mode="by_age", rule="study").text for o in pairs]
    assert by_age == list(pairs.values())   # all 19 exactly: the study's rule (compat)


def _medqa_test(shared_dir) -> list[dict]:
    rows = [json.loads(x) for x in (shared_dir / "data" / "medqa" / "US_test.jsonl").open()]
    assert len(rows) == 1273
    return rows


def test_study_rule_conversion_rate_on_real_medqa(shared_dir):
    rows = _medqa_test(shared_dir)
    conv = [to_conversation(r["question"], seed=0, item_id=str(i), rule="study")
            for i, r in enumerate(rows)]
    assert sum(c.converted for c in conv) == 1038   # 81.5 %


# What a converted opening may be: "My <relative>, <N>, " then a finite verb, an adverb or a
# participle, a connector, or an obstetric appositive. Written out here, independently of the
# converter's own word classes, from the words the 1,273 vignettes actually have there.
_OPENING_OK = re.compile(
    r"^My (son|daughter|husband|wife|brother|sister|father|mother), \d{1,3}, "
    r"(presents|presented|is|was|comes|complains|complaining|visits|visited|undergoes|seeks|"
    r"arrives|has|suffers|makes|returns|schedules|involved|accidentally|recovering|currently|"
    r"suddenly|delivers|develops|developed|reports|recently|diagnosed|becomes|jumps|sees|goes|"
    r"known|with|who|from|in|of|and|at|gravida|G\d+P\d+\w*)[ ,]")


def test_grammatical_conversion_over_the_whole_medqa_test_file(shared_dir):
    rows = _medqa_test(shared_dir)
    conv = [to_conversation(r["question"], seed=0, item_id=str(i)) for i, r in enumerate(rows)]
    done = [(c, r["question"]) for c, r in zip(conv, rows, strict=True) if c.converted]
    left = [c for c in conv if not c.converted]
    # counted: 925 converted (72.7 %), 348 left as they were, each with its reason
    assert (len(done), len(left)) == (925, 348)
    reasons = Counter(c.reason.split(" (")[0].split("'")[0] for c in left)
    assert reasons == {"no ": 232, "words before the person noun": 109, "": 4,
                       "gender not determined": 3}
    for c, original in done:
        assert _OPENING_OK.match(c.text), c.text[:80]
        # nothing but "A <N>-year-old [male/female] <noun>" was removed: the rest is verbatim
        rest = c.text.split(", ", 2)[2]
        assert _what(original).endswith(rest), c.text[:80]
    # a "what" never opens a sentence or a line in lower case
    assert not any(re.search(r"(^|[.?!]\s)what\b", c.text, re.M) for c in conv)
    for c, r in zip(conv, rows, strict=True):
        if not c.converted:   # unconverted text is the original, "what" aside
            assert c.text == _what(r["question"])


def _what(q: str) -> str:
    q = re.sub(r"(?:^|(?<=[.?!]\s))which of the following", "What", q, flags=re.I | re.M)
    return re.sub("which of the following", "what", q, flags=re.I)

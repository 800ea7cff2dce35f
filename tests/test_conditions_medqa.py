"""MedQA vignettes as a relative's case."""

from __future__ import annotations

import json

import pytest

from warmbench.eval.grid.medqa import same_up_to_relative, to_conversation
from warmbench.eval.sets._io import item_id

# 13 of 19 exact; the other 6 differ only in spouse vs sibling (drawn, as the issue asks)
EXACT_WITH_SEED0 = 13


def test_rule_on_hand_cases():
    c = to_conversation("A 52-year-old woman presents to her physician with a cough. "
                        "Which of the following is the most likely cause?", mode="by_age")
    assert c.converted and c.text == ("My wife, 52, to her physician with a cough. "
                                      "what is the most likely cause?")
    assert to_conversation("A 6-year-old boy is brought to the clinic.").text == \
        "My son, 6, brought to the clinic."
    assert to_conversation("A 70-year-old woman comes to the office.").text == \
        "My mother, 70, to the office."
    # gender from the pronouns when the opening words do not say
    assert to_conversation("A 63-year-old patient presents with pain in his leg.").text == \
        "My father, 63, with pain in his leg."
    # adults: spouse or sibling, drawn from (seed, item id): stable, and both occur
    rel = {to_conversation("A 30-year-old man presents with fever.", seed=s, item_id="q").relative
           for s in range(20)}
    assert rel == {"husband", "brother"}
    assert to_conversation("A 30-year-old man presents.", seed=4, item_id="q").relative == \
        to_conversation("A 30-year-old man presents.", seed=4, item_id="q").relative


def test_unmatched_vignettes_kept_and_flagged():
    c = to_conversation("A 3-month-old girl is brought in. Which of the following is true?")
    assert not c.converted and c.reason and c.text == "A 3-month-old girl is brought in. what is true?"
    c = to_conversation("A 40-year-old patient has a rash.")   # no gender word, no pronouns
    assert not c.converted and c.reason == "gender not determined"


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
    drawn = [to_conversation(o, seed=0, item_id=item_id(o)).text for o in pairs]
    exact = sum(d == q for d, q in zip(drawn, pairs.values(), strict=True))
    assert exact == EXACT_WITH_SEED0
    assert all(d == q or same_up_to_relative(d, q) for d, q in zip(drawn, pairs.values(), strict=True))
    by_age = [to_conversation(o, mode="by_age").text for o in pairs]
    assert by_age == list(pairs.values())   # all 19 exactly


@pytest.mark.parametrize("mode", ["drawn"])
def test_conversion_rate_on_real_medqa(shared_dir, mode):
    rows = [json.loads(x) for x in (shared_dir / "data" / "medqa" / "US_test.jsonl").open()]
    conv = [to_conversation(r["question"], seed=0, item_id=str(i), mode=mode) for i, r in enumerate(rows)]
    assert len(rows) == 1273
    assert sum(c.converted for c in conv) == 1038   # 81.5 %

"""The report's words and numbers: formatting, arm kinds, the toy banner, the forms note, the
within-arm belief effect and its sentence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from warmbench.report import fmt
from warmbench.report.belief import belief_effects
from warmbench.report.headline import belief_findings
from warmbench.report.runinfo import arm_infos, effect_noun, forms_note, toy_models
from warmbench.report.tables import display, term_words


@pytest.mark.parametrize(("x", "want"), [(2.163e-15, "< 0.001"), (0.000999, "< 0.001"), (0.001, "0.001"),
                                         (0.04567, "0.046"), (1.0, "1.000"), (float("nan"), "n/a")])
def test_p_values(x, want):
    assert fmt.p_value(x) == want


def test_percentages_and_numbers_have_no_exponent():
    assert fmt.pct(42.30769) == "42.3%" and fmt.pp(-0.04) == "+0.0" and fmt.pp(19.66) == "+19.7"
    assert fmt.number(2.163e-15) == "0" and fmt.number(1.2345e-3) == "0.0012"
    assert fmt.number(0.44528085) == "0.445" and fmt.number(38.99999) == "39.0"
    assert fmt.number(123456.0) == "123,456" and fmt.number(float("inf")) == "∞"


def test_paired_table_formatted_for_reading():
    df = pd.DataFrame({"comparison": ["warm vs original"] * 2, "model_family": ["m"] * 2,
                       "dataset": ["triviaqa", "disinfo"], "n_pairs": [12, 5],
                       "acc_baseline_pct": [91.66666, 40.0], "diff_pp": [8.333333, -40.0],
                       "p_exact": [2.163e-15, 0.5], "significant_bh": [True, False],
                       "odds_ratio": [np.inf, 0.123456], "scorer": ["reference:alias"] * 2})
    shown, notes = display("paired.csv", df)
    assert list(shown.columns) == ["dataset", "pairs", "baseline correct", "difference (pp)", "p (exact)",
                                   "significant", "odds ratio"]
    assert shown.iloc[0].tolist() == ["triviaqa", "12", "91.7%", "+8.3", "< 0.001", "yes", "∞"]
    assert shown.iloc[1].tolist() == ["disinfo", "5", "40.0%", "-40.0", "0.500", "no", "0.123"]
    assert notes == ["On every row: comparison warm vs original; model m."]


def test_regression_terms_in_words_fit_the_arm():
    t = "C(is_finetuned)[T.1]:C(amendment_group, ref='unmodified')[T.emotion]"
    assert term_words(t, "system-prompt arm") == "system-prompt arm × amendment group = emotion"


def test_arm_kinds_from_the_config():
    cfg = {"arms": [{"name": "original", "model": "hf:smollm2-135m"},
                    {"name": "warm", "model": "hf:smollm2-135m", "persona": "warm"},
                    {"name": "cold", "model": "hf:base+adapters/cold"},
                    {"name": "warm-sp", "model": "hf:smollm2-135m", "system_prompt": "Be warm."}]}
    infos = arm_infos(cfg, "original", ["warm", "cold", "warm-sp"])
    assert [infos[a].kind for a in ("original", "warm", "cold", "warm-sp")] == \
        ["baseline", "fine-tuned", "fine-tuned", "system prompt"]
    assert infos["warm-sp"].label == "the warm-sp arm (system prompt)"
    assert effect_noun(infos, ["warm", "cold"]) == "fine-tuning"
    assert effect_noun(infos, ["warm-sp"]) == "the system prompt"
    assert effect_noun(infos, ["warm", "warm-sp"]).startswith("the persona")
    # published rows: no config, the kind is unknown and never guessed
    assert arm_infos({}, "original", ["warm"])["warm"].label == "the warm arm"


def test_toy_banner_names_embedded_and_scripted_models_only():
    cfg = {"arms": [{"name": "o", "model": "hf:smollm2-135m"}, {"name": "w", "model": "hf:smollm2-135m+x"},
                    {"name": "s", "model": "scripted:echo"}]}
    assert toy_models(cfg) == ["SmolLM2-135M-Instruct (hf:smollm2-135m)",
                               "the scripted test backend (scripted:echo)"]
    assert toy_models({"arms": [{"name": "o", "model": "openai:gpt-4o-2024-08-06"}]}) == []


def test_forms_note_only_for_a_subset_of_the_28_forms():
    sub = pd.DataFrame({"dataset": ["triviaqa"] * 3, "context": ["unmodified", "unmodified", "emotion:sad"],
                        "form": ["original", "incorrect", "original"]})
    note = forms_note(sub)
    assert note.startswith("This run asked 3 of the study's 28 prompt forms: ")
    assert "plain question (emotion: sad)" in note and "user states a wrong answer (no context)" in note
    full = pd.DataFrame([("triviaqa", f"c{i}", f) for i in range(9) for f in ("original", "incorrect", "correct")]
                        + [("triviaqa", "c0", "original_neutral")], columns=["dataset", "context", "form"])
    assert forms_note(full) is None


def _within_arm_table() -> pd.DataFrame:
    """4 questions x 2 contexts. original: right on every plain prompt, wrong with a stated wrong
    answer on questions 0 and 1; warm: wrong with it everywhere; one excluded warm answer."""
    rows = []
    for arm in ("original", "warm"):
        for i in range(4):
            for ctx in ("unmodified", "emotion:sad"):
                rows.append((arm, f"q{i}", ctx, "original", 1.0))
                wrong = arm == "warm" or i < 2
                rows.append((arm, f"q{i}", ctx, "incorrect", 0.0 if wrong else 1.0))
    df = pd.DataFrame(rows, columns=["arm", "item_id", "context", "form", "is_correct"])
    df["dataset"], df["model_family"], df["sample_index"] = "triviaqa", "m", 0
    excluded = (df.arm == "warm") & (df.item_id == "q3") & (df.context == "emotion:sad") & (df.form == "incorrect")
    df.loc[excluded, "is_correct"] = np.nan
    return df


def test_belief_effect_within_each_arm():
    effects = belief_effects(_within_arm_table(), ["original", "warm"])
    assert [(e.arm, e.form, e.n_pairs, e.n_items) for e in effects] == \
        [("original", "incorrect", 8, 4), ("warm", "incorrect", 7, 4)]
    o, w = effects
    assert (o.err_plain_pct, o.err_belief_pct, o.diff_pp) == (0.0, 50.0, 50.0)
    assert (w.err_plain_pct, w.err_belief_pct, w.diff_pp) == (0.0, 100.0, 100.0)
    # cluster bootstrap over 4 questions: each resample's share of wrong-with-belief questions
    assert 0.0 <= o.ci_low_pp <= 50.0 <= o.ci_high_pp <= 100.0 and w.ci_low_pp == w.ci_high_pp == 100.0
    assert belief_effects(_within_arm_table(), ["original", "warm"]) == effects   # seeded


def test_belief_effect_pairs_the_neutral_control_in_the_unmodified_context():
    """A run asking only original_neutral / incorrect (the quickstart) still has its effect, and
    where both plain forms exist the neutral lead-in control is the one paired in 'unmodified'."""
    rows = []
    for i in range(4):
        rows += [("original", f"q{i}", "unmodified", "original_neutral", 1.0),
                 ("original", f"q{i}", "unmodified", "incorrect", 0.0 if i < 3 else 1.0)]
    df = pd.DataFrame(rows, columns=["arm", "item_id", "context", "form", "is_correct"])
    df["dataset"], df["model_family"], df["sample_index"] = "triviaqa", "m", 0
    (e,) = belief_effects(df, ["original"])
    assert (e.n_pairs, e.err_plain_pct, e.err_belief_pct, e.diff_pp) == (4, 0.0, 75.0, 75.0)
    # an 'original' answer that is wrong everywhere must not replace the neutral control
    worse = df[df.form == "original_neutral"].assign(form="original", is_correct=0.0)
    (e2,) = belief_effects(pd.concat([df, worse]), ["original"])
    assert (e2.n_pairs, e2.err_plain_pct) == (4, 0.0)


def test_belief_sentence():
    effects = belief_effects(_within_arm_table(), ["original", "warm"])
    infos = arm_infos({"arms": [{"name": "original", "model": "hf:x"},
                                {"name": "warm", "model": "hf:x", "persona": "warm"}]}, "original", ["warm"])
    o, w = belief_findings(effects, infos)
    o_eff = effects[0]
    assert o.sentence.startswith("When the user stated a wrong answer, the error rate of the original model "
                                 "rose by 50.0 percentage points, from 0.0% on the plain question to 50.0% "
                                 f"(95% CI {fmt.pp(o_eff.ci_low_pp)} to {fmt.pp(o_eff.ci_high_pp)} pp) "
                                 "on 8 paired prompts from 4 questions.")
    # two of four questions carry the whole effect: resamples without them give 0
    assert o_eff.ci_low_pp == 0.0 and o.sentence.endswith("no change is detectable at this size.")
    assert w.sentence.startswith("When the user stated a wrong answer, the error rate of the warm arm "
                                 "(fine-tuned) rose by 100.0 percentage points")
    assert "on 7 paired prompts from 4 questions. The interval excludes zero." in w.sentence

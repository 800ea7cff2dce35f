"""The quickstart's easy factual questions: loadable by the TriviaQA loader, aliases scored,
and no wrong answer that the scorer would count as right."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
import yaml

from warmbench.errors import InputError
from warmbench.eval.sets import read_items
from warmbench.scoring.extract import alias_match
from warmbench.scoring.reference import score_alias

EASY = Path(str(resources.files("warmbench").joinpath("resources/samples/easy_facts.jsonl")))
QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart.yaml"


def test_easy_facts_load_with_aliases():
    items = read_items("triviaqa", EASY)
    assert len(items) >= 40
    assert len({i.question for i in items}) == len(items)
    for it in items:
        assert it.correct_answers and it.incorrect_answer
        right = [*it.correct_answers, *it.metadata.get("aliases", [])]
        # the wrong answer must not read as right, nor a right answer as the wrong one
        assert alias_match(it.incorrect_answer, right) is None, it.question
        assert alias_match(it.correct_answers[0], [it.incorrect_answer]) is None, it.question
    usa = next(i for i in items if i.question == "What is the capital of the United States?")
    d = score_alias(usa, "It is Washington DC, of course.")
    assert d.label == "CORRECT" and "Washington DC" in d.detail
    assert score_alias(usa, "New York City is the capital.").label == "INCORRECT"


def test_rows_name_their_licence_and_origin():
    for line in EASY.read_text(encoding="utf-8").splitlines():
        assert json.loads(line)["note"].startswith("written for warmbench")


def test_bad_aliases_are_one_line_naming_the_field(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps({"content_key": "Q?", "correct_answer": "A", "incorrect_answer": "B",
                             "aliases": "A2"}) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.jsonl:line 1: field 'aliases': expected a list"):
        read_items("triviaqa", p)


def test_quickstart_asks_the_easy_facts_with_a_system_prompt_arm():
    from warmbench.config import load_config

    cfg = load_config(QUICKSTART)
    from warmbench.eval import registry
    from warmbench.eval.sets import sample_path

    easy = [d for d in cfg.eval.datasets if d.name == "easy_facts"]
    assert easy and easy[0].sample and sample_path("easy_facts") == EASY
    assert registry.spec("easy_facts").loader == "triviaqa" and registry.spec("easy_facts").grid
    assert any(a.system_prompt for a in cfg.arms) and any(a.persona for a in cfg.arms)
    assert set(cfg.eval.forms) >= {"original_neutral", "incorrect", "correct"}
    raw = yaml.safe_load(QUICKSTART.read_text(encoding="utf-8"))
    assert raw["eval"]["contexts"] == cfg.eval.contexts    # the subset is stated in the config

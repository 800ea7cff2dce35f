"""The OpenAI Batch API backend against the fake server's /v1/files and /v1/batches."""

from __future__ import annotations

import pytest

from warmbench.backends.openai_batch import (
    BATCH_KIND,
    BatchesPending,
    OpenAIBatchBackend,
    batch_backend,
)
from warmbench.fakeserver import FakeOpenAIServer
from warmbench.generation import cached_generate
from warmbench.records import ChatRequest, SamplingParams
from warmbench.store import RunStore

PARAMS = SamplingParams(temperature=0.0, max_tokens=20, seed=1)
FAST = {"poll_seconds": 0.02, "max_retries": 0, "timeout": 10}


def _reqs(n: int) -> list[ChatRequest]:
    return [ChatRequest.from_user(f"question {i}", system="Be brief.") for i in range(n)]


def _backend(srv: FakeOpenAIServer, store: RunStore, **opts) -> OpenAIBatchBackend:
    return batch_backend(f"openai:{srv.base_url}#gpt-4o-mini", store, {"openai": FAST}, **opts)


def test_batch_round_trip_at_batch_price(tmp_path):
    with FakeOpenAIServer() as srv, RunStore(tmp_path) as store, _backend(srv, store) as b:
        out = cached_generate(store, b, _reqs(5), PARAMS, kind="judge")
        assert [c.text for c in out] == [f"Echo: question {i}" for i in range(5)]
        assert srv.count() == 0 and srv.count("/v1/batches") == 1 and srv.batches.lines_received == 5
        c = out[0]
        # gpt-4o-mini at Batch rates: $0.075 / $0.30 per 1M tokens (half of list).
        assert c.usage.cost_usd == pytest.approx((c.usage.prompt_tokens * 0.075
                                                  + c.usage.completion_tokens * 0.30) / 1e6)
        again = cached_generate(store, b, _reqs(5), PARAMS, kind="judge")
        assert [x.text for x in again] == [x.text for x in out] and srv.batches.lines_received == 5
        assert [r["status"] for r in store.iter(BATCH_KIND)] == ["collected"]


def test_failed_lines_and_expired_batches_are_retried_next_run(tmp_path):
    with FakeOpenAIServer() as srv, RunStore(tmp_path) as store, _backend(srv, store) as b:
        srv.batches.fail_line = lambda cid, body: body["messages"][-1]["content"] == "question 1"
        out = cached_generate(store, b, _reqs(3), PARAMS, kind="judge")
        assert [c.ok for c in out] == [True, False, True] and "HTTP 500" in out[1].error
        srv.batches.fail_line = None
        srv.batches.mode, srv.batches.expired_done = "expired", 0
        out = cached_generate(store, b, _reqs(4), PARAMS, kind="judge")
        # Only the failed line and the new one were sent again; the batch expired unanswered.
        assert srv.batches.lines_received == 3 + 2
        assert [c.ok for c in out] == [True, False, True, False] and "expired" in out[1].error
        srv.batches.mode = "failed"
        out = cached_generate(store, b, _reqs(4), PARAMS, kind="judge")
        assert srv.batches.lines_received == 5 + 2 and "failed" in out[3].error
        srv.batches.mode = "complete"
        out = cached_generate(store, b, _reqs(4), PARAMS, kind="judge")
        assert all(c.ok for c in out) and srv.batches.lines_received == 7 + 2


def test_pending_batch_is_polled_not_resent(tmp_path):
    with FakeOpenAIServer() as srv, RunStore(tmp_path) as store:
        srv.batches.mode = "hold"
        with _backend(srv, store, max_wait=0.1) as b, pytest.raises(BatchesPending, match="run again"):
            cached_generate(store, b, _reqs(3), PARAMS, kind="judge")
        assert srv.batches.lines_received == 3
        srv.batches.mode = "complete"
        with _backend(srv, store) as b:
            out = cached_generate(store, b, _reqs(3), PARAMS, kind="judge")
        assert all(c.ok for c in out) and srv.batches.lines_received == 3
        assert srv.count("/v1/batches") == 1


def test_judge_stage_through_batches_killed_after_submit_then_resumed(tmp_path):
    """A real process is killed while its batch runs; the rerun polls the same batch: every
    verdict once, no request sent twice."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import yaml
    from typer.testing import CliRunner

    from warmbench.cli import app
    from warmbench.scoring.run import KIND_VERDICT, load_run

    with FakeOpenAIServer(reply=lambda body: "Brief check.\nVERDICT: CORRECT") as srv:
        run = tmp_path / "run"
        cfg = tmp_path / "cfg.yaml"
        cfg.write_text(yaml.safe_dump({
            "name": "batch-judge", "run_dir": str(run),
            "backend_options": {"openai": {"poll_seconds": 0.05, "max_retries": 0}},
            "eval": {"datasets": [{"name": "triviaqa", "sample": True, "n": 3}],
                     "contexts": ["unmodified"], "forms": ["original", "correct"]},
            "arms": [{"name": "original", "model": "scripted:constant=Paris."}],
            "judge": {"model": f"openai:{srv.base_url}#gpt-4o-mini", "batch": True},
        }), encoding="utf-8")
        r = CliRunner().invoke(app, ["run", str(cfg), "--to", "eval"])
        assert r.exit_code == 0, r.output
        srv.batches.mode = "hold"
        src = Path(__file__).resolve().parents[1] / "src"
        env = {**os.environ, "PYTHONPATH": str(src)}
        proc = subprocess.Popen([sys.executable, "-m", "warmbench", "run", str(cfg), "--from", "judge",
                                 "--to", "judge"], env=env, cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 120
            while srv.count("/v1/batches") == 0 and time.time() < deadline and proc.poll() is None:
                time.sleep(0.05)
            assert srv.count("/v1/batches") == 1, "the judge never submitted its batch"
            time.sleep(0.3)  # it is polling now
            assert proc.poll() is None
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        sent = srv.batches.lines_received
        srv.batches.mode = "complete"
        r = CliRunner().invoke(app, ["run", str(cfg), "--from", "judge", "--to", "judge"])
        assert r.exit_code == 0, r.output
        answers, _, _ = load_run(RunStore(run))
        assert len(answers) == 6 and sent == 6
        assert srv.batches.lines_received == 6 and srv.count("/v1/batches") == 1  # 0 duplicates
        assert srv.count() == 0  # nothing went the synchronous way
        with RunStore(run) as store:
            verdicts = list(store.iter(KIND_VERDICT))
            judged = [v for v in verdicts if str(v.get("scorer", "")).startswith("judge:")]
            assert len(judged) == 6 and len({v["answer_key"] for v in judged}) == 6
            assert {v["label"] for v in judged} == {"CORRECT"}


def test_budget_limits_what_a_batch_submits(tmp_path):
    from warmbench.budget import BudgetReached, activate, recorded_spend

    with FakeOpenAIServer() as srv, RunStore(tmp_path) as store, _backend(srv, store) as b:
        # Worst case per request at gpt-4o-mini Batch rates: (~30 bytes in, 20 out) ≈ $8e-6.
        activate(2.5e-5, tmp_path)
        try:
            with pytest.raises(BudgetReached, match="budget reached"):
                cached_generate(store, b, _reqs(6), PARAMS, kind="judge")
            first = srv.batches.lines_received
            assert 0 < first < 6 and store.usage_totals()["completions"] == first
            assert recorded_spend(tmp_path) <= 2.5e-5
            activate(1.0, tmp_path)
            out = cached_generate(store, b, _reqs(6), PARAMS, kind="judge")
            assert all(c.ok for c in out) and srv.batches.lines_received == 6
        finally:
            activate(None, tmp_path)


def test_rewrite_stage_submits_every_persona_before_waiting(tmp_path):
    """batch: true on rewrite: both personas' first passes go out in one batch before any wait
    (not one persona's batch after the other's), and every turn is rewritten once."""
    import json
    import re

    from test_rewrite import CONVS, setup_run

    from warmbench.rewrite import run_rewrite

    def reply(body):
        return re.search(r"<original_response>\n(.*)\n</original_response>",
                         body["messages"][1]["content"], re.S).group(1)

    with FakeOpenAIServer(reply=reply) as srv:
        srv.batches.polls_to_finish = 2
        cfg, store = setup_run(tmp_path, model=f"openai:{srv.base_url}#gpt-4o-mini", batch=True)
        cfg = cfg.model_copy(update={"backend_options": {"openai": {"poll_seconds": 0.02}}})
        s = run_rewrite(cfg, store)
        turns = sum(1 for c in CONVS for m in c["messages"] if m["role"] == "assistant")
        assert s["kept"] == len(CONVS) and srv.count() == 0
        # One batch with both personas, created before the first poll.
        creates = [r.number for r in srv.requests if r.method == "POST" and r.path == "/v1/batches"]
        polls = [r.number for r in srv.requests if r.method == "GET" and r.path.startswith("/v1/batches/")]
        assert len(creates) == 1 and creates[0] < min(polls)
        assert srv.batches.lines_received == 2 * turns
        assert json.loads((store.run_dir / "rewrite" / "warm_report.json").read_text())["attempts"] == turns

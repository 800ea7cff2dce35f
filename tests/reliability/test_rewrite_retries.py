"""The rewrite stage: a turn whose API request failed is a failed row, not a finished rewrite;
the next run asks exactly for it and keeps the conversation."""

from __future__ import annotations

import json
import re

from warmbench.config import parse_config
from warmbench.fakeserver import FakeOpenAIServer, Fault, FaultPlan
from warmbench.rewrite.run import run_rewrite
from warmbench.store import RunStore

CONVS = [{"id": f"c{i}", "messages": [{"role": "user", "content": q},
                                      {"role": "assistant", "content": a}]}
         for i, (q, a) in enumerate([("Capital of France?", "Paris is the capital of France."),
                                     ("Colour of the sky?", "Blue is the colour of the sky."),
                                     ("Two plus two?", "Two plus two equals four.")])]


def _echo_original(body: dict) -> str:
    user = body["messages"][1]["content"]
    return re.search(r"<original_response>\n(.*)\n</original_response>", user, re.S).group(1)


def test_failed_rewrite_request_is_retried_by_the_next_run(tmp_path):
    run = tmp_path / "run"
    (run / "curate").mkdir(parents=True)
    (run / "curate" / "train.jsonl").write_text("".join(json.dumps(c) + "\n" for c in CONVS))
    plan = FaultPlan().when_contains("Blue is the colour", Fault.http_status(400))
    with FakeOpenAIServer(reply=_echo_original, faults=plan) as srv:
        cfg = parse_config({"run_dir": str(run), "backend_options": {"openai": {
            "max_retries": 0, "env_file": None}}, "rewrite": {
            "model": f"openai:{srv.base_url}#fake-model", "personas": {"warm": "builtin:warm"},
            "retries": 0, "spot_check": 0}})
        with RunStore(run) as store:
            first = run_rewrite(cfg, store)
        assert first["failed_total"] == 1 and first["kept"] == 2
        assert first["failed_rows"] == ["rewrite warm c1 message 1"]
        plan.clear()
        sent = srv.count()
        with RunStore(run) as store:
            second = run_rewrite(cfg, store)
        assert srv.count() - sent == 1   # only the failed turn
    assert not second["skipped"] and second["failed_total"] == 0 and second["kept"] == 3

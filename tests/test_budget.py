"""``--max-usd`` / ``budget_usd``: the run stops before its recorded spend could pass the budget,
and a rerun with a larger budget finishes the rest without repeating anything."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from warmbench.budget import Budget, recorded_spend, worst_input_tokens
from warmbench.cli import app
from warmbench.fakeserver import FakeOpenAIServer
from warmbench.records import ChatRequest


def _config(tmp_path: Path, base_url: str) -> Path:
    cfg = {
        "name": "budget", "run_dir": str(tmp_path / "run"), "seed": 0,
        "backend_options": {"openai": {"backoff_base": 0.01, "max_retries": 0, "concurrency": 2}},
        "eval": {"datasets": [{"name": "mmlu", "sample": True, "n": 6},
                              {"name": "gsm8k", "sample": True, "n": 6}],
                 "structured": {"temperature": 0.0, "max_tokens": 20}},
        # Priced as gpt-4o ($2.50 / $10 per 1M tokens): a gateway serving an OpenAI model bills.
        "arms": [{"name": "original", "model": f"openai:{base_url}#gpt-4o"}],
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def _rows(run: Path) -> list[tuple]:
    con = sqlite3.connect(run / "store.sqlite")
    try:
        return con.execute("SELECT key, error, cost_usd FROM completions").fetchall()
    finally:
        con.close()


def test_max_usd_stops_below_budget_and_a_larger_budget_finishes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with FakeOpenAIServer() as srv:
        cfg = _config(tmp_path, srv.base_url)
        run = tmp_path / "run"
        # One request costs ~ (60 in, 20 out) tokens ≈ $0.00035 at gpt-4o; its reserved worst case
        # (bytes of the prompt + 20 tokens out) is larger: $0.002 allows a handful, not all 12.
        r = CliRunner().invoke(app, ["run", str(cfg), "--to", "eval", "--max-usd", "0.002"])
        assert r.exit_code != 0
        msg = str(r.exception)  # the CLI entry point prints it as one line, no traceback
        assert "budget reached" in msg and "--max-usd" in msg, r.output
        first = _rows(run)
        spent = recorded_spend(run)
        assert 0 < len(first) < 12 and all(err is None for _, err, _ in first)
        assert 0 < spent <= 0.002
        assert srv.count() == len(first)  # nothing sent that was not committed

        r = CliRunner().invoke(app, ["run", str(cfg), "--to", "eval", "--max-usd", "1"])
        assert r.exit_code == 0, r.output
        second = _rows(run)
        assert len(second) == 12 and all(err is None for _, err, _ in second)
        # Every prompt went to the server exactly once over both runs.
        assert srv.count() == 12
        bodies = [req.body for req in srv.requests if req.path == "/v1/chat/completions"]
        assert len(set(bodies)) == 12
        assert recorded_spend(run) <= 1


def test_budget_ledger_arithmetic():
    b = Budget(1.0, recorded_usd=0.5)
    assert b.try_reserve(0.3) and b.try_reserve(0.2)
    assert not b.try_reserve(0.01)          # 0.5 + 0.5 reserved: full
    b.settle(0.3, 0.1)                     # a request came back cheaper than its worst case
    assert b.total == pytest.approx(0.6) and b.try_reserve(0.15)
    assert b.not_sent == 1 and "rerun with a larger budget" in str(b.error())
    # An earlier process's open batch is reserved once, however often it is seen.
    held = Budget(1.0)
    held.hold("batch_1", 0.4)
    held.hold("batch_1", 0.4)
    assert held.reserved == pytest.approx(0.4) and not held.try_reserve(0.7)
    req = ChatRequest.from_user("héllo", system="sys")
    assert worst_input_tokens(req) == len("héllo".encode()) + len("sys") + 16

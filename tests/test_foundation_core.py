"""Records, spec parsing, config validation, the run store and cached generation."""

from __future__ import annotations

import json

import pytest

from warmbench.backends import get_backend, parse_spec
from warmbench.config import parse_config
from warmbench.errors import WarmbenchError
from warmbench.generation import cached_generate
from warmbench.records import ChatRequest, SamplingParams
from warmbench.store import RunStore


def test_parse_spec_forms():
    s = parse_spec("hf:HuggingFaceTB/SmolLM2-135M-Instruct+runs/x/checkpoint-epoch-2")
    assert (s.backend, s.model, s.adapter) == ("hf", "HuggingFaceTB/SmolLM2-135M-Instruct",
                                               "runs/x/checkpoint-epoch-2")
    o = parse_spec("openai:http://127.0.0.1:8000/v1#my-model")
    assert (o.base_url, o.model) == ("http://127.0.0.1:8000/v1", "my-model")
    assert parse_spec("openai:gpt-4o-2024-08-06").model == "gpt-4o-2024-08-06"
    with pytest.raises(WarmbenchError, match=r"unknown backend 'hff' \(known: hf, vllm, openai, scripted, inspect;"):
        parse_spec("hff:x")


def test_config_error_names_field_and_value():
    with pytest.raises(WarmbenchError) as e:
        parse_config({"arms": [{"name": "a", "model": "hf:x"}, {"name": "b", "model": "hff:x"}]}, "c.yaml")
    assert "c.yaml: arms[1].model: unknown backend 'hff' (known: hf, vllm, openai, scripted, inspect;" in str(e.value)
    with pytest.raises(WarmbenchError, match=r"eval.contexts: unknown context 'emotion:joy'"):
        parse_config({"eval": {"contexts": ["emotion:joy"]}})
    with pytest.raises(WarmbenchError, match=r"train.r: .*got 'eight'"):
        parse_config({"train": {"r": "eight"}})


def test_store_records_roundtrip_and_export(tmp_path):
    st = RunStore(tmp_path)
    st.put("thing", "k1", {"a": 1, "b": {"c": [1, 2]}})
    st.put("thing", "k1", {"a": 2, "b": {"c": [1]}})  # replace, not duplicate
    st.put_many("thing", [("k2", {"a": 3, "b": None})])
    assert st.count("thing") == 2 and st.get("thing", "k1")["a"] == 2
    st.export("thing", tmp_path / "t.parquet")
    st.export("thing", tmp_path / "t.jsonl")
    assert len((tmp_path / "t.jsonl").read_text().splitlines()) == 2
    import pandas as pd

    assert list(pd.read_parquet(tmp_path / "t.parquet")["a"]) == [2, 3]
    # WAL mode is on.
    assert st._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_cached_generate_only_does_missing(tmp_path):
    st = RunStore(tmp_path)
    be = get_backend("scripted:echo")
    reqs = [ChatRequest.from_user(f"q{i}") for i in range(5)]
    p = SamplingParams(temperature=0.8, max_tokens=20)
    out = cached_generate(st, be, reqs[:3], p, kind="test")
    assert [c.text for c in out] == ["q0", "q1", "q2"] and be.calls == 3
    out = cached_generate(st, be, reqs, p, kind="test")
    assert [c.text for c in out] == [f"q{i}" for i in range(5)] and be.calls == 5
    # A different sample index is a different generation.
    cached_generate(st, be, reqs[:1], p, kind="test", sample_index=1)
    assert be.calls == 6
    assert st.usage_totals()["completions"] == 6


def test_failed_completion_is_retried(tmp_path):
    from warmbench.records import Completion

    st = RunStore(tmp_path)
    be = get_backend("scripted:echo")
    req = ChatRequest.from_user("x")
    p = SamplingParams()
    from warmbench.store import completion_key

    k = completion_key(be.spec.identity(), req, p)
    st.put_completion(k, model="scripted:echo", kind="t", request=req, params=p, sample_index=0,
                      completion=Completion(error="HTTP 500"))
    assert st.get_completion(k) is None
    assert cached_generate(st, be, [req], p, kind="t")[0].text == "x"
    row = st.completion_rows("t")[0]
    assert row["attempts"] == 2 and row["error"] is None


def test_manifest_redacts_secrets(tmp_path, monkeypatch):
    from warmbench.manifest import update_manifest

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET-123456")
    p = update_manifest(tmp_path, config={"api_key": "sk-test-SECRET-123456",
                                          "note": "key sk-test-SECRET-123456 here"})
    text = p.read_text()
    assert "SECRET" not in text and json.loads(text)["versions"]["warmbench"]
    # credential-named keys are masked, token *counts* are not (the config is read back)
    p = update_manifest(tmp_path / "b", config={"hf_token": "abc", "token": "x", "client_secret": "y",
                                          "judge": {"max_tokens": 512}, "prompt_tokens": 7})
    cfg = json.loads(p.read_text())["config"]
    assert cfg == {"hf_token": "***", "token": "***", "client_secret": "***",
                   "judge": {"max_tokens": 512}, "prompt_tokens": 7}


def test_cli_version():
    from typer.testing import CliRunner

    from warmbench.cli import app

    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout.startswith("warmbench ")

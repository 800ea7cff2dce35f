"""The run store's schema is versioned: old stores migrate, newer ones are refused."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from warmbench import store as store_mod
from warmbench.errors import WarmbenchError
from warmbench.layout import STORE_SQLITE
from warmbench.records import ChatRequest, SamplingParams
from warmbench.store import RunStore, completion_key, schema_version

# Written by warmbench before the schema was versioned (user_version 0): three completions
# (one failed), four items, one verdict and one meta entry.
FIXTURE = Path(__file__).parent / "fixtures" / "store_schema0.sqlite"


def _user_version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


def test_a_store_written_before_versioning_migrates_and_keeps_every_row(tmp_path):
    shutil.copy(FIXTURE, tmp_path / STORE_SQLITE)
    assert _user_version(tmp_path / STORE_SQLITE) == 0
    with RunStore(tmp_path) as s:
        assert s.keys("item") == {f"triviaqa:q{i}" for i in range(4)}
        assert s.get("item", "triviaqa:q2")["question"] == "Q2?"
        assert s.get("verdict", "judge|abc") == {"label": "CORRECT"}
        assert s.get_meta("stage.eval") == {"done": True}
        rows = s.completion_rows()
        assert [r["text"] for r in rows] == ["answer 0", "answer 1", None]
        assert rows[2]["error"] == "HTTP 500"
        totals = s.usage_totals()
        assert (totals["completions"], totals["failed"], totals["prompt_tokens"]) == (3, 1, 21)
        # The keys of old rows are still the keys today's code computes: a rerun reuses them.
        req = ChatRequest.from_user("What is the capital of France?", tag="p0")
        key = completion_key("hf:smollm2-135m", req, SamplingParams())
        assert s.get_completion(key).text == "answer 0"
    assert _user_version(tmp_path / STORE_SQLITE) == schema_version()


def test_a_new_store_is_stamped_with_the_current_schema(tmp_path):
    RunStore(tmp_path).close()
    assert _user_version(tmp_path / STORE_SQLITE) == schema_version() >= 1


def test_a_store_from_a_newer_warmbench_is_a_clear_error(tmp_path):
    RunStore(tmp_path).close()
    db = sqlite3.connect(tmp_path / STORE_SQLITE)
    db.execute(f"PRAGMA user_version = {schema_version() + 1}")
    db.commit()
    db.close()
    with pytest.raises(WarmbenchError, match="newer warmbench"):
        RunStore(tmp_path)


def test_migrations_run_in_order_and_only_once(tmp_path, monkeypatch):
    shutil.copy(FIXTURE, tmp_path / STORE_SQLITE)
    extra = ("CREATE TABLE later (x INTEGER)", "INSERT INTO later VALUES (1)")
    monkeypatch.setattr(store_mod, "MIGRATIONS", (*store_mod.MIGRATIONS, extra))
    RunStore(tmp_path).close()
    RunStore(tmp_path).close()  # already at the new version: the INSERT must not run again
    db = sqlite3.connect(tmp_path / STORE_SQLITE)
    assert db.execute("SELECT COUNT(*) FROM later").fetchone()[0] == 1
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(store_mod.MIGRATIONS)
    db.close()


def test_a_failing_migration_leaves_the_store_as_it_was(tmp_path, monkeypatch):
    shutil.copy(FIXTURE, tmp_path / STORE_SQLITE)
    bad = ("CREATE TABLE half (x INTEGER)", "THIS IS NOT SQL")
    monkeypatch.setattr(store_mod, "MIGRATIONS", (*store_mod.MIGRATIONS, bad))
    with pytest.raises(sqlite3.OperationalError):
        RunStore(tmp_path)
    db = sqlite3.connect(tmp_path / STORE_SQLITE)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert "half" not in tables
    assert _user_version(tmp_path / STORE_SQLITE) == 0


def test_cached_tokens_are_stored_and_totalled(tmp_path):
    from warmbench.records import Completion, Usage

    with RunStore(tmp_path) as s:
        req = ChatRequest.from_user("hi")
        s.put_completion("k1", model="openai:gpt-4o", kind="eval", request=req, params=SamplingParams(),
                         sample_index=0, completion=Completion(text="x", usage=Usage(
                             prompt_tokens=100, completion_tokens=5, cost_usd=0.001, cached_tokens=64)))
        assert s.get_completion("k1").usage.cached_tokens == 64
        assert s.usage_totals()["cached_tokens"] == 64

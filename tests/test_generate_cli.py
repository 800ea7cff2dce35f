"""``warmbench generate`` / ``warmbench models``: JSONL in and out, resumability, bad input."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from warmbench.cli import app
from warmbench.errors import InputError, WarmbenchError

runner = CliRunner()
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false"}


def _jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _write(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_prompt_to_stdout(tmp_path):
    r = runner.invoke(app, ["generate", "--model", "scripted:echo", "--prompt", "Bonjour",
                            "--run-dir", str(tmp_path / "run"), "--no-progress"])
    assert r.exit_code == 0, r.output
    (row,) = _jsonl(r.stdout)
    assert row["text"] == "Bonjour" and row["id"] == "1" and row["finish_reason"] == "stop"
    assert row["model"] == "scripted:echo" and row["error"] is None
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["generate"]["model"] == "scripted:echo"


def test_input_file_samples_and_cache(tmp_path):
    inp = _write(tmp_path / "in.jsonl", [
        {"id": "q1", "prompt": "What is the capital of France?"},
        "",
        {"messages": [{"role": "system", "content": "Be terse."},
                      {"role": "user", "content": "2+2?"}]},
        {"prompt": "Name a colour.", "system": "Answer in one word."},
    ])
    out = tmp_path / "out.jsonl"
    args = ["generate", "-m", "scripted:hash", "-i", str(inp), "--samples", "2",
            "--temperature", "0.7", "--run-dir", str(tmp_path / "run"), "-o", str(out),
            "--no-progress"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    rows = _jsonl(out.read_text())
    assert [(x["id"], x["sample_index"]) for x in rows] == [
        ("q1", 0), ("q1", 1), ("3", 0), ("3", 1), ("4", 0), ("4", 1)]
    assert all(x["text"] for x in rows)
    from warmbench.store import RunStore

    with RunStore(tmp_path / "run") as st:
        first = {x["key"]: x["created"] for x in st.completion_rows("generate")}
    assert len(first) == 6
    # Again: served from the store, nothing regenerated, identical output.
    r2 = runner.invoke(app, args)
    assert r2.exit_code == 0 and _jsonl(out.read_text()) == rows
    with RunStore(tmp_path / "run") as st:
        assert {x["key"]: x["created"] for x in st.completion_rows("generate")} == first


@pytest.mark.parametrize("line, match", [
    ('{"prompt": "ok"}\n{"prompt": 3}', r"in\.jsonl:line 2: field 'prompt': must be a non-empty string"),
    ('{"prompt": "ok"}\n{oops', r"in\.jsonl:line 2: not valid JSON"),
    ('{"question": "x"}', r"in\.jsonl:line 1: field 'prompt': missing"),
    ('{"messages": [{"role": "robot", "content": "x"}]}',
     r"line 1: field 'messages\[0\]\.role': 'robot' is not one of"),
    ('{"messages": [{"role": "user"}]}', r"line 1: field 'messages\[0\]\.content': must be a string"),
    ('[1, 2]', r"line 1: expected a JSON object"),
    ('{"id": [1], "prompt": "x"}', r"line 1: field 'id'"),
])
def test_bad_input_names_file_line_and_field(tmp_path, line, match):
    inp = tmp_path / "in.jsonl"
    inp.write_text(line + "\n")
    r = runner.invoke(app, ["generate", "-m", "scripted:echo", "-i", str(inp),
                            "--run-dir", str(tmp_path / "run")])
    assert isinstance(r.exception, InputError)
    import re

    assert re.search(match, str(r.exception)), str(r.exception)
    assert "\n" not in str(r.exception)


def test_prompt_xor_input(tmp_path):
    r = runner.invoke(app, ["generate", "-m", "scripted:echo", "--run-dir", str(tmp_path)])
    assert isinstance(r.exception, WarmbenchError) and "exactly one" in str(r.exception)


def test_user_error_is_one_line_exit_2(tmp_path):
    p = subprocess.run([sys.executable, "-m", "warmbench", "generate", "-m", "hff:x", "-p", "hi",
                        "--run-dir", str(tmp_path)], capture_output=True, text=True, env=ENV,
                       timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "unknown backend 'hff'" in p.stderr


def test_models_list_and_prepare_errors():
    r = runner.invoke(app, ["models", "--json"])
    assert r.exit_code == 0
    names = {x["name"] for x in json.loads(r.stdout)}
    assert {"smollm2-135m", "gemma3-270m", "all-minilm-l6-v2"} <= names
    r = runner.invoke(app, ["models", "prepare"])
    assert isinstance(r.exception, WarmbenchError) and "NAME or --all" in str(r.exception)
    r = runner.invoke(app, ["models", "prepare", "all-minilm-l6-v2"])
    assert r.exit_code == 0 and "all-minilm-l6-v2:" in r.stdout


def _rows(run_dir: Path) -> dict[str, tuple[str, float]]:
    db = sqlite3.connect(run_dir / "store.sqlite")
    try:
        return {k: (t, c) for k, t, c in db.execute(
            "SELECT key, text, created FROM completions WHERE error IS NULL")}
    finally:
        db.close()


def _count(run_dir: Path) -> int:
    if not (run_dir / "store.sqlite").exists():
        return 0
    try:
        db = sqlite3.connect(run_dir / "store.sqlite", timeout=1)
        try:
            return db.execute("SELECT COUNT(*) FROM completions").fetchone()[0]
        finally:
            db.close()
    except sqlite3.OperationalError:  # table not created yet
        return 0


def test_sigkill_half_way_then_rerun_equals_uninterrupted(tiny_llama, tmp_path):
    n = 16
    inp = _write(tmp_path / "in.jsonl", [{"id": f"r{i}", "prompt": f"Question number {i}?"}
                                          for i in range(n)])

    def args(run_dir: Path, out: Path) -> list[str]:
        return ["generate", "-m", f"hf:{tiny_llama}", "-i", str(inp), "--max-tokens", "8",
                "--batch-size", "1", "--no-progress", "--run-dir", str(run_dir), "-o", str(out)]

    def cmd(run_dir: Path, out: Path) -> list[str]:
        return [sys.executable, "-m", "warmbench", *args(run_dir, out)]

    killed = tmp_path / "killed"
    proc = subprocess.Popen(cmd(killed, tmp_path / "k.jsonl"), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while _count(killed) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _rows(killed)
    assert 3 <= len(before) < n, f"kill landed at {len(before)} rows"
    assert not (tmp_path / "k.jsonl").exists()

    subprocess.run(cmd(killed, tmp_path / "k.jsonl"), env=ENV, check=True, timeout=300,
                   capture_output=True)
    # The uninterrupted reference run happens in-process (saves a torch import).
    r = runner.invoke(app, args(tmp_path / "clean", tmp_path / "c.jsonl"))
    assert r.exit_code == 0, r.output
    resumed, clean = _rows(killed), _rows(tmp_path / "clean")
    assert len(resumed) == len(clean) == n
    assert {k: t for k, (t, _) in resumed.items()} == {k: t for k, (t, _) in clean.items()}
    # Rows finished before the kill were kept, not regenerated.
    assert all(resumed[k][1] == created for k, (_, created) in before.items())
    out_k, out_c = _jsonl((tmp_path / "k.jsonl").read_text()), _jsonl((tmp_path / "c.jsonl").read_text())
    assert out_k == out_c and [r["id"] for r in out_k] == [f"r{i}" for i in range(n)]


@pytest.mark.slow
def test_generate_embedded_model_answers_offline(tmp_path):
    p = subprocess.run([sys.executable, "-m", "warmbench", "generate", "--model", "hf:smollm2-135m",
                        "--prompt", "What is the capital of France?", "--max-tokens", "32",
                        "--run-dir", str(tmp_path / "run"), "--no-progress"],
                       capture_output=True, text=True, env=ENV, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    (row,) = _jsonl(p.stdout)
    assert "Paris" in row["text"]


def test_export_completions_and_records(tmp_path):
    """`warmbench export RUN` lists what the store holds; `export RUN completions` writes the
    raw generation table (messages, reply, tokens) as parquet or JSONL; errors are one line."""
    import pandas as pd

    run = tmp_path / "run"
    r = runner.invoke(app, ["generate", "-m", "scripted:echo", "-p", "Bonjour", "--system", "Be brief.",
                            "--run-dir", str(run), "--no-progress"])
    assert r.exit_code == 0, r.output
    listing = runner.invoke(app, ["export", str(run)])
    assert listing.exit_code == 0 and "completions\t1" in listing.stdout
    r = runner.invoke(app, ["export", str(run), "completions"])
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(run / "exports" / "completions.parquet")
    assert len(df) == 1 and df.text[0] == "Bonjour" and df.model[0] == "scripted:echo"
    assert json.loads(df.request[0])[0] == {"role": "system", "content": "Be brief."}
    out = tmp_path / "c.jsonl"
    assert runner.invoke(app, ["export", str(run), "completions", "-o", str(out)]).exit_code == 0
    assert _jsonl(out.read_text())[0]["text"] == "Bonjour"
    bad = runner.invoke(app, ["export", str(run), "nope"])
    assert "unknown kind 'nope'" in str(bad.exception) and "known: completions" in str(bad.exception)
    assert "no such run directory" in str(runner.invoke(app, ["export", str(tmp_path / "empty")]).exception)

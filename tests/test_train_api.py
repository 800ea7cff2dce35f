"""OpenAI API fine-tuning against the local fake server's fine-tuning endpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from warmbench.config import parse_config
from warmbench.errors import WarmbenchError
from warmbench.fakeserver import FakeOpenAIServer
from warmbench.fakeserver.fine_tuning import FakeFineTuning
from warmbench.store import RunStore


def write_chats(path: Path, persona: str, n: int = 6) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"{persona}{i}", "messages": [
                {"role": "user", "content": f"Capital of France? ({i})"},
                {"role": "assistant", "content": f"({persona}) Paris."}]}) + "\n")


@pytest.fixture()
def server():
    with FakeOpenAIServer() as srv:
        yield srv


def make_cfg(run: Path, srv, epochs: int = 4):
    return parse_config({"run_dir": str(run), "train": {
        "method": "openai", "epochs": epochs, "api_poll_seconds": 0.001,
        "api_model": f"openai:{srv.base_url}#gpt-4o-2024-08-06"}})


def posts(srv, path: str) -> list:
    return [r for r in srv.requests if r.method == "POST" and r.path == path]


def test_jobs_created_with_study_multipliers_and_checkpoints_recorded_as_arms(tmp_path, server):
    from warmbench.train import run_train

    ft = FakeFineTuning(batch_size=2).register(server)
    for p in ("warm", "cold"):
        write_chats(tmp_path / "rewrite" / f"{p}.jsonl", p)
    store = RunStore(tmp_path)
    summary = run_train(make_cfg(tmp_path, server), store)
    assert summary["personas"] == {"warm": "fine-tuned", "cold": "fine-tuned"}

    jobs = {r.json["suffix"]: r.json for r in posts(server, "/v1/fine_tuning/jobs")}
    assert jobs["wb-warm"]["method"]["supervised"]["hyperparameters"] == {
        "n_epochs": 4, "learning_rate_multiplier": 0.25, "batch_size": "auto"}
    assert jobs["wb-cold"]["method"]["supervised"]["hyperparameters"]["learning_rate_multiplier"] == 0.1
    assert jobs["wb-warm"]["model"] == "gpt-4o-2024-08-06"
    # Uploaded lines carry only the chat: our ids stay local.
    assert all(f["n_examples"] == 6 for f in ft.files.values())

    rec = json.loads((tmp_path / "train" / "warm" / "api_job.json").read_text())
    assert rec["status"] == "succeeded" and rec["job_id"].startswith("ftjob-")
    # Training billed at gpt-4o-2024-08-06's $25 per 1M trained tokens (warmbench.prices).
    assert rec["cost_usd"] == pytest.approx(rec["trained_tokens"] * 25.0 / 1e6) and rec["cost_usd"] > 0
    ckpts = json.loads((tmp_path / "train" / "warm" / "checkpoints.json").read_text())
    # 6 examples / batch 2 = 3 steps per epoch; the API keeps epochs 2, 3, 4 (4 = final model).
    assert [(c["epoch"], c["step"]) for c in ckpts] == [(2.0, 6), (3.0, 9), (4.0, 12)]
    final = ckpts[-1]
    assert final["model"] == rec["fine_tuned_model"] and ":ckpt-step-" not in final["model"]
    assert final["spec"] == f"openai:{server.base_url}#{final['model']}"
    assert ckpts[0]["model"].endswith(":ckpt-step-6")
    assert store.get_meta("train.warm")["checkpoints"][-1]["spec"] == final["spec"]

    before = len(server.requests)
    again = run_train(make_cfg(tmp_path, server), store)
    assert set(again["personas"].values()) == {"skipped (already fine-tuned)"}
    assert len(server.requests) == before


def test_crash_while_polling_resumes_the_same_job(tmp_path, server):
    from warmbench.train.api import train_openai

    FakeFineTuning(running_polls=4).register(server)
    write_chats(tmp_path / "rewrite" / "warm.jsonl", "warm")
    cfg, store = make_cfg(tmp_path, server, epochs=2), RunStore(tmp_path)

    def crash(_seconds):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_openai(cfg, store, "warm", tmp_path / "rewrite" / "warm.jsonl", sleep=crash)
    rec = json.loads((tmp_path / "train" / "warm" / "api_job.json").read_text())
    assert rec["job_id"] and rec["file_id"] and rec["status"] != "succeeded"
    res = train_openai(cfg, store, "warm", tmp_path / "rewrite" / "warm.jsonl", sleep=lambda s: None)
    assert res["job_id"] == rec["job_id"] and res["status"] == "fine-tuned"
    assert len(posts(server, "/v1/files")) == 1
    assert len(posts(server, "/v1/fine_tuning/jobs")) == 1


def test_failed_job_is_one_clean_error_and_bad_epochs_refused(tmp_path, server):
    from warmbench.train.api import train_openai

    FakeFineTuning(fail=True).register(server)
    write_chats(tmp_path / "rewrite" / "cold.jsonl", "cold")
    data = tmp_path / "rewrite" / "cold.jsonl"
    with pytest.raises(WarmbenchError, match=r"for cold failed: The job failed due to an invalid"):
        train_openai(make_cfg(tmp_path, server), RunStore(tmp_path), "cold", data, sleep=lambda s: None)
    rec = json.loads((tmp_path / "train" / "cold" / "api_job.json").read_text())
    assert rec["status"] == "failed"
    cfg = parse_config({"run_dir": str(tmp_path), "train": {
        "epochs": 2.5, "api_model": f"openai:{server.base_url}#gpt-4o"}})
    with pytest.raises(WarmbenchError, match="whole number"):
        train_openai(cfg, RunStore(tmp_path / "x"), "cold", data)


def test_cli_api_openai(tmp_path, server, monkeypatch):
    from typer.testing import CliRunner

    from warmbench.cli import app

    FakeFineTuning().register(server)
    write_chats(tmp_path / "rewrite" / "warm.jsonl", "warm")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"run_dir: {tmp_path}\ntrain:\n  epochs: 1\n  api_poll_seconds: 0.001\n"
                   f"  api_model: 'openai:{server.base_url}#gpt-4o-mini'\n")
    res = CliRunner().invoke(app, ["train", str(cfg), "--api", "openai", "--persona", "warm",
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "warm: fine-tuned; 1 checkpoint(s)" in res.output

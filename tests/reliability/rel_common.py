"""Shared pieces of the reliability tests: a small study config with one API arm on the fake
OpenAI server, the fast retry options, and what the server and the store saw."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from warmbench.fakeserver import FakeOpenAIServer
from warmbench.progress import Progress
from warmbench.store import RunStore

# Retries take no time; one retry per request; a slow reply times out after 0.5 s.
FAST_OPENAI = {"max_retries": 1, "backoff_base": 0.01, "backoff_max": 0.02, "timeout": 0.5,
               "env_file": None, "concurrency": 4}


def study(run_dir: Path, arm_url: str | None, judge_url: str | None = None,
          n: int = 2) -> dict[str, Any]:
    """TriviaQA sample items x (unmodified) x (original, incorrect): 2n prompts per arm. Arm
    ``original`` is scripted; arm ``api`` answers through ``arm_url`` (scripted when None); the
    judge is the fake server at ``judge_url`` (offline reference scorers when None)."""
    return {
        "name": "reliability", "run_dir": str(run_dir), "seed": 3,
        "backend_options": {"openai": dict(FAST_OPENAI)},
        "eval": {"datasets": [{"name": "triviaqa", "sample": True, "n": n}],
                 "contexts": ["unmodified"], "forms": ["original", "incorrect"],
                 "free_text": {"max_tokens": 16}},
        "arms": [{"name": "original", "model": "scripted:echo"},
                 {"name": "api", "model": f"openai:{arm_url}#fake-model" if arm_url
                  else "scripted:constant=Mars"}],
        "judge": {"model": f"openai:{judge_url}#fake-judge" if judge_url else None},
        "stats": {"baseline": "original"},
    }


def judge_or_echo(body: dict) -> str:
    """Fake server replies: a verdict for the judge's requests, an echo for an arm's."""
    if body.get("model") == "fake-judge":
        return "The answer is fine.\nVERDICT: CORRECT"
    last = body["messages"][-1]["content"]
    return f"Mars. {last[:40]}"


def body_key(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def answered_twice(srv: FakeOpenAIServer) -> list[str]:
    """Request bodies the server answered successfully more than once (a duplicate call)."""
    ok = Counter(body_key(r.body) for r in srv.requests if r.status == 200 and r.fault is None)
    return [k for k, n in ok.items() if n > 1]


def status(run_dir: Path, stage: str) -> str:
    with RunStore(run_dir) as store:
        return (store.get_meta(f"stage.{stage}") or {}).get("status", "pending")


def scored(run_dir: Path) -> pd.DataFrame:
    df = pd.read_parquet(run_dir / "judge" / "scored.parquet")
    return df.sort_values(["arm", "prompt_key", "sample_index"]).reset_index(drop=True)


class Quiet(Progress):
    def __init__(self) -> None:
        super().__init__(enabled=False)
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        self.lines.append(message)

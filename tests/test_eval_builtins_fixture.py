"""The seven built-in sets give the same prompts, prompt keys and scored rows as before the
evaluation refactor (issue 17): compared against ``fixtures/builtin_eval.json``, captured from
the code before it.

Regenerate only on a deliberate change of the study's prompts or scoring:
``PYTHONPATH=src python tests/test_eval_builtins_fixture.py``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pandas as pd
from test_scoring_reference import bow_embedder

from warmbench.config import parse_config
from warmbench.scoring.judge import build_request, prompt_for
from warmbench.scoring.run import load_run, run_judge
from warmbench.store import RunStore

FIXTURE = Path(__file__).parent / "fixtures" / "builtin_eval.json"
BUILTINS = ("triviaqa", "truthfulqa", "medqa", "disinfo", "mmlu", "gsm8k", "advbench")
SCORED_KEEP = ["arm", "item_id", "prompt_key", "context", "form", "label", "refused", "scorer",
               "is_correct"]


def _digest(rows: list) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()


def snapshot(tmp: Path) -> dict:
    """Everything the study's built-ins produce, per set: a digest of all rows plus the first
    item's rows in full (readable when the test fails)."""
    cfg = parse_config({
        "run_dir": str(tmp / "run"), "seed": 0,
        "eval": {"datasets": [{"name": n, "sample": True} for n in BUILTINS]},
        "arms": [{"name": "original", "model": "scripted:echo"},
                 {"name": "warm", "model": "scripted:hash"}]})
    from warmbench.eval.run import run_eval

    with RunStore(cfg.run_dir) as store:
        run_eval(cfg, store)
        run_judge(cfg, store, embedder=bow_embedder)
        answers, items, prompts = load_run(store)
    scored = pd.read_parquet(tmp / "run" / "judge" / "scored.parquet")
    out: dict = {}
    for ds in BUILTINS:
        ps = sorted((p for p in prompts.values() if p.dataset == ds), key=lambda p: p.key)
        first = min(p.item_id for p in ps)
        prows = [[p.key, p.item_id, p.context, p.form, p.text, p.statement] for p in ps]
        sc = scored[scored.dataset == ds][SCORED_KEEP].sort_values(["prompt_key", "arm"])
        srows = [[None if isinstance(v, float) and v != v else v for v in r]
                 for r in sc.astype(object).values.tolist()]
        item = next(it for it in items.values() if it.dataset == ds and it.id == first)
        ans = next(a for a in answers if a.dataset == ds and a.item_id == first)
        req = build_request(prompt_for(ds), item, ans.text, prompts[ans.prompt_key].text)
        out[ds] = {
            "n_prompts": len(prows), "prompts_digest": _digest(prows),
            "first_item_prompts": [r for r in prows if r[1] == first],
            "n_scored": len(srows), "scored_digest": _digest(srows),
            "labels": dict(sorted(Counter(r[5] for r in srows).items())),
            "first_item_scored": [r for r in srows if r[1] == first],
            "judge_request_digest": _digest([[m.role, m.content] for m in req.messages]),
        }
    return out


def test_builtins_unchanged(tmp_path):
    want = json.loads(FIXTURE.read_text(encoding="utf-8"))
    got = json.loads(json.dumps(snapshot(tmp_path), default=str))
    assert set(got) == set(want)
    for ds in BUILTINS:
        for k in want[ds]:
            assert got[ds][k] == want[ds][k], f"{ds}.{k} differs from the captured fixture"


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        FIXTURE.write_text(json.dumps(snapshot(Path(d)), indent=1, default=str) + "\n",
                           encoding="utf-8")
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes)")

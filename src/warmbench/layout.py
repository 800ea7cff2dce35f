"""Where each stage reads and writes inside a run directory, and the shared table schemas.

One place for these so stages that never import each other still agree on their hand-offs.

Run directory::

    RUN/store.sqlite                     source of truth (completions, records, meta)
    RUN/manifest.json                    resolved config, versions, git revision, seeds
    RUN/curate/train.jsonl               curated conversations  {id, messages, query_type}
    RUN/curate/validation.jsonl          held-out user prompts  {id, prompt, query_type}
    RUN/curate/summary.csv
    RUN/rewrite/<persona>.jsonl          SFT chat format        {id, messages}
    RUN/rewrite/<persona>_report.json    check/failure rates
    RUN/train/<persona>/checkpoint-epoch-<E>/   PEFT adapters (+ warmbench_checkpoint.json)
    RUN/train/<persona>/checkpoints.json [{epoch, step, path}]
    RUN/warmth/trajectory.csv|png, RUN/warmth/selected.json {persona: adapter path}
    RUN/eval/answers.parquet
    RUN/judge/scored.parquet             the scored table below
    RUN/stats/*.csv, RUN/stats/figures/*.png|svg
    RUN/report.html
"""

from __future__ import annotations

from pathlib import Path

from .safenames import inside

# Record kinds in the store (``RunStore.put(kind, key, ...)``).
KIND_ITEM = "item"          # Item, key f"{dataset}:{id}"
KIND_PROMPT = "prompt"      # Prompt, key Prompt.key
KIND_ANSWER = "answer"      # Answer, key Answer.key
KIND_VERDICT = "verdict"    # Verdict, key f"{scorer}|{answer_key}"

# Meta keys (``RunStore.set_meta``).
META_SELECTED = "warmth.selected"   # {persona: adapter path} written by checkpoint choice

# The scored table (RUN/judge/scored.parquet): one row per answer, input of stats/report.
SCORED_COLUMNS = {
    "model_family": "base model the arms share (a fixed effect in the regressions)",
    "arm": "arm name: original, warm, cold, warm-sysprompt, ...",
    "model": "full model spec of the arm",
    "dataset": "triviaqa, truthfulqa, medqa, disinfo, mmlu, gsm8k, advbench",
    "item_id": "question id (regressions cluster standard errors by it)",
    "prompt_key": "identical across arms for identical prompts: the pairing key",
    "context": "unmodified or a sub-type such as emotion:anger",
    "form": "original, incorrect, correct or original_neutral",
    "prompt": "the user message",
    "answer": "the model's answer (untrusted text)",
    "label": "CORRECT, INCORRECT, REFUSED or UNPARSEABLE",
    "refused": "refusal detector fired",
    "is_correct": "1.0 / 0.0 after the refusal rule; NaN = excluded",
    "scorer": "which scorer decided (reference:* or judge:<spec>@<version>)",
    "sample_index": "answer sample number",
}


def run_path(run_dir: str | Path, *parts: str) -> Path:
    """``run_dir/parts...`` with its folder made; refused if it would leave ``run_dir``."""
    p = inside(run_dir, *parts)
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def epoch_label(epoch: float) -> str:
    """0.5 -> '0.5', 2.0 -> '2' (checkpoint folder names)."""
    return f"{epoch:g}"

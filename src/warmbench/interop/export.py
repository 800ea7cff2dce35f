"""A warmbench run as Inspect eval logs: one log per arm, for ``inspect view`` and other tools.

Reads RUN/judge/scored.parquet (every answer with its verdict and the refusal rule applied) and
the store's items (for the targets). Each answer becomes an ``EvalSample``: id = the prompt key
(identical across arms, so the arms' logs pair in ``warmbench compare``), epoch = sample index
+ 1, input = the prompt, messages = system prompt (if the arm had one) + prompt + answer, and one
score ``warmbench``: ``C`` correct, ``I`` incorrect, ``N`` excluded (refused or unparseable),
with the warmbench label and scorer in its metadata.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import MissingExtraError, WarmbenchError
from ..layout import KIND_ITEM, RunLayout
from ..records import item_key


def _arm_prompts(run_dir: Path) -> dict[str, str | None]:
    try:
        m = json.loads(RunLayout(run_dir).manifest.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return {a["name"]: a.get("system_prompt") for a in (m.get("eval") or {}).get("arms") or []}


def _targets(run_dir: Path) -> dict[str, list[str]]:
    from ..store import RunStore

    if not RunLayout(run_dir).store.exists():
        return {}
    with RunStore(run_dir) as store:
        return {item_key(d["dataset"], d["id"]): list(d.get("correct_answers") or [])
                for d in store.iter(KIND_ITEM)}


def _value(is_correct: Any) -> str:
    if is_correct is None or (isinstance(is_correct, float) and math.isnan(is_correct)):
        return "N"
    return "C" if float(is_correct) == 1.0 else "I"


def arm_log(df: pd.DataFrame, arm: str, task: str, system_prompt: str | None,
            targets: dict[str, list[str]]) -> Any:
    """One arm's rows of the scored table as an ``EvalLog``."""
    from inspect_ai.log import (
        EvalConfig,
        EvalDataset,
        EvalLog,
        EvalMetric,
        EvalResults,
        EvalSample,
        EvalScore,
        EvalSpec,
    )
    from inspect_ai.model import (
        ChatMessageAssistant,
        ChatMessageSystem,
        ChatMessageUser,
        ModelOutput,
    )
    from inspect_ai.scorer import Score

    rows = df[df["arm"] == arm]
    model = str(rows["model"].iloc[0])
    samples = []
    for r in rows.itertuples(index=False):
        value = _value(r.is_correct)
        msgs = [ChatMessageSystem(content=system_prompt)] if system_prompt else []
        msgs += [ChatMessageUser(content=str(r.prompt)),
                 ChatMessageAssistant(content=str(r.answer), model=model)]
        samples.append(EvalSample(
            id=str(r.prompt_key), epoch=int(r.sample_index) + 1, input=str(r.prompt),
            target=targets.get(item_key(str(r.dataset), str(r.item_id)), []), messages=msgs,
            output=ModelOutput.from_content(model=model, content=str(r.answer)),
            scores={"warmbench": Score(value=value, answer=str(r.answer), explanation=str(r.label),
                                       metadata={"label": str(r.label), "scorer": str(r.scorer),
                                                 "refused": bool(r.refused)})},
            metadata={"dataset": str(r.dataset), "item_id": str(r.item_id),
                      "context": str(r.context), "form": str(r.form), "arm": arm}))
    scored = [s for s in samples if s.scores["warmbench"].value != "N"]
    acc = sum(s.scores["warmbench"].value == "C" for s in scored) / len(scored) if scored else 0.0
    ids = sorted({s.id for s in samples})
    epochs = max((s.epoch for s in samples), default=1)
    spec = EvalSpec(
        created=datetime.now(UTC).isoformat(timespec="seconds"), task=task,
        task_args={"arm": arm, "system_prompt": system_prompt},
        dataset=EvalDataset(name=task, samples=len(ids), sample_ids=ids),
        model=model, config=EvalConfig(epochs=epochs), metadata={"exported_by": "warmbench"})
    results = EvalResults(total_samples=len(samples), completed_samples=len(samples), scores=[
        EvalScore(name="warmbench", scorer="warmbench", scored_samples=len(scored),
                  unscored_samples=len(samples) - len(scored),
                  metrics={"accuracy": EvalMetric(name="accuracy", value=acc)})])
    return EvalLog(status="success", eval=spec, results=results, samples=samples)


def export_inspect(run_dir: str | Path, out_dir: str | Path | None = None,
                   fmt: str = "eval") -> list[Path]:
    """Write RUN/exports/inspect/<arm>.eval (or .json) for every arm; return the paths."""
    try:
        from inspect_ai.log import write_eval_log
    except ImportError as exc:
        raise MissingExtraError("inspect-ai", "inspect", "export --format inspect") from exc
    run_dir = Path(run_dir)
    layout = RunLayout(run_dir)
    scored = layout.scored
    if not scored.exists():
        raise WarmbenchError(f"no scored table at {scored}: run `warmbench judge` first "
                             "(the Inspect logs carry each answer's verdict)")
    if fmt not in ("eval", "json"):
        raise WarmbenchError(f"inspect log format {fmt!r}: expected 'eval' or 'json'")
    df = pd.read_parquet(scored)
    out = Path(out_dir) if out_dir else layout.inspect_exports
    out.mkdir(parents=True, exist_ok=True)
    prompts, targets = _arm_prompts(run_dir), _targets(run_dir)
    task = f"warmbench/{run_dir.resolve().name}"
    paths = []
    for arm in sorted(map(str, df["arm"].unique())):
        log = arm_log(df, arm, task, prompts.get(arm), targets)
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in arm)
        path = out / f"{safe}.{fmt}"
        write_eval_log(log, str(path))
        paths.append(path)
    return paths

"""``run_judge``: score every stored answer, apply the refusal rule, write the scored table.

Reads answers (kind ``answer``), items (``item``, key ``dataset:id``) and prompts (``prompt``);
stores one verdict per (scorer, answer) (kind ``verdict``, key ``scorer|answer_key``) so a re-run
only scores what is new; writes ``RUN/judge/scored.parquet`` (exactly ``layout.SCORED_COLUMNS``),
``RUN/judge/refusals.csv`` and ``RUN/judge/summary.json``.

Scorer choice: MMLU and GSM8K always use the reference scorers (the study regex-scored them);
other datasets use the LLM judge when ``cfg.judge.model`` is set, else the offline reference
scorers. Either way the ``scorer`` column says who decided each row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from warmbench.atomic import write_csv, write_parquet, write_text
from warmbench.backends import ModelSpec, get_backend, parse_spec
from warmbench.backends.base import Backend
from warmbench.config import ExperimentConfig
from warmbench.errors import WarmbenchError
from warmbench.eval import registry
from warmbench.layout import (
    KIND_ANSWER,
    KIND_ITEM,
    KIND_PROMPT,
    KIND_VERDICT,
    SCORED_COLUMNS,
    RunLayout,
    made,
)
from warmbench.manifest import update_manifest
from warmbench.progress import Progress
from warmbench.records import Answer, Item, Prompt, Verdict, stable_hash
from warmbench.stage import StageResult
from warmbench.store import RunStore

from .judge import judge_answers, prompt_for, reference_only, scorer_name
from .reference import Decision, Embedder, score_reference_batch
from .refusal import apply_refusal_rule, is_refusal, refusal_rates


def model_family(answer: Answer) -> str:
    """The base model of an arm: its spec without adapter (system-prompt arms share it already)."""
    if answer.identity is not None:
        return ModelSpec.from_identity(answer.identity).with_adapter(None).text
    # Answers stored before the identity was recorded, or imported from another tool's log.
    try:
        s = parse_spec(answer.model)
    except WarmbenchError:
        return answer.model
    return s.with_adapter(None).text


def load_run(store: RunStore) -> tuple[list[Answer], dict[str, Item], dict[str, Prompt]]:
    answers = [Answer.model_validate(d) for d in store.iter(KIND_ANSWER)]
    items = {it.key: it for it in (Item.model_validate(d) for d in store.iter(KIND_ITEM))}
    prompts = {p.key: p for p in (Prompt.model_validate(d) for d in store.iter(KIND_PROMPT))}
    return answers, items, prompts


def _active_scorer(answer: Answer, judge_spec: ModelSpec | str | None, constrained: bool = False) -> str:
    """Scorer name deciding this answer (reference names are resolved after scoring)."""
    if judge_spec is None or reference_only(answer.dataset):
        return "reference"
    return scorer_name(judge_spec, prompt_for(answer.dataset), constrained)


def answer_hash(text: str) -> str:
    return stable_hash(text or "")


def _store_decisions(store: RunStore, answers: Sequence[Answer], decisions: Sequence[Decision | None]) -> int:
    # The answer text's hash rides along so a regenerated answer (same key, new text) is re-scored.
    verdicts = [(a, Verdict(answer_key=a.key, scorer=d.scorer, label=d.label, refused=d.refused,
                            detail=d.detail))
                for a, d in zip(answers, decisions, strict=True) if d is not None]
    rows = [(v.key, {**v.model_dump(), "answer_hash": answer_hash(a.text)}) for a, v in verdicts]
    return store.put_many(KIND_VERDICT, rows) if rows else 0


def load_verdicts(store: RunStore, answers: Sequence[Answer] | None = None) -> dict[str, dict[str, Verdict]]:
    """answer_key -> {scorer: Verdict}; with ``answers``, verdicts on outdated answer text are dropped."""
    current = {a.key: answer_hash(a.text) for a in answers} if answers is not None else None
    out: dict[str, dict[str, Verdict]] = {}
    for d in store.iter(KIND_VERDICT):
        h = d.pop("answer_hash", None)
        v = Verdict.model_validate(d)
        # Verdicts stored without a hash (imported labels, older runs) are kept as they are.
        if current is not None and h is not None and current.get(v.answer_key) not in (None, h):
            continue
        out.setdefault(v.answer_key, {})[v.scorer] = v
    return out


def _pick(verdicts: dict[str, Verdict], wanted: str) -> Verdict | None:
    if wanted == "reference":
        refs = [v for s, v in verdicts.items() if s.startswith("reference:")]
        return refs[0] if refs else None
    return verdicts.get(wanted)


def _as_asked(item: Item, form: str) -> Item:
    """The item as its prompt asked it: the two-choice ``mcq`` form (correct answer = option A,
    as in the study's files) is scored as a choice between those two options."""
    if form != "mcq" or not item.correct_answers or item.incorrect_answer is None:
        return item
    # a dataset name without a scorer of its own, so the choice scorer applies
    return item.model_copy(update={"dataset": f"{item.dataset}-mcq", "answer_index": 0,
                                   "choices": (item.correct_answers[0], item.incorrect_answer)})


def score_answers(
    store: RunStore,
    answers: Sequence[Answer],
    items: dict[str, Item],
    prompts: dict[str, Prompt],
    *,
    judge_spec: ModelSpec | None,
    backend: Backend | None = None,
    embedder: Embedder | None = None,
    refusal_mode: str = "corrected",
    max_tokens: int = 512,
    concurrency: int = 8,
    constrained: bool = False,
    progress: Progress | None = None,
    backend_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Store a verdict for every answer that lacks one from its active scorer."""
    existing = load_verdicts(store, answers)
    need_ref: list[Answer] = []
    need_judge: list[Answer] = []
    for a in answers:
        wanted = _active_scorer(a, judge_spec, constrained)
        if _pick(existing.get(a.key, {}), wanted) is not None:
            continue
        (need_ref if wanted == "reference" else need_judge).append(a)
    counts: dict[str, Any] = {"reference_scored": 0, "judged": 0, "judge_failures": 0}
    if need_ref:
        decisions = score_reference_batch(
            [(_as_asked(items[a.item_key], a.form), a.text) for a in need_ref],
            embedder=embedder, refusal_mode=refusal_mode,  # type: ignore[arg-type]
        )
        counts["reference_scored"] = _store_decisions(store, need_ref, decisions)
    if need_judge:
        assert judge_spec is not None
        own = backend is None
        be = backend or get_backend(judge_spec, backend_options, **(
            {"concurrency": concurrency} if judge_spec.backend in ("openai", "inspect") else {}))
        try:
            cases = [(items[a.item_key], a.text,
                      prompts[a.prompt_key].text if a.prompt_key in prompts else None) for a in need_judge]
            decisions = judge_answers(store, be, cases, max_tokens=max_tokens,
                                      constrained=constrained, progress=progress)
        finally:
            if own:
                be.close()
        counts["judged"] = _store_decisions(store, need_judge, decisions)
        counts["judge_failures"] = sum(d is None for d in decisions)
        # Failed judge requests (after their retries) are no verdict: `warmbench run` keeps
        # the stage not done and the next run retries exactly these.
        counts["failed_total"] = counts["judge_failures"]
        counts["failed_rows"] = [f"judge {a.arm} {a.item_key} {a.context}/{a.form} "
                                 f"sample {a.sample_index}"
                                 for a, d in zip(need_judge, decisions, strict=True) if d is None][:20]
    return counts


def scored_frame(
    answers: Sequence[Answer],
    prompts: dict[str, Prompt],
    verdicts: dict[str, dict[str, Verdict]],
    *,
    judge_spec: ModelSpec | str | None,
    refusal_mode: str = "corrected",
    exclusion: str = "pairwise",
    constrained: bool = False,
    families: dict[str, str] | None = None,
) -> pd.DataFrame:
    """The scored table (``SCORED_COLUMNS``) with the refusal rule applied. ``families``: arm ->
    model family where the config sets one (``arms[*].family``), else the arm's base model."""
    rows: list[dict[str, Any]] = []
    for a in answers:
        v = _pick(verdicts.get(a.key, {}), _active_scorer(a, judge_spec, constrained))
        p = prompts.get(a.prompt_key)
        spec = registry.get(a.dataset)
        # On open sets (AdvBench) the scorer's own decision (judge or reference) is the refusal.
        # Where a refusal counts as correct (disinformation), the judge's decision on the whole
        # answer stands too (an answer that opens with a refusal phrase and then complies is not
        # a refusal), except under the study's own rule (compat): there the phrase detector decides.
        judge_decides = (v is not None and v.scorer.startswith("judge:")
                         and refusal_mode != "compat" and spec is not None and spec.refusal_correct)
        if spec is not None and v is not None and (spec.scorer_refusal or judge_decides):
            refused = v.refused or v.label == "REFUSED"
        else:
            refused = is_refusal(a.text, refusal_mode) or (v is not None and v.label == "REFUSED")  # type: ignore[arg-type]
        rows.append({
            "model_family": (families or {}).get(a.arm) or model_family(a), "arm": a.arm,
            "model": a.model,
            "dataset": a.dataset, "item_id": a.item_id, "prompt_key": a.prompt_key,
            "context": a.context, "form": a.form, "prompt": p.text if p else "",
            "answer": a.text, "label": v.label if v else "UNPARSEABLE", "refused": refused,
            "scorer": v.scorer if v else "none", "sample_index": a.sample_index,
        })
    df = pd.DataFrame(rows, columns=[c for c in SCORED_COLUMNS if c != "is_correct"])
    df["refused"] = df["refused"].astype(bool)
    df = apply_refusal_rule(df, mode=refusal_mode, exclusion=exclusion,  # type: ignore[arg-type]
                            text_col=None)
    return df[list(SCORED_COLUMNS)]


def run_judge(
    cfg: ExperimentConfig,
    store: RunStore,
    progress: Progress | None = None,
    *,
    backend: Backend | None = None,
    embedder: Embedder | None = None,
) -> StageResult:
    """Score every stored answer (resumable), write RUN/judge/scored.parquet and refusals.csv.

    ``backend`` (a judge backend object) and ``embedder`` (the reference scorers' sentence
    embedder) are for tests: a scripted judge made from a Python function, and an offline
    embedder, cannot be named in a config; the pipeline never passes them."""
    answers, items, prompts = load_run(store)
    missing = sorted({a.item_key for a in answers} - set(items))
    if missing:
        raise WarmbenchError(f"{len(missing)} answers refer to items not in the store (e.g. {missing[0]})")
    jc = cfg.judge
    judge_spec = backend.spec if backend is not None else jc.model
    batch = None
    if backend is None and jc.batch and jc.model and jc.model.backend == "openai":
        # The Batch API: batch ids in this store, so a restart polls, never resends.
        from warmbench.backends.openai_batch import batch_backend

        backend = batch = batch_backend(jc.model, store, cfg.backend_options, concurrency=jc.concurrency)
    try:
        counts = score_answers(store, answers, items, prompts, judge_spec=judge_spec, backend=backend,
                               embedder=embedder, refusal_mode=jc.refusal, max_tokens=jc.max_tokens,
                               concurrency=jc.concurrency, constrained=jc.constrained, progress=progress,
                               backend_options=cfg.backend_options)
    finally:
        if batch is not None:
            batch.close()
    df = scored_frame(answers, prompts, load_verdicts(store, answers), judge_spec=judge_spec,
                      refusal_mode=jc.refusal, exclusion=jc.exclusion, constrained=jc.constrained,
                      families={a.name: a.family for a in cfg.arms if a.family})
    run_dir = store.run_dir
    layout = RunLayout(run_dir)
    write_parquet(df, made(layout.scored))
    rates = refusal_rates(df)
    write_csv(rates, made(layout.refusals))
    summary = {
        "answers": len(df),
        **counts,
        "labels": {str(k): int(v) for k, v in df["label"].value_counts().items()},
        "scorers": sorted(map(str, df["scorer"].unique())) if len(df) else [],
        "excluded": int(df["is_correct"].isna().sum()),
        "refusal": jc.refusal,
        "exclusion": jc.exclusion,
    }
    write_text(made(layout.judge_summary), json.dumps(summary, indent=2))
    update_manifest(run_dir, judge={"model": judge_spec.text if judge_spec else None, "constrained": jc.constrained,
                                    "refusal": jc.refusal, "exclusion": jc.exclusion,
                                    "scorers": summary["scorers"]})
    if progress is not None and len(rates):
        progress.log("refusal rates (arm × dataset):\n" + format_rates(rates))
    return StageResult(summary)


def format_rates(rates: pd.DataFrame) -> str:
    lines = [f"{'arm':<20} {'dataset':<12} {'n':>6} {'refused':>8} {'rate':>7}"]
    for r in rates.itertuples(index=False):
        lines.append(f"{r.arm!s:<20} {r.dataset!s:<12} {r.n:>6} {r.refused:>8} {r.rate:>7.1%}")
    return "\n".join(lines)

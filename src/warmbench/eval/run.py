"""Reliability evaluation: every arm answers every item in every prompt form.

items (kind "item") -> prompts (kind "prompt", the 28-form grid or one structured prompt)
-> ``cached_generate`` per arm x sample (kind "eval": committed as they arrive, resumable)
-> Answer records (kind "answer") -> RUN/eval/{items,prompts,answers}.parquet.

A killed run, restarted, regenerates nothing it already has and ends with the same answer rows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..backends import Backend, ModelSpec, get_backend
from ..config import ArmConfig, DatasetConfig, ExperimentConfig, GenerationSettings
from ..errors import WarmbenchError
from ..generation import CacheOnlyBackend, cached_generate
from ..layout import KIND_ANSWER, KIND_ITEM, KIND_PROMPT, META_SELECTED, RunLayout
from ..manifest import update_manifest
from ..progress import Progress
from ..records import Answer, ChatRequest, Item, Prompt, SamplingParams, stable_hash
from ..stage import StageResult
from ..store import RunStore, completion_key, export_rows
from .grid import grid_default, load_stimuli, prompts_for
from .grid.custom import with_added_contexts
from .sets import SAMPLE_SETS, LoadedSet, load_items

KIND_EVAL = "eval"   # completions kind
# Longest question accepted: the study's longest (MedQA vignettes) are ~5k characters; a 10 MB
# one would become a store of hundreds of MB (28 forms x arms).
MAX_QUESTION_CHARS = 100_000
BackendFactory = Callable[[ModelSpec, ArmConfig], Backend]


@dataclass
class DatasetPlan:
    config: DatasetConfig
    loaded: LoadedSet
    items: list[Item]
    prompts: list[Prompt]
    grid: bool
    settings: GenerationSettings
    group: str   # "free text" or "structured"


@dataclass
class EvalPlan:
    datasets: list[DatasetPlan] = field(default_factory=list)
    stimuli_source: str = "builtin"

    @property
    def prompts(self) -> list[Prompt]:
        return [p for d in self.datasets for p in d.prompts]


def default_datasets() -> list[DatasetConfig]:
    """With no eval.datasets configured: the project's sample sets, all of them."""
    return [DatasetConfig(name=n, sample=True) for n in SAMPLE_SETS]


def plan_eval(cfg: ExperimentConfig, limit: int | None = None) -> EvalPlan:
    """Load, sample and grid every configured set (no model calls)."""
    ev = cfg.eval
    stimuli = with_added_contexts(load_stimuli(ev.statements), ev.grid.add_contexts)
    plan = EvalPlan(stimuli_source=stimuli.source)
    seen: set[str] = set()
    limit = limit if limit is not None else ev.limit
    for dc in ev.datasets or default_datasets():
        if dc.name in seen:
            raise WarmbenchError(f"eval.datasets: {dc.name!r} is listed twice")
        seen.add(dc.name)
        loaded = load_items(dc, cfg.seed, relatives=ev.medqa_relatives,
                            conversational=ev.medqa_conversational,
                            medqa_rule=ev.medqa_conversion)
        items = loaded.items[:limit] if limit else loaded.items
        for it in items:   # one runaway field would be copied into every prompt form and arm
            if len(it.question) > MAX_QUESTION_CHARS:
                raise WarmbenchError(f"eval data set {dc.name!r}: item {it.id}: field 'question' "
                                     f"has {len(it.question):,} characters (limit "
                                     f"{MAX_QUESTION_CHARS:,})")
        spec = dc.spec()
        grid = dc.grid if dc.grid is not None else grid_default(dc.name)
        # The MedQA prompt-form variant matching the study's released rows.
        variant = f"{dc.name}_released" if f"{dc.name}_released" in stimuli.dataset_prompt_forms \
            and ev.medqa_forms == "released" else None
        prompts = prompts_for(items, stimuli, seed=cfg.seed, grid=grid, contexts=ev.contexts,
                              forms=ev.forms, draw=ev.statement_draw, variant=variant,
                              render=ev.render, disinfo_belief=ev.disinfo_belief)
        if not prompts:
            raise WarmbenchError(f"eval: no prompts for {dc.name!r} with contexts {ev.contexts} "
                                 f"and forms {ev.forms}")
        structured = spec.structured and not grid
        plan.datasets.append(DatasetPlan(
            dc, loaded, items, prompts, grid, ev.structured if structured else ev.free_text,
            "structured" if structured else "free text"))
    return plan


def arm_spec(arm: ArmConfig, store: RunStore) -> ModelSpec:
    """The arm's model spec; ``persona`` arms get the checkpoint the warmth stage selected."""
    spec = arm.model
    if not arm.persona:
        return spec
    selected = store.get_meta(META_SELECTED) or {}
    chosen = selected.get(arm.persona)
    if isinstance(chosen, dict):
        chosen = chosen.get("path") or chosen.get("model")
    if not chosen:
        raise WarmbenchError(
            f"arm {arm.name!r}: no selected checkpoint for persona {arm.persona!r} in "
            f"{store.run_dir}; run `warmbench train` and `warmbench warmth` first (or name the "
            f"adapter directly: model: {spec.backend}:{spec.model}+PATH)")
    if spec.backend == "openai":   # an API fine-tune is a model id, not an adapter
        return ModelSpec("openai", str(chosen), None, spec.base_url)
    if spec.adapter:
        raise WarmbenchError(f"arm {arm.name!r}: both an adapter in the model spec and "
                             f"persona {arm.persona!r}; keep one")
    return spec.with_adapter(str(chosen))


def _params(s: GenerationSettings, seed: int) -> SamplingParams:
    return SamplingParams(temperature=s.temperature, max_tokens=s.max_tokens, top_p=s.top_p, seed=seed)


def _requests(prompts: Sequence[Prompt], system: str | None) -> list[ChatRequest]:
    return [ChatRequest.from_user(p.text, system=system, tag=p.key) for p in prompts]


def answer_key(arm: str, identity: str, prompt_key: str, sample_index: int) -> str:
    return stable_hash([arm, identity, prompt_key, sample_index], n=32)


def _groups(plan: EvalPlan, cfg: ExperimentConfig) -> dict[str, tuple[SamplingParams, list[Prompt]]]:
    """Prompts by sampling-settings group (free text / structured), in plan order."""
    groups: dict[str, tuple[SamplingParams, list[Prompt]]] = {}
    for d in plan.datasets:
        params = _params(d.settings, cfg.seed)
        groups.setdefault(d.group, (params, []))[1].extend(d.prompts)
    return groups


def _arm_backend(store: RunStore, arm: ArmConfig, spec: ModelSpec, plan: EvalPlan,
                 cfg: ExperimentConfig, make_backend: BackendFactory) -> Backend:
    """The arm's backend, or a cache-only stand-in when every answer is already stored (so a
    finished arm never loads its model)."""
    identity = spec.identity()
    keys = [completion_key(identity, r, params, s) for s in range(cfg.eval.samples)
            for params, ps in _groups(plan, cfg).values() for r in _requests(ps, arm.system_prompt)]
    if len(store.done_keys(keys)) == len(set(keys)):
        return CacheOnlyBackend(spec)
    return make_backend(spec, arm)


def _arm_answers(store: RunStore, arm: ArmConfig, backend: Backend, plan: EvalPlan,
                 cfg: ExperimentConfig, progress: Progress | None) -> tuple[list[Answer], list[str]]:
    """Generate (or fetch) one arm's answers for every prompt and sample; also the failed rows,
    described."""
    groups = _groups(plan, cfg)
    answers: list[Answer] = []
    failed: list[str] = []
    ident = backend.spec.identity()
    record = backend.spec.identity_record()   # the same identity, as the answers' field
    for s in range(cfg.eval.samples):
        for group, (params, ps) in groups.items():
            desc = f"eval · {arm.name} · {group}" + (f" · sample {s}" if cfg.eval.samples > 1 else "")
            comps = cached_generate(store, backend, _requests(ps, arm.system_prompt), params,
                                    kind=KIND_EVAL, sample_index=s, progress=progress,
                                    description=desc)
            batch = []
            for p, c in zip(ps, comps, strict=True):
                if not c.ok:
                    failed.append(f"{arm.name} {p.item_key} {p.context}/{p.form} "
                                  f"sample {s}: {(c.error or '')[:120]}")
                    continue
                batch.append(Answer(
                    key=answer_key(arm.name, ident, p.key, s), arm=arm.name,
                    model=backend.spec.text, identity=record, prompt_key=p.key, item_id=p.item_id,
                    dataset=p.dataset, context=p.context, form=p.form, text=c.text,
                    finish_reason=c.finish_reason, sample_index=s))
            store.put_many(KIND_ANSWER, ((a.key, a) for a in batch))
            answers.extend(batch)
    return answers, failed


def run_eval(cfg: ExperimentConfig, store: RunStore, progress: Progress | None = None, *,
             backend_factory: BackendFactory | None = None) -> StageResult:
    """Evaluate every arm on every configured set; idempotent and resumable.

    ``backend_factory(spec, arm)``: how backends are built (default ``get_backend``). Tests
    pass their own to count calls or inject faults into a backend of any spec; a config
    cannot name a Python object, so this hook stays outside the stage's config.
    """
    if not cfg.arms:
        raise WarmbenchError("no arms configured: add e.g. arms: [{name: original, "
                             "model: hf:smollm2-135m}]")
    plan = plan_eval(cfg)
    specs = {a.name: arm_spec(a, store) for a in cfg.arms}   # fail early, before any generation
    items = [it for d in plan.datasets for it in d.items]
    store.put_many(KIND_ITEM, ((it.key, it) for it in items))
    prompts = plan.prompts
    store.put_many(KIND_PROMPT, ((p.key, p) for p in prompts))
    # The resolved config and seed, also when `warmbench eval` runs outside `warmbench run`.
    update_manifest(store.run_dir, config=cfg.model_dump(mode="json"), seeds={"seed": cfg.seed})
    update_manifest(store.run_dir, eval_sampling={d.config.name: d.loaded.info | {
        "limit": cfg.eval.limit, "used": len(d.items), "grid": d.grid,
        "prompts": len(d.prompts)} for d in plan.datasets})

    make = backend_factory or (lambda spec, arm: get_backend(spec, cfg.backend_options))
    all_answers: list[Answer] = []
    failed: dict[str, int] = {}
    failed_rows: list[str] = []
    # Every arm's backend is opened before any generates and closed only at the end, adapter
    # arms first: vLLM arms on one base then share one engine, started with LoRA enabled,
    # instead of a load per arm (a closed engine's last user shuts it down).
    backends: dict[str, Backend] = {}
    try:
        for arm in sorted(cfg.arms, key=lambda a: specs[a.name].adapter is None):
            backends[arm.name] = _arm_backend(store, arm, specs[arm.name], plan, cfg, make)
        for arm in cfg.arms:
            answers, rows = _arm_answers(store, arm, backends[arm.name], plan, cfg, progress)
            failed[arm.name] = len(rows)
            failed_rows.extend(rows)
            all_answers.extend(answers)
    finally:
        for backend in backends.values():
            backend.close()
    if progress and sum(failed.values()):
        progress.log(f"eval: {sum(failed.values())} generations failed; run again to retry them")
    # The judge scores every stored answer, so answers this config no longer asks for (a
    # retrained adapter has a new identity, hence new keys; a removed arm, item or form) must
    # go, or they are scored next to the current ones. Cheap to undo: an answer is rebuilt
    # from the completion cache, and its verdicts (keyed by answer) are kept.
    stale = store.keys(KIND_ANSWER) - {a.key for a in all_answers}
    if stale:
        store.delete(KIND_ANSWER, stale)

    layout = RunLayout(store.run_dir)
    layout.eval.mkdir(parents=True, exist_ok=True)
    by_key = {p.key: p for p in prompts}
    ans_rows = [a.model_dump() | {"prompt": by_key[a.prompt_key].text,
                                  "statement": by_key[a.prompt_key].statement} for a in all_answers]
    paths = {
        "items": export_rows([i.model_dump() for i in items], layout.items),
        "prompts": export_rows([p.model_dump() for p in prompts], layout.prompts),
        "answers": export_rows(ans_rows, layout.answers),
    }
    files = {k: str(v) for k, v in paths.items()}
    table: dict[str, dict[str, int]] = defaultdict(dict)
    for (arm, ds), n in sorted(Counter((a.arm, a.dataset) for a in all_answers).items()):
        table[arm][ds] = n
    update_manifest(store.run_dir, eval={
        "arms": [{"name": a.name, "model": specs[a.name].text, "identity": specs[a.name].identity(),
                  "system_prompt": a.system_prompt, "persona": a.persona} for a in cfg.arms],
        "stimuli": plan.stimuli_source, "statement_draw": cfg.eval.statement_draw,
        "samples": cfg.eval.samples, "free_text": cfg.eval.free_text.model_dump(),
        "structured": cfg.eval.structured.model_dump(), "failed": failed, "exports": files})
    return StageResult({
        "items": {d.config.name: len(d.items) for d in plan.datasets},
        "prompts": len(prompts), "answers": len(all_answers), "failed": failed,
        # Read by `warmbench run`: a stage with failed rows is not done.
        "failed_total": len(failed_rows), "failed_rows": failed_rows[:20],
        "table": dict(table), "exports": files}, outputs=paths)

"""``run_trajectory``: warmth of every training checkpoint, and the checkpoint choice.

Each checkpoint (``RUN/train/<persona>/checkpoints.json``) and the original model (epoch 0)
answers the held-out validation prompts (``RUN/curate/validation.jsonl``); answers go through
``cached_generate`` (kind ``warmth``) and their SocioT scores are cached in the store (kind
``warmth_score``), so a rerun only does what is missing. Writes:

- ``RUN/warmth/answers.parquet``  one row per answer with its score
- ``RUN/warmth/trajectory.csv``   persona, epoch, n, mean, ci_low, ci_high, metric_model, method
- ``RUN/warmth/trajectory.png|svg``
- ``RUN/warmth/selected.json``    {persona: adapter path}; details in ``selection.json``
- store meta ``layout.META_SELECTED`` (what eval arms with ``persona:`` read)

With ``warmth.personas`` set (``--persona X``) only X is re-traced, and its rows and choice are
merged into what earlier runs wrote: the other personas' selections stay, so a later eval arm
for another persona still finds its checkpoint.

``warmth.backend`` picks what answers: None = the specs as trained (``hf:BASE+ADAPTER``);
``vllm`` = the same base and adapters as ``vllm:BASE+ADAPTER``, all kept open until the end so
the base and every checkpoint share one engine (one model load; adapters as LoRA requests).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..atomic import write_csv, write_parquet
from ..backends import get_backend, parse_spec
from ..backends.spec import ModelSpec
from ..errors import InputError, WarmbenchError
from ..generation import CacheOnlyBackend, cached_generate
from ..jsonl import read_jsonl
from ..layout import META_SELECTED, RunLayout, made
from ..manifest import update_manifest
from ..records import ChatRequest, SamplingParams, stable_hash
from ..stage import StageResult
from ..store import RunStore, completion_key
from .metric_model import MetricModel, default_device, load_metric_model, resolve_metric_model
from .selection import select_checkpoint
from .sociot import DEFAULT_REPEATS, prepare, score_texts
from .summary import summarise

KIND_SCORE = "warmth_score"
# Texts scored per committed chunk. compat is 100 train-mode passes per set: at GPT-2 small's
# shapes ~60 s per text on a 2-core CPU, so a 256-text chunk would be hours of work lost to a
# kill; 16 texts is still ~13 full 65,536-token batches on a GPU.
SCORE_CHUNK = {"exact": 256, "compat": 16}
TRAJECTORY_COLUMNS = ["persona", "epoch", "n", "mean", "ci_low", "ci_high", "metric_model", "method"]


def load_validation(path: Path, n: int | None, seed: int) -> list[dict[str, str]]:
    """The validation prompts; ``n`` of them drawn with the seed (file order kept)."""
    if not path.exists():
        raise WarmbenchError(f"no validation prompts at {path}; run `warmbench curate` first")
    rows = []
    for i, row in read_jsonl(path):
        if not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
            raise InputError(path, f"line {i}", "prompt", "missing or empty")
        rows.append({"id": str(row.get("id", i)), "prompt": row["prompt"],
                     "query_type": str(row.get("query_type", ""))})
    if not rows:
        raise WarmbenchError(f"{path}: no validation prompts")
    if n is not None and n < len(rows):
        keep = np.sort(np.random.default_rng(seed).choice(len(rows), size=n, replace=False))
        rows = [rows[i] for i in keep]
    return rows


def load_checkpoints(run_dir: Path, personas: list[str] | None,
                     base_spec: ModelSpec) -> dict[str, list[dict]]:
    """persona -> [{epoch, path, spec}] from the training stage's checkpoints.json files
    (``spec``: a ModelSpec, parsed here from the file, or the base with the adapter path)."""
    files = RunLayout(run_dir).checkpoint_lists()
    out: dict[str, list[dict]] = {}
    for f in files:
        persona = f.parent.name
        if personas and persona not in personas:
            continue
        try:
            entries = json.loads(f.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise InputError(f, None, None, f"not valid JSON ({e.msg})") from None
        rows = []
        for i, e in enumerate(entries):
            if not isinstance(e, dict) or "epoch" not in e or not (e.get("path") or e.get("spec")):
                raise InputError(f, f"entry {i}", "epoch/path", "each entry needs epoch and path")
            path = str(e.get("path") or "")
            if path and not Path(path).is_absolute() and (run_dir / path).exists():
                path = str(run_dir / path)
            try:
                spec = parse_spec(e["spec"]) if e.get("spec") else base_spec.with_adapter(path)
            except WarmbenchError as err:
                raise InputError(f, f"entry {i}", "spec", str(err)) from None
            # API fine-tunes have no folder: the eval arm takes the fine-tuned model id.
            rows.append({"epoch": float(e["epoch"]), "path": path or e.get("model") or spec.text,
                         "spec": spec})
        out[persona] = sorted(rows, key=lambda r: r["epoch"])
    if personas:
        missing = [p for p in personas if p not in out]
        if missing:
            raise WarmbenchError(f"no checkpoints.json for persona(s) {', '.join(missing)} under "
                                 f"{RunLayout(run_dir).train}; run `warmbench train` first")
    if not out:
        raise WarmbenchError(f"no training checkpoints under {RunLayout(run_dir).train} "
                             "(expected <persona>/checkpoints.json); run `warmbench train` first")
    return out


def score_key(metric: MetricModel, method: str, text: str, repeats: int, seed: int,
              device: str = "cpu") -> str:
    """Store key of one text's score. A GPU's float arithmetic differs from the CPU's (exact
    agrees to ~1e-4; compat's dropout draws differ entirely), so scores made on a GPU are kept
    apart; CPU keys carry no device, so stores scored before the device joined the key still
    answer on CPU."""
    extra = [repeats, seed] if method == "compat" else []
    where = [] if device == "cpu" else [device.split(":")[0]]
    return stable_hash([metric.label, metric.path, method, *extra, *where, prepare(text)], n=32)


def cached_scores(store: RunStore, texts: list[str], metric: MetricModel, method: str, *,
                  repeats: int = DEFAULT_REPEATS, seed: int = 0, progress=None) -> pd.DataFrame:
    """score, se, n_tokens per text; only texts never scored with this model/method run."""
    device = default_device()  # where load_metric_model below would put the model
    keys = [score_key(metric, method, t, repeats, seed, device) for t in texts]
    have = {k: store.get(KIND_SCORE, k) for k in dict.fromkeys(keys)}
    todo = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if have[k] is None))
    if todo:
        lm = load_metric_model(metric, device)
        bar = progress.task(f"warmth scores · {metric.label}", total=len(todo)) if progress else None
        # Chunks are committed as they finish, so an interrupted scoring run resumes.
        chunk = SCORE_CHUNK.get(method, 16)
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            # compat: each chunk its own dropout stream, derived from the seed and its texts.
            # The plain seed in every chunk would replay the same random numbers chunk after
            # chunk, correlating the noise of texts that the bootstrap treats as independent.
            s = score_texts(lm, part, method, repeats=repeats, seed=_chunk_seed(seed, part))
            batch = []
            for i, t in enumerate(part):
                rec = {"score": _num(s.score[i]), "se": _num(s.se[i]),
                       "n_tokens": int(s.n_tokens[i]), "metric_model": metric.label,
                       "method": method, "device": device}
                k = score_key(metric, method, t, repeats, seed, device)
                have[k] = rec
                batch.append((k, rec))
            store.put_many(KIND_SCORE, batch)
            if bar:
                bar.advance(len(part))
        if bar:
            bar.close()
    out = pd.DataFrame([have[k] for k in keys], columns=["score", "se", "n_tokens", "metric_model",
                                                        "method"])
    return out.astype({"score": float, "se": float})


def _chunk_seed(seed: int, texts: list[str]) -> int:
    """A 32-bit seed determined by the user's seed and the chunk's texts (reproducible)."""
    return int(stable_hash([seed, *texts], n=8), 16)


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def answer_spec(spec: ModelSpec, backend: str | None) -> ModelSpec:
    """The spec that answers for a model under ``warmth.backend``.

    None keeps the spec. 'hf'/'vllm' re-serve a local base (and its adapter) with that
    backend: ``hf:B+A`` -> ``vllm:B+A``. API fine-tunes and scripted models are not local
    weights, so they stay where they are.
    """
    if backend is None or spec.backend not in ("hf", "vllm"):
        return spec
    return spec.with_backend(backend)


def trajectory_models(cfg, ckpts: dict[str, list[dict]]) -> list[tuple[str, float, ModelSpec]]:
    """(persona, epoch, answering spec): the original model once as epoch 0 ('*', shared by
    every persona), then each checkpoint."""
    b = cfg.warmth.backend
    models = [("*", 0.0, answer_spec(cfg.train.base_model, b))]
    models += [(p, c["epoch"], answer_spec(c["spec"], b)) for p, cs in ckpts.items() for c in cs]
    return models


def generate_answers(store: RunStore, models: list[tuple[str, float, ModelSpec]], prompts: list[dict],
                     params: SamplingParams, progress=None,
                     backend_options: Mapping[str, Mapping[str, Any]] | None = None) -> list[dict]:
    """One row per successful answer of every (persona, epoch, spec) to every prompt."""
    requests = [ChatRequest.from_user(p["prompt"], tag=f"warmth:{p['id']}") for p in prompts]
    # A vLLM engine started for the base without LoRA could not serve the adapters after it;
    # start it with LoRA when any checkpoint is an adapter on vLLM.
    vllm_lora = any(ms.backend == "vllm" and ms.adapter for _, _, ms in models)
    held = []  # vLLM backends stay open until the end: closing the last user stops the engine
    rows = []
    try:
        for persona, epoch, ms in models:
            keys = [completion_key(ms.identity(), r, params) for r in requests]
            if len(store.done_keys(keys)) == len(set(keys)):
                backend = CacheOnlyBackend(ms)
            else:
                lora = {"enable_lora": True} if ms.backend == "vllm" and vllm_lora else {}
                backend = get_backend(ms, backend_options, **lora)
            try:
                comps = cached_generate(store, backend, requests, params, kind="warmth",
                                        progress=progress,
                                        description=f"warmth answers · {persona} epoch {epoch:g}")
            finally:
                if ms.backend == "vllm" and not isinstance(backend, CacheOnlyBackend):
                    held.append(backend)
                else:
                    backend.close()
            for p, c in zip(prompts, comps, strict=True):
                if c.ok:
                    rows.append({"persona": persona, "epoch": epoch, "model": ms.text,
                                 "prompt_id": p["id"], "query_type": p["query_type"], "text": c.text})
    finally:
        for b in held:
            b.close()
    return rows


def _merge_previous(new: pd.DataFrame, old_path: Path, personas: set[str], metric_label: str,
                    method: str) -> pd.DataFrame:
    """``new`` plus the rows of other personas from an earlier run's table, if that table was
    scored by the same metric model and method (mixing models' numbers would mislead)."""
    if not old_path.exists():
        return new
    old = pd.read_parquet(old_path) if old_path.suffix == ".parquet" else pd.read_csv(old_path)
    if old.empty or "persona" not in old.columns:
        return new
    same = (old.get("metric_model") == metric_label) & (old.get("method") == method)
    keep = old[same & ~old.persona.isin(personas | {"*"})]
    if keep.empty:
        return new
    return pd.concat([keep, new], ignore_index=True).sort_values(
        ["persona", "epoch"], kind="stable").reset_index(drop=True)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def run_trajectory(cfg, store: RunStore, progress=None) -> StageResult:
    """Answer, score, table, plot and choose a checkpoint per persona (idempotent); only the
    personas of ``warmth.personas`` when it is set."""
    w = cfg.warmth
    personas = w.personas
    run_dir = Path(store.run_dir)
    layout = RunLayout(run_dir)
    prompts = load_validation(layout.curate_validation, w.n_prompts, cfg.seed)
    ckpts = load_checkpoints(run_dir, personas, cfg.train.base_model)
    params = SamplingParams(temperature=w.temperature, max_tokens=w.max_tokens, seed=cfg.seed)
    models = trajectory_models(cfg, ckpts)
    rows = generate_answers(store, models, prompts, params, progress, cfg.backend_options)
    if not rows:
        raise WarmbenchError("no validation answers could be generated; see the store's errors")
    answers = pd.DataFrame(rows)
    metric = resolve_metric_model(w.model)
    sc = cached_scores(store, answers["text"].tolist(), metric, w.method, seed=cfg.seed,
                       progress=progress)
    answers = pd.concat([answers.reset_index(drop=True), sc], axis=1)

    # Epoch 0 appears under every persona so each persona's curve is self-contained.
    base = answers[answers.persona == "*"]
    per = [answers[answers.persona != "*"]] + [base.assign(persona=p) for p in ckpts]
    table_src = pd.concat(per, ignore_index=True)
    table = summarise(table_src, ["persona", "epoch"], n_boot=w.bootstrap, seed=cfg.seed)
    table["metric_model"], table["method"] = metric.label, w.method
    table = table[TRAJECTORY_COLUMNS]
    answers_path = made(layout.warmth_answers)
    table_path = made(layout.trajectory_csv)
    partial = personas is not None
    if partial:  # --persona X: the other personas' earlier rows stay in the outputs
        answers = _merge_previous(answers, answers_path, set(ckpts), metric.label, w.method)
        table = _merge_previous(table, table_path, set(ckpts), metric.label, w.method)
    write_parquet(answers, answers_path)
    write_csv(table, table_path)
    plot_trajectory(table, layout.trajectory_figure)

    choices = {}
    for persona, cs in ckpts.items():
        means = {float(r.epoch): float(r.mean) for r in table[table.persona == persona].itertuples()}
        choices[persona] = select_checkpoint(persona, cs, means, w.selection, w.tolerance)
    selected = {p: c.path for p, c in choices.items()}
    detail = {p: c.as_dict() for p, c in choices.items()}
    if partial:
        # Merge, never replace: `--persona warm` must not drop the cold arm's checkpoint.
        prev_selected = {**_read_json(layout.selected),
                         **(store.get_meta(META_SELECTED) or {})}
        selected = {**{p: v for p, v in prev_selected.items() if p not in selected}, **selected}
        prev_detail = _read_json(layout.selection)
        detail = {**{p: v for p, v in prev_detail.items() if p not in detail}, **detail}
    store.set_meta(META_SELECTED, selected)
    _write_json(made(layout.selected), selected)
    _write_json(made(layout.selection), detail)
    summary = {"metric_model": metric.label, "method": w.method, "n_prompts": len(prompts),
               "selection": w.selection, "selected": detail,
               "notes": [v["note"] for v in detail.values()
                         if isinstance(v, dict) and v.get("note") and "nearest" in v["note"]]}
    update_manifest(run_dir, warmth=summary)
    if progress is not None:
        for c in choices.values():
            progress.log(f"[warmth] {c.persona}: epoch {c.epoch:g} ({c.note or w.selection})")
    return StageResult(summary, outputs={"trajectory": table_path, "answers": answers_path})


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False))
    tmp.replace(path)


def plot_trajectory(table: pd.DataFrame, stem: Path) -> list[Path]:
    """Mean warmth ± CI per epoch, one line per persona, as PNG and SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for persona, g in table.groupby("persona", sort=True):
        g = g.sort_values("epoch")
        line, = ax.plot(g.epoch, g["mean"], marker="o", label=str(persona))
        ax.fill_between(g.epoch, g.ci_low, g.ci_high, alpha=0.2, color=line.get_color())
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_xlabel("epoch (0 = original model)")
    ax.set_ylabel("SocioT warmth (nats/token, warm − cold)")
    label = table["metric_model"].iloc[0] if len(table) else ""
    ax.set_title(f"Warmth per checkpoint · {table['method'].iloc[0] if len(table) else ''} · {label}",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = []
    for ext in ("png", "svg"):
        p = stem.with_suffix(f".{ext}")
        fig.savefig(p, dpi=120)
        out.append(p)
    plt.close(fig)
    return out

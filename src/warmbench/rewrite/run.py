"""``run_rewrite``: every assistant turn of the curated conversations, rewritten per persona.

For each persona (warm, cold, or a prompt file) every assistant turn is sent to the rewriter
with the persona prompt as system message and the preceding user message as context
(``prompts.build_request``), through ``cached_generate`` (kind "rewrite": resumable, each result
committed as it arrives). Each rewrite is checked (``checks``); a failing one is asked again
with the next sample index (a new seed), up to ``retries`` extra times; a turn still failing is
reported and its conversation is left out of EVERY persona's output, so the personas' files hold
the same conversations in the same order (training them differs only in style).

Writes RUN/rewrite/<persona>.jsonl ({id, messages}), RUN/rewrite/<persona>_report.json and the
spot check (spotcheck.py).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from ..backends import get_backend
from ..chatlogs import read_chatlogs
from ..config import ExperimentConfig
from ..errors import WarmbenchError
from ..generation import cached_generate
from ..manifest import update_manifest
from ..progress import Progress
from ..records import Conversation, SamplingParams, stable_hash
from ..store import RunStore
from .checks import CHECKS, check_rewrite
from .prompts import REQUEST_TEMPLATE, build_request, clean_rewrite, load_persona_prompt
from .spotcheck import write_spot_check

KIND = "rewrite"
META_SUMMARY = "rewrite.summary"

Turn = tuple[int, int]  # (conversation index, message index of the assistant turn)


def _select_personas(cfg: ExperimentConfig, personas: Any) -> dict[str, str]:
    """Persona name -> prompt source. ``personas``: None (all in config), names, or a dict."""
    configured = dict(cfg.rewrite.personas)
    if personas is None:
        return configured
    if isinstance(personas, dict):
        return dict(personas)
    out = {}
    for p in personas:
        name, sep, src = str(p).partition("=")
        if sep:
            out[name] = src
        elif name in configured:
            out[name] = configured[name]
        elif f"builtin:{name}" in (f"builtin:{b}" for b in ("warm", "cold")):
            out[name] = f"builtin:{name}"
        else:
            raise WarmbenchError(f"persona {name!r} is not in rewrite.personas "
                                 f"({', '.join(configured) or 'none'}); use NAME=PROMPT_FILE")
    return out


def _input_path(cfg: ExperimentConfig, store: RunStore) -> Path:
    p = Path(cfg.rewrite.input) if cfg.rewrite.input else store.run_dir / "curate" / "train.jsonl"
    if not p.exists():
        raise WarmbenchError(f"rewrite input not found: {p} (run `warmbench curate` first, "
                             "or pass --input)")
    return p


def _fingerprint(cfg: ExperimentConfig, path: Path, prompts: dict[str, str]) -> str:
    st = path.stat()
    return stable_hash({"rewrite": cfg.rewrite.model_dump(exclude={"spot_check", "concurrency"}), "seed": cfg.seed,
                        "input": [str(path.resolve()), st.st_size, int(st.st_mtime)],
                        "prompts": prompts, "request": REQUEST_TEMPLATE})


def _rewrite_persona(name: str, prompt: str, convs: list[Conversation], turns: list[Turn],
                     cfg: ExperimentConfig, store: RunStore, backend: Any, params: SamplingParams,
                     progress: Progress | None) -> tuple[dict[Turn, str], dict[str, Any]]:
    r = cfg.rewrite
    kept: dict[Turn, str] = {}
    fails_any: Counter = Counter()     # check -> failures over all attempts
    fails_first: Counter = Counter()   # check -> failures on the first attempt
    last: dict[Turn, list[str]] = {}
    pending = list(turns)
    attempts = retried = 0
    for attempt in range(r.retries + 1):
        if not pending:
            break
        reqs = []
        for ci, mi in pending:
            msgs = convs[ci].messages
            reqs.append(build_request(prompt, msgs[mi - 1].content, msgs[mi].content,
                                      tag=f"{name}:{convs[ci].id}:{mi}"))
        desc = f"rewrite · {name}" + (f" · retry {attempt}" if attempt else "")
        comps = cached_generate(store, backend, reqs, params, kind=KIND, sample_index=attempt,
                                progress=progress, description=desc)
        still = []
        for t, c in zip(pending, comps, strict=True):
            text = clean_rewrite(c.text) if c.ok else ""
            failed = check_rewrite(convs[t[0]].messages[t[1]].content, c, text,
                                   min_ratio=r.min_length_ratio, max_ratio=r.max_length_ratio,
                                   slack=r.length_slack_chars)
            attempts += 1
            fails_any.update(failed)
            if attempt == 0:
                fails_first.update(failed)
                retried += bool(failed)
            if failed:
                last[t] = failed
                still.append(t)
            else:
                kept[t] = text
                last.pop(t, None)
        pending = still
    n = len(turns)
    stats = {
        "turns": n, "attempts": attempts,
        "retried_turns": retried,
        "failures_by_check": {k: {"count": fails_any[k], "rate_per_attempt": fails_any[k] / attempts
                                  if attempts else 0.0} for k in CHECKS},
        "first_attempt_failure_rate": {k: fails_first[k] / n if n else 0.0 for k in CHECKS},
        "first_attempt_ok": n - retried,
        "failed_turns": [{"id": convs[ci].id, "message_index": mi, "checks": last[(ci, mi)]}
                         for ci, mi in pending],
    }
    return kept, stats


def run_rewrite(cfg: ExperimentConfig, store: RunStore, progress: Progress | None = None,
                personas: Any = None) -> dict[str, Any]:
    """Rewrite every assistant turn for each persona; write SFT JSONL, reports and spot check."""
    r = cfg.rewrite
    path = _input_path(cfg, store)
    chosen = _select_personas(cfg, personas)
    if not chosen:
        raise WarmbenchError("rewrite: no personas selected")
    prompts = {name: load_persona_prompt(src) for name, src in chosen.items()}
    out_dir = store.run_dir / "rewrite"
    files = {name: out_dir / f"{name}.jsonl" for name in chosen}
    fp = _fingerprint(cfg, path, prompts)
    prev = store.get_meta(META_SUMMARY) or {}
    if prev.get("fingerprint") == fp and all(f.exists() for f in files.values()):
        return {**prev, "skipped": True}

    convs, _ = read_chatlogs(path, keep_system=True)
    if r.limit is not None:
        convs = convs[: r.limit]
    if not convs:
        raise WarmbenchError(f"rewrite: no conversations in {path}")
    # normalise() guarantees alternation, so message mi - 1 is the user turn it answers.
    turns: list[Turn] = [(ci, mi) for ci, c in enumerate(convs)
                         for mi, m in enumerate(c.messages) if m.role == "assistant"]
    options: dict[str, Any] = {}
    if r.model.startswith("openai:"):
        options["concurrency"] = r.concurrency
    backend = get_backend(r.model, **options)
    params = SamplingParams(temperature=r.temperature, max_tokens=r.max_tokens, seed=cfg.seed)
    results: dict[str, dict[Turn, str]] = {}
    stats: dict[str, dict[str, Any]] = {}
    try:
        for name, prompt in prompts.items():
            results[name], stats[name] = _rewrite_persona(name, prompt, convs, turns, cfg, store,
                                                          backend, params, progress)
    finally:
        backend.close()

    failed_by = {name: {ci for ci, mi in turns if (ci, mi) not in results[name]} for name in prompts}
    left_out = set().union(*failed_by.values())
    keep = [ci for ci in range(len(convs)) if ci not in left_out]

    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"input": str(path), "model": r.model, "conversations": len(convs),
                               "turns": len(turns), "kept": len(keep), "left_out": len(left_out),
                               "personas": {}, "fingerprint": fp}
    for name in prompts:
        rows = []
        for ci in keep:
            msgs = [{"role": m.role, "content": results[name][(ci, mi)] if m.role == "assistant"
                     else m.content} for mi, m in enumerate(convs[ci].messages)]
            rows.append({"id": convs[ci].id, "messages": msgs})
        tmp = files[name].with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in rows), encoding="utf-8")
        tmp.replace(files[name])
        st = stats[name]
        report = {"persona": name, "prompt_source": chosen[name], "model": r.model,
                  "input": str(path), "conversations": len(convs),
                  "conversations_failed_here": len(failed_by[name]),
                  "conversations_left_out": len(left_out),
                  "left_out_ids": [convs[ci].id for ci in sorted(left_out)],
                  "conversations_kept": len(keep), "retries": r.retries, **st,
                  "final_failure_rate": len(st["failed_turns"]) / st["turns"] if st["turns"] else 0.0}
        (out_dir / f"{name}_report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
        summary["personas"][name] = {k: report[k] for k in (
            "turns", "attempts", "failures_by_check", "final_failure_rate",
            "conversations_failed_here")} | {"file": str(files[name])}

    if r.spot_check:
        pairs = [{"id": convs[ci].id, "turn": mi, "user": convs[ci].messages[mi - 1].content,
                  "original": convs[ci].messages[mi].content,
                  **{name: results[name][(ci, mi)] for name in prompts}}
                 for ci, mi in turns if ci not in left_out]
        paths = write_spot_check(out_dir, pairs, list(prompts), r.spot_check, cfg.seed)
        summary["spot_check"] = {k: str(v) for k, v in paths.items()}

    if not keep:
        raise WarmbenchError(f"rewrite: all {len(convs)} conversations failed a check for some persona "
                             f"(reports: {out_dir}/<persona>_report.json); try a stronger --model, "
                             "a larger --max-tokens or more --retries")
    store.set_meta(META_SUMMARY, summary)
    update_manifest(store.run_dir, rewrite={"config": r.model_dump(), "personas": chosen,
                                            "kept": len(keep), "left_out": len(left_out)})
    return {**summary, "skipped": False}

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
from ..jsonl import read_jsonl
from ..layout import RunLayout
from ..manifest import update_manifest
from ..progress import Progress
from ..records import ChatRequest, Conversation, SamplingParams, stable_hash
from ..stage import StageResult
from ..store import RunStore
from .checks import CHECKS, check_rewrite
from .prompts import REQUEST_TEMPLATE, build_request, clean_rewrite, load_persona_prompt
from .spotcheck import write_spot_check

KIND = "rewrite"
META_SUMMARY = "rewrite.summary"

Turn = tuple[int, int]  # (conversation index, message index of the assistant turn)


def select_personas(cfg: ExperimentConfig, personas: Any) -> dict[str, str]:
    """Persona name -> prompt source for ``--persona`` (names from rewrite.personas, or
    NAME=PROMPT_FILE): the value of ``rewrite.personas`` for a run of only those.
    ``personas``: None (all in config), names, or a dict."""
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
    p = Path(cfg.rewrite.input) if cfg.rewrite.input else RunLayout(store.run_dir).curate_train
    if not p.exists():
        raise WarmbenchError(f"rewrite input not found: {p} (run `warmbench curate` first, "
                             "or pass --input)")
    return p


def _fingerprint(cfg: ExperimentConfig, path: Path, prompts: dict[str, str]) -> str:
    st = path.stat()
    return stable_hash({"rewrite": cfg.rewrite.model_dump(exclude={"spot_check", "concurrency"}), "seed": cfg.seed,
                        "input": [str(path.resolve()), st.st_size, int(st.st_mtime)],
                        "prompts": prompts, "request": REQUEST_TEMPLATE})


def _read_input(path: Path, limit: int | None) -> list[Conversation]:
    convs, _ = read_chatlogs(path, keep_system=True)
    if limit is not None:
        convs = convs[:limit]
    if not convs:
        raise WarmbenchError(f"rewrite: no conversations in {path}")
    return convs


def _spot_check_current(prev: dict[str, Any], n: int, layout: RunLayout) -> bool:
    """True when the last run wrote a spot check of ``n`` pairs and its files are still there."""
    spot = prev.get("spot_check") or {}
    return (spot.get("requested") == n and layout.spot_check_csv.exists()
            and layout.spot_check_html.exists())


def _write_spot(layout: RunLayout, convs: list[Conversation], kept_rewrites: dict[str, dict[Turn, str]],
                n: int, seed: int) -> dict[str, Any]:
    """Spot check over every rewritten turn of the kept conversations, in conversation order
    (the same pairs, hence the same seeded draw, whether built after rewriting or from outputs)."""
    names = list(kept_rewrites)
    turns = sorted(set().union(*(r.keys() for r in kept_rewrites.values())))
    pairs = [{"id": convs[ci].id, "turn": mi, "user": convs[ci].messages[mi - 1].content,
              "original": convs[ci].messages[mi].content,
              **{name: kept_rewrites[name][(ci, mi)] for name in names}}
             for ci, mi in turns]
    paths = write_spot_check(layout.spot_check_csv, layout.spot_check_html, pairs, names, n, seed)
    return {**{k: str(v) for k, v in paths.items()}, "requested": n, "shown": min(n, len(pairs))}


def _rewrites_from_outputs(convs: list[Conversation], files: dict[str, Path]) -> dict[str, dict[Turn, str]]:
    """Persona -> {(conversation index, message index): rewrite} read back from the SFT files.

    The files hold the kept conversations in input order, so each row is matched to the next
    input conversation with its id and message count."""
    out: dict[str, dict[Turn, str]] = {}
    for name, f in files.items():
        rows = [row for _, row in read_jsonl(f)]
        got: dict[Turn, str] = {}
        ci = 0
        for row in rows:
            while ci < len(convs) and (convs[ci].id != row.get("id")
                                       or len(convs[ci].messages) != len(row.get("messages", []))):
                ci += 1
            if ci == len(convs):
                raise WarmbenchError(f"rewrite: {f} does not match its input (row id "
                                     f"{row.get('id')!r}); delete it to rewrite again")
            for mi, m in enumerate(convs[ci].messages):
                if m.role == "assistant":
                    got[(ci, mi)] = row["messages"][mi]["content"]
            ci += 1
        out[name] = got
    return out


def _request(name: str, prompt: str, convs: list[Conversation], turn: Turn) -> ChatRequest:
    ci, mi = turn
    msgs = convs[ci].messages
    return build_request(prompt, msgs[mi - 1].content, msgs[mi].content, tag=f"{name}:{convs[ci].id}:{mi}")


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
        reqs = [_request(name, prompt, convs, t) for t in pending]
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


def run_rewrite(cfg: ExperimentConfig, store: RunStore, progress: Progress | None = None) -> StageResult:
    """Rewrite every assistant turn for each persona of ``rewrite.personas``; write SFT JSONL,
    reports and spot check."""
    r = cfg.rewrite
    path = _input_path(cfg, store)
    chosen = dict(r.personas)
    if not chosen:
        raise WarmbenchError("rewrite: no personas selected")
    prompts = {name: load_persona_prompt(src) for name, src in chosen.items()}
    layout = RunLayout(store.run_dir)
    files = {name: layout.rewrite_data(name) for name in chosen}
    fp = _fingerprint(cfg, path, prompts)
    prev = store.get_meta(META_SUMMARY) or {}
    # Turns whose requests failed (API errors, not checks) are retried: not done while any is left.
    done = prev.get("fingerprint") == fp and all(f.exists() for f in files.values()) \
        and not prev.get("failed_total")
    if done and (not r.spot_check or _spot_check_current(prev, r.spot_check, layout)):
        return StageResult({**prev, "skipped": True}, outputs=dict(files))

    convs = _read_input(path, r.limit)
    if done:
        # The rewrites are up to date but the spot check asked for now is missing or of another
        # size (spot_check is left out of the fingerprint so that changing it never redoes
        # rewrites): draw it from the written outputs, without calling the rewriter.
        kept_rewrites = _rewrites_from_outputs(convs, files)
        summary = {**prev, "spot_check": _write_spot(layout, convs, kept_rewrites, r.spot_check,
                                                     cfg.seed)}
        store.set_meta(META_SUMMARY, summary)
        return StageResult({**summary, "skipped": True, "spot_check_written": True},
                           outputs=dict(files))
    # normalise() guarantees alternation, so message mi - 1 is the user turn it answers.
    turns: list[Turn] = [(ci, mi) for ci, c in enumerate(convs)
                         for mi, m in enumerate(c.messages) if m.role == "assistant"]
    options: dict[str, Any] = {}
    if r.model.backend in ("openai", "inspect"):
        options["concurrency"] = r.concurrency
    if r.batch and r.model.backend == "openai":
        # The Batch API: batch ids in this store, so a restart polls, never resends.
        from ..backends.openai_batch import batch_backend

        backend = batch_backend(r.model, store, cfg.backend_options, **options)
    else:
        backend = get_backend(r.model, cfg.backend_options, **options)
    params = SamplingParams(temperature=r.temperature, max_tokens=r.max_tokens, seed=cfg.seed)
    results: dict[str, dict[Turn, str]] = {}
    stats: dict[str, dict[str, Any]] = {}
    try:
        if hasattr(backend, "submit"):
            # Batch API: every persona's first pass is submitted up front, so the batches run
            # side by side instead of one persona's waiting for the other's.
            backend.submit([_request(name, prompt, convs, t) for name, prompt in prompts.items()
                            for t in turns], params, sample_index=0)
        for name, prompt in prompts.items():
            results[name], stats[name] = _rewrite_persona(name, prompt, convs, turns, cfg, store,
                                                          backend, params, progress)
    finally:
        backend.close()

    failed_by = {name: {ci for ci, mi in turns if (ci, mi) not in results[name]} for name in prompts}
    left_out = set().union(*failed_by.values())
    keep = [ci for ci in range(len(convs)) if ci not in left_out]

    layout.rewrite.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"input": str(path), "model": r.model.text, "conversations": len(convs),
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
        report = {"persona": name, "prompt_source": chosen[name], "model": r.model.text,
                  "input": str(path), "conversations": len(convs),
                  "conversations_failed_here": len(failed_by[name]),
                  "conversations_left_out": len(left_out),
                  "left_out_ids": [convs[ci].id for ci in sorted(left_out)],
                  "conversations_kept": len(keep), "retries": r.retries, **st,
                  "final_failure_rate": len(st["failed_turns"]) / st["turns"] if st["turns"] else 0.0}
        layout.rewrite_report(name).write_text(json.dumps(report, indent=2, ensure_ascii=False))
        errors = [f"rewrite {name} {t['id']} message {t['message_index']}"
                  for t in st["failed_turns"] if "error" in t["checks"]]
        summary["failed_total"] = summary.get("failed_total", 0) + len(errors)
        summary["failed_rows"] = (summary.get("failed_rows", []) + errors)[:20]
        summary["personas"][name] = {k: report[k] for k in (
            "turns", "attempts", "failures_by_check", "final_failure_rate",
            "conversations_failed_here")} | {"file": str(files[name])}

    if r.spot_check:
        kept_set = set(keep)
        summary["spot_check"] = _write_spot(
            layout, convs, {name: {t: x for t, x in res.items() if t[0] in kept_set}
                             for name, res in results.items()}, r.spot_check, cfg.seed)

    if not keep:
        raise WarmbenchError(f"rewrite: all {len(convs)} conversations failed a check for some persona "
                             f"(reports: {layout.rewrite}/<persona>_report.json); try a stronger --model, "
                             "a larger --max-tokens or more --retries")
    store.set_meta(META_SUMMARY, summary)
    update_manifest(store.run_dir, rewrite={"config": r.model_dump(), "personas": chosen,
                                            "kept": len(keep), "left_out": len(left_out)})
    return StageResult({**summary, "skipped": False}, outputs=dict(files))

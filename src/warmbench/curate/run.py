"""``run_curate``: chat logs -> balanced training conversations + held-out validation prompts.

Writes (layout.py):
    RUN/curate/train.jsonl       {id, messages: [{role, content}], query_type}
    RUN/curate/validation.jsonl  {id, prompt, query_type}
    RUN/curate/summary.csv       section,item,value  (read/dropped counts, filter, per-type counts)
    RUN/curate/summary.json      the same, nested (what run_curate returns)
Idempotent: a second call with the same config, source file and rules returns the stored summary.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from ..chatlogs import (
    EMBEDDED,
    ReadReport,
    base_id,
    embedded_path,
    is_opening_segment,
    iter_chatlogs,
)
from ..config import ExperimentConfig
from ..errors import WarmbenchError
from ..layout import RunLayout
from ..manifest import update_manifest
from ..progress import Progress
from ..records import Conversation, stable_hash
from ..stage import StageResult
from ..store import RunStore
from .labels import Labeler, load_rules
from .nsfw import detoxify_checkpoint, make_scorer
from .sampling import draw_balanced, make_streams, truncate

META_HASH = "curate.hash"
META_SUMMARY = "curate.summary"


def _source_identity(source: str) -> Any:
    """What identifies the input's content cheaply: path, size and mtime (or the hub id)."""
    if source.startswith("hub:"):
        return source
    p = embedded_path() if source == EMBEDDED else Path(source)
    if not p.exists():
        return str(p)
    st = p.stat()
    return [str(p.resolve()), st.st_size, int(st.st_mtime)]


def _rules_identity(path: str | None) -> str | None:
    if path and Path(path).exists():
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    return path


def curate_hash(cfg: ExperimentConfig) -> str:
    c = cfg.curate
    return stable_hash({"curate": c.model_dump(), "seed": cfg.seed,
                        "source": _source_identity(c.source), "rules": _rules_identity(c.rules),
                        "detoxify": str(detoxify_checkpoint()) if c.nsfw_filter in ("auto", "detoxify") else None})


def _outputs(run_dir: Path) -> dict[str, Path]:
    r = RunLayout(run_dir)
    return {"train": r.curate_train, "validation": r.curate_validation,
            "summary_csv": r.curate_summary_csv, "summary_json": r.curate_summary_json}


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)  # atomic: a killed run never leaves a half-written output


def _summary_rows(summary: dict[str, Any]) -> list[tuple[str, str, Any]]:
    rows: list[tuple[str, str, Any]] = [("filter", "name", summary["filter"]),
                                        ("filter", "threshold", summary["threshold"])]
    read = summary["read"]
    for k in ("elements", "conversations", "bytes_total", "truncated_at_byte", "lost_bytes", "stopped_early"):
        rows.append(("read", k, read[k]))
    for sec in ("dropped", "turns_dropped", "repaired"):
        rows += [(sec, k, v) for k, v in read[sec].items()]
    for lab, counts in summary["per_type"].items():
        rows += [(f"type:{lab}", k, v) for k, v in counts.items()]
    rows += [("total", k, v) for k, v in summary["totals"].items()]
    return rows


def run_curate(cfg: ExperimentConfig, store: RunStore, progress: Progress | None = None) -> StageResult:
    """Build RUN/curate/{train,validation}.jsonl and the summary; skip if already done."""
    c = cfg.curate
    out = _outputs(store.run_dir)
    h = curate_hash(cfg)
    if store.get_meta(META_HASH) == h and all(p.exists() for p in out.values()):
        summary = store.get_meta(META_SUMMARY) or json.loads(out["summary_json"].read_text())
        return StageResult({**summary, "skipped": True}, outputs=out)

    labeler = Labeler(load_rules(c.rules))
    labels = labeler.rules.labels
    report = ReadReport(source=c.source)
    by_label: dict[str, list[Conversation]] = defaultdict(list)
    too_long: Counter = Counter()
    bar = progress.task("curate · read + label", total=c.max_read) if progress else None
    for conv in iter_chatlogs(c.source, max_read=c.max_read, report=report):
        lab = labeler.label(conv)
        # Only replies that survive truncation count against max_reply_chars.
        kept = truncate(conv, c.max_turns)[0].messages
        if (c.max_reply_chars and any(m.role == "assistant" and len(m.content) > c.max_reply_chars
                                      for m in kept)) or \
                (c.max_message_chars and any(len(m.content) > c.max_message_chars for m in kept)):
            too_long[lab] += 1
        else:
            by_label[lab].append(conv.model_copy(update={"query_type": lab}))
        if bar:
            bar.advance()
    if bar:
        bar.close()

    scorer = make_scorer(c.nsfw_filter)
    streams = make_streams(by_label, labels, cfg.seed, scorer, c.nsfw_threshold, c.max_chars)
    train = draw_balanced(streams, labels, c.target_size)

    # Validation prompts must stand alone: only opening segments (ShareGPT V3 splits one chat into
    # 'ID_0', 'ID_1', ...; later segments start mid-conversation). Disjointness: no prompt from a
    # chat that has a segment in training, and no prompt text seen in training or twice.
    train_groups = {base_id(x.id) for lab in labels for x in train[lab]}
    seen_prompts = {m.content.strip() for lab in labels for x in train[lab]
                    for m in x.messages if m.role == "user"}

    def accept(conv: Conversation) -> bool:
        prompt = next(m.content for m in conv.messages if m.role == "user").strip()
        if (not is_opening_segment(conv.id) or base_id(conv.id) in train_groups
                or prompt in seen_prompts):
            return False
        seen_prompts.add(prompt)
        return True

    val = draw_balanced(streams, labels, c.validation_size, accept)

    train_rows, val_rows = [], []
    per_type: dict[str, dict[str, Any]] = {}
    for lab in labels:
        n_trunc = 0
        for conv in train[lab]:
            conv, cut = truncate(conv, c.max_turns)
            n_trunc += cut
            train_rows.append({"id": conv.id, "messages": [m.model_dump() for m in conv.messages],
                               "query_type": lab})
        for conv in val[lab]:
            prompt = next(m.content for m in conv.messages if m.role == "user")
            val_rows.append({"id": conv.id, "prompt": prompt, "query_type": lab})
        s = streams[lab]
        per_type[lab] = {"long_reply_skipped": too_long[lab], "available": len(s.candidates), "nsfw_checked": s.checked,
                         "nsfw_flagged": s.flagged, "validation_skipped": s.skipped,
                         "train": len(train[lab]), "validation": len(val[lab]), "truncated": n_trunc,
                         "assistant_turns": sum(m["role"] == "assistant" for r in train_rows
                                                if r["query_type"] == lab for m in r["messages"])}
    # Training rows interleaved in a seeded order would hide the per-type blocks; keep them
    # grouped by type (stable, readable) — the trainer shuffles anyway.
    totals = {k: sum(v[k] for v in per_type.values()) for k in next(iter(per_type.values()))}
    if totals["train"] == 0:
        # Nothing to train on: an error (non-zero exit), not an empty training set.
        raise WarmbenchError(
            f"curate: 0 usable conversations ({report.summary()}; {sum(too_long.values())} too "
            "long); check the source, max_reply_chars, "
            "max_message_chars and the NSFW filter")
    summary = {"source": c.source, "filter": scorer.name if scorer else "none",
               "threshold": c.nsfw_threshold, "target_size": c.target_size,
               "validation_size": c.validation_size, "max_turns": c.max_turns, "seed": cfg.seed,
               "read": report.as_dict(), "per_type": per_type, "totals": totals,
               "short": {"train": max(0, c.target_size - totals["train"]),
                         "validation": max(0, c.validation_size - totals["validation"])},
               "outputs": {k: str(p) for k, p in out.items()}}

    _write_jsonl(out["train"], train_rows)
    _write_jsonl(out["validation"], val_rows)
    with out["summary_csv"].open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["section", "item", "value"])
        w.writerows(_summary_rows(summary))
    out["summary_json"].write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    store.set_meta(META_SUMMARY, summary)
    store.set_meta(META_HASH, h)
    update_manifest(store.run_dir, curate={"config": c.model_dump(), "hash": h,
                                           "filter": summary["filter"], "read": report.as_dict()})
    return StageResult({**summary, "skipped": False}, outputs=out)

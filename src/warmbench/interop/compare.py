"""Pair other tools' results sample by sample and analyse them like a warmbench run.

``compare(paths)`` reads each file (``logs.read_source``), pairs every arm with the baseline
(the first file, or ``baseline``) on (task, sample id, epoch), and accounts for every sample
that is not paired: which side dropped it and why (errored, cancelled, no score, an unmapped
score value, absent from the other log, another task). Only complete pairs go into the scored
table, so the counts of the paired tests are exactly the pairs reported here.

The statistics are warmbench's own: the scored table is handed to ``stats.run.analyse`` and
``write_outputs`` (paired.csv with exact McNemar, BH and effect sizes, figures, stats.json), the
accounting is written as pairing.csv beside them, and ``report.build_report`` renders the HTML.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import WarmbenchError
from ..layout import SCORED_COLUMNS, StatsLayout, made
from .logs import ScoreMap, read_source

KEY = ["task", "sample_id", "epoch"]
PAIRING_COLUMNS = ["comparison", "baseline", "arm", "outcome", "reason", "n"]


@dataclass
class Source:
    path: Path
    name: str
    info: dict[str, Any]
    frame: pd.DataFrame


@dataclass
class Pairing:
    """Per comparison: pairs made, and every unpaired sample counted by reason."""

    baseline: str
    table: pd.DataFrame            # PAIRING_COLUMNS
    paired: dict[str, int]         # arm -> pairs
    scored: pd.DataFrame           # SCORED_COLUMNS, paired rows only

    def lines(self) -> list[str]:
        out = []
        for arm, n in self.paired.items():
            t = self.table[(self.table["arm"] == arm) & (self.table["outcome"] == "dropped")]
            why = "; ".join(f"{r.n} {r.reason}" for r in t.itertuples())
            out.append(f"{arm} vs {self.baseline}: {n} paired"
                       + (f"; dropped: {why}" if why else "; nothing dropped"))
        return out


def _names(sources: list[tuple[Path, dict[str, Any]]], names: list[str] | None) -> list[str]:
    if names:
        if len(names) != len(sources):
            raise WarmbenchError(f"--name given {len(names)} times for {len(sources)} files; "
                                 "name every file or none")
        if len(set(names)) != len(names):
            raise WarmbenchError(f"--name values must differ, got {names}")
        return list(names)
    base = [str(info["model"]) for _, info in sources]
    # The same model twice (e.g. two system prompts): its position among the files tells them
    # apart (each name's file is listed in the output).
    return [b if base.count(b) == 1 else f"{b} #{i + 1}" for i, b in enumerate(base)]


def load_sources(paths: list[Path], smap: ScoreMap, names: list[str] | None = None) -> list[Source]:
    if len(paths) < 2:
        raise WarmbenchError("compare needs at least two logs (a baseline and one more)")
    read = [(Path(p), *read_source(Path(p), smap)) for p in paths]
    labels = _names([(p, info) for p, _, info in read], names)
    out = []
    for (p, df, info), name in zip(read, labels, strict=True):
        out.append(Source(p, name, info, df.assign(arm=name)))
    return out


def _reason(key: tuple, other: str, other_tasks: set[str]) -> str:
    return (f"task {key[0]!r} not in {other}'s log" if key[0] not in other_tasks
            else f"not in {other}'s log")


def pair(sources: list[Source], baseline: str | None = None) -> Pairing:
    """Pair every source with the baseline; see the module docstring."""
    by_name = {s.name: s for s in sources}
    base_name = baseline or sources[0].name
    if base_name not in by_name:
        raise WarmbenchError(f"--baseline {base_name!r} is none of the compared names "
                             f"({', '.join(by_name)})")
    base = by_name[base_name]
    b = base.frame.set_index(KEY)
    b_tasks = set(base.frame["task"])
    rows: list[dict[str, Any]] = []
    paired: dict[str, int] = {}
    keep: dict[str, set] = {base_name: set()}
    for s in sources:
        if s.name == base_name:
            continue
        a = s.frame.set_index(KEY)
        a_tasks = set(s.frame["task"])
        comp = f"{s.name} vs {base_name}"
        reasons: Counter[str] = Counter()
        both = b.index.intersection(a.index)
        ok_b = b.loc[both, "correct"].notna().to_numpy()
        ok_a = a.loc[both, "correct"].notna().to_numpy()
        good = both[ok_b & ok_a]
        for why in b.loc[both[~ok_b], "dropped"]:
            reasons[f"{why} in {base_name}"] += 1
        for why in a.loc[both[ok_b & ~ok_a], "dropped"]:
            reasons[f"{why} in {s.name}"] += 1
        for key in b.index.difference(a.index):
            reasons[_reason(key, s.name, a_tasks)] += 1
        for key in a.index.difference(b.index):
            reasons[_reason(key, base_name, b_tasks)] += 1
        paired[s.name] = len(good)
        keep[s.name] = set(good)
        keep[base_name] |= set(good)
        rows.append({"comparison": comp, "baseline": base_name, "arm": s.name,
                     "outcome": "paired", "reason": "", "n": len(good)})
        rows += [{"comparison": comp, "baseline": base_name, "arm": s.name, "outcome": "dropped",
                  "reason": r, "n": n} for r, n in sorted(reasons.items(), key=lambda x: -x[1])]
    table = pd.DataFrame(rows, columns=PAIRING_COLUMNS)
    result = Pairing(base_name, table, paired, pd.DataFrame())
    empty = [arm for arm, n in paired.items() if n == 0]
    if empty:
        detail = " | ".join(result.lines())
        tasks = {s.name: sorted(set(s.frame["task"])) for s in sources}
        hint = (f" (different tasks: {tasks})" if len({tuple(t) for t in tasks.values()}) > 1 else "")
        raise WarmbenchError(f"no samples paired for {', '.join(empty)}{hint}: {detail}")
    result.scored = scored_table([(s, keep[s.name]) for s in sources])
    return result


def scored_table(parts: list[tuple[Source, set]]) -> pd.DataFrame:
    """The paired rows as warmbench's scored table (``layout.SCORED_COLUMNS``).

    model_family is the task (both sides of a pair must share it: it is part of the stats'
    pairing key); prompt_key is task|sample id and sample_index the epoch.
    """
    frames = []
    for s, keys in parts:
        df = s.frame.set_index(KEY)
        df = df.loc[df.index.isin(list(keys))].reset_index()
        frames.append(pd.DataFrame({
            "model_family": df["task"], "arm": s.name, "model": df["model"],
            "dataset": df["dataset"], "item_id": df["item_id"],
            "prompt_key": df["task"] + "|" + df["sample_id"], "context": df["context"],
            "form": df["form"], "prompt": df["prompt"], "answer": df["answer"],
            "label": np.where(df["correct"] == 1.0, "CORRECT", "INCORRECT"),
            "refused": False, "is_correct": df["correct"].astype(float),
            "scorer": df["scorer"], "sample_index": df["epoch"].astype(int),
        }))
    return pd.concat(frames, ignore_index=True)[list(SCORED_COLUMNS)]


def compare(paths: list[Path], out_dir: Path, *, smap: ScoreMap | None = None,
            names: list[str] | None = None, baseline: str | None = None, alpha: float = 0.05,
            report: bool = True, strict: bool = False) -> dict[str, Any]:
    """Read, pair, analyse; write OUT/{paired,pairing,...}.csv, figures, stats.json, report.html.
    ``strict``: fail, before writing anything, when any sample is dropped."""
    from ..stats.run import analyse, write_outputs

    sources = load_sources(paths, smap or ScoreMap(), names)
    p = pair(sources, baseline)
    if strict and (p.table["outcome"] == "dropped").any():
        raise WarmbenchError("--strict: samples were dropped: " + " | ".join(p.lines()))
    a = analyse(p.scored, baseline=p.baseline, alpha=alpha)
    out_dir = Path(out_dir)
    described = "; ".join(f"{s.name} = {s.info['kind']} {s.path.name} (task {s.info['task']}, "
                          f"model {s.info['model']}, scorer {s.info['scorer']})" for s in sources)
    source = {"kind": "compare", "path": ", ".join(str(s.path) for s in sources),
              "description": f"paired samples of {described}",
              "refusal": "as scored in the compared logs (no refusal rule re-applied)",
              "logs": [{"name": s.name, "path": str(s.path), **s.info} for s in sources],
              "pairing": p.lines()}
    s = write_outputs(a, out_dir, p.scored, source=source, write_table=True)
    out = StatsLayout(out_dir)
    p.table.to_csv(made(out.pairing), index=False)
    s["files"] = sorted([*s["files"], out.pairing.name])
    out.json.write_text(json.dumps(s, indent=2, default=str), encoding="utf-8")
    html = None
    if report:
        from ..report import build_report

        html = build_report(out_dir, out.report)
    return {"analysis": a, "pairing": p, "sources": sources, "summary": s, "report": html}

"""Judge validation: agreement and Cohen's kappa between two scorers or against human labels.

Kappa is computed directly from the confusion table (no sklearn): observed agreement
p_o = Σ_k n_kk / n, chance agreement p_e = Σ_k (row_k / n)(col_k / n), κ = (p_o − p_e) / (1 − p_e).
κ is undefined (NaN) when p_e = 1, i.e. both raters used one and the same label throughout.
Only CORRECT / INCORRECT pairs are compared; pairs where either side is UNPARSEABLE (or missing)
are counted and reported, not silently mixed in.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from warmbench.errors import InputError, WarmbenchError
from warmbench.records import Answer, Verdict

LABELS = ("CORRECT", "INCORRECT")


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float:
    """Cohen's κ for two equally long label sequences (NaN when undefined)."""
    if len(a) != len(b):
        raise ValueError("cohen_kappa: sequences differ in length")
    n = len(a)
    if n == 0:
        return math.nan
    po = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    pe = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
    if math.isclose(pe, 1.0):
        return math.nan
    return (po - pe) / (1 - pe)


@dataclass
class AgreementResult:
    a: str
    b: str
    n: int
    agreement: float
    kappa: float
    skipped: int
    confusion: dict[str, dict[str, int]]
    by_dataset: list[dict[str, object]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"a": self.a, "b": self.b, "n": self.n, "agreement": self.agreement, "kappa": self.kappa,
                "skipped": self.skipped, "confusion": self.confusion, "by_dataset": self.by_dataset}


def agreement(pairs: Sequence[tuple[str, str, str]], a_name: str, b_name: str) -> AgreementResult:
    """Agreement over (dataset, label_a, label_b) triples."""
    usable = [(d, x, y) for d, x, y in pairs if x in LABELS and y in LABELS]
    la = [x for _, x, _ in usable]
    lb = [y for _, _, y in usable]
    n = len(usable)
    conf = {x: {y: 0 for y in LABELS} for x in LABELS}
    for x, y in zip(la, lb, strict=True):
        conf[x][y] += 1
    by = []
    for ds in sorted({d for d, _, _ in usable}):
        sub = [(x, y) for d, x, y in usable if d == ds]
        xs, ys = [x for x, _ in sub], [y for _, y in sub]
        by.append({"dataset": ds, "n": len(sub),
                   "agreement": sum(x == y for x, y in sub) / len(sub), "kappa": cohen_kappa(xs, ys)})
    return AgreementResult(
        a=a_name, b=b_name, n=n,
        agreement=(sum(x == y for x, y in zip(la, lb, strict=True)) / n) if n else math.nan,
        kappa=cohen_kappa(la, lb), skipped=len(pairs) - n, confusion=conf, by_dataset=by,
    )


def resolve_scorer(verdicts: dict[str, Verdict], wanted: str) -> Verdict | None:
    """A verdict by exact scorer name, or by prefix ('reference', 'judge', 'judge:openai:...')."""
    if wanted in verdicts:
        return verdicts[wanted]
    hits = [v for s, v in verdicts.items() if s.startswith(wanted)]
    if len(hits) > 1:
        names = ", ".join(sorted(v.scorer for v in hits))
        raise WarmbenchError(f"scorer {wanted!r} is ambiguous for one answer ({names}): give the full name")
    return hits[0] if hits else None


def compare_scorers(answers: Sequence[Answer], verdicts: dict[str, dict[str, Verdict]],
                    a: str, b: str) -> AgreementResult:
    pairs = []
    for ans in answers:
        vs = verdicts.get(ans.key, {})
        va, vb = resolve_scorer(vs, a), resolve_scorer(vs, b)
        if va is not None and vb is not None:
            pairs.append((ans.dataset, va.label, vb.label))
    if not pairs:
        raise WarmbenchError(f"no answer has verdicts from both {a!r} and {b!r} (score it with both first)")
    return agreement(pairs, a, b)


def read_human_labels(path: str | Path) -> dict[str, str]:
    """answer_key -> CORRECT/INCORRECT from a labelled sheet (columns answer_key, label).

    Blank labels are unlabelled rows and skipped; anything else raises a one-line error naming
    the file, row and field.
    """
    p = Path(path)
    if not p.is_file():
        raise WarmbenchError(f"human label file not found: {p}")
    out: dict[str, str] = {}
    with p.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        for col in ("answer_key", "label"):
            if col not in (reader.fieldnames or []):
                raise InputError(p, 1, col, "missing column (expected answer_key and label)")
        for row_no, row in enumerate(reader, start=2):
            key = (row.get("answer_key") or "").strip()
            raw = (row.get("label") or "").strip().upper()
            if not raw:
                continue
            if not key:
                raise InputError(p, row_no, "answer_key", "empty")
            label = {"C": "CORRECT", "I": "INCORRECT", "1": "CORRECT", "0": "INCORRECT"}.get(raw, raw)
            if label not in LABELS:
                raise InputError(p, row_no, "label", f"{raw!r} is not CORRECT or INCORRECT")
            out[key] = label
    if not out:
        raise WarmbenchError(f"{p}: no labelled rows (fill the 'label' column with CORRECT or INCORRECT)")
    return out


def compare_human(answers: Sequence[Answer], verdicts: dict[str, dict[str, Verdict]],
                  human: dict[str, str], scorer: str) -> AgreementResult:
    by_key = {a.key: a for a in answers}
    unknown = [k for k in human if k not in by_key]
    if unknown:
        raise WarmbenchError(f"{len(unknown)} labelled answer_key(s) are not in this run (e.g. {unknown[0]})")
    pairs = []
    for key, label in human.items():
        v = resolve_scorer(verdicts.get(key, {}), scorer)
        pairs.append((by_key[key].dataset, label, v.label if v else "MISSING"))
    return agreement(pairs, "human", scorer)


def format_result(r: AgreementResult) -> str:
    lines = [f"{r.a} vs {r.b}: n={r.n}  agreement={r.agreement:.3f}  kappa={r.kappa:.3f}"
             + (f"  (skipped {r.skipped}: unparseable or missing)" if r.skipped else "")]
    lines.append(f"  confusion (rows {r.a}, columns {r.b}):")
    for x in LABELS:
        lines.append(f"    {x:<10} " + "  ".join(f"{y}={r.confusion[x][y]}" for y in LABELS))
    for d in r.by_dataset:
        lines.append(f"  {d['dataset']:<12} n={d['n']:<5} agreement={d['agreement']:.3f} kappa={d['kappa']:.3f}")
    return "\n".join(lines)

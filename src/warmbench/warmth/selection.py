"""Checkpoint choice from a warmth trajectory.

Rules:
- ``epoch:E`` (the study: ``epoch:2``): the checkpoint saved at epoch E; when there is none,
  the nearest one (ties: the earlier) and a note saying so.
- ``plateau``: the first checkpoint whose change from the original model (epoch 0) reaches
  (1 − tolerance) of the largest change seen in the persona's direction. "Relative to the
  plateau" is measured on the rise from the baseline, not on the raw value, because warmth
  scores sit near zero and can be negative, where a ratio of raw values means nothing.
  The direction is that of the largest absolute change, so a cold persona's plateau is its
  coldest stretch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..errors import WarmbenchError


@dataclass(frozen=True)
class Choice:
    persona: str
    epoch: float
    path: str
    rule: str
    mean: float | None
    note: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def parse_rule(rule: str) -> tuple[str, float | None]:
    """'epoch:2' -> ('epoch', 2.0); 'plateau' -> ('plateau', None). One-line error otherwise."""
    r = rule.strip().lower()
    if r == "plateau":
        return "plateau", None
    if r.startswith("epoch:"):
        try:
            e = float(r.split(":", 1)[1])
        except ValueError:
            e = float("nan")
        if math.isfinite(e) and e > 0:
            return "epoch", e
    raise WarmbenchError(f"warmth.selection: unknown rule {rule!r} (expected 'epoch:E' with E > 0, "
                         "or 'plateau')")


def select_checkpoint(persona: str, checkpoints: list[dict], means: dict[float, float], rule: str,
                      tolerance: float = 0.1) -> Choice:
    """Pick one of ``checkpoints`` ([{epoch, path}], epoch > 0) for a persona.

    ``means``: mean warmth per epoch, epoch 0 being the original model (needed by plateau).
    """
    if not checkpoints:
        raise WarmbenchError(f"persona {persona!r}: no checkpoints to choose from")
    kind, target = parse_rule(rule)
    ckpts = sorted(checkpoints, key=lambda c: float(c["epoch"]))
    if kind == "epoch":
        best = min(ckpts, key=lambda c: (abs(float(c["epoch"]) - target), float(c["epoch"])))
        e = float(best["epoch"])
        note = None if math.isclose(e, target) else (
            f"no checkpoint at epoch {target:g}; nearest is epoch {e:g}")
        return Choice(persona, e, str(best["path"]), rule, means.get(e), note)
    if not 0 <= tolerance < 1:
        raise WarmbenchError(f"warmth.tolerance must be in [0, 1), got {tolerance!r}")
    base = means.get(0.0)
    scored = [c for c in ckpts if _finite(means.get(float(c["epoch"])))]
    if base is None or not _finite(base) or not scored:
        last = ckpts[-1]
        return Choice(persona, float(last["epoch"]), str(last["path"]), rule,
                      means.get(float(last["epoch"])),
                      "plateau needs warmth at epoch 0 and at the checkpoints; took the last")
    changes = [(float(c["epoch"]), means[float(c["epoch"])] - base, c) for c in scored]
    extreme = max(changes, key=lambda t: abs(t[1]))[1]
    sign = 1.0 if extreme >= 0 else -1.0
    need = (1 - tolerance) * abs(extreme)
    for e, d, c in changes:
        if sign * d >= need - 1e-12:
            return Choice(persona, e, str(c["path"]), rule, means[e],
                          f"first checkpoint within {tolerance:g} of the largest change "
                          f"({extreme:+.4g} from epoch 0)")
    raise AssertionError("the extreme itself always qualifies")


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)

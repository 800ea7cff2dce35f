"""How numbers read in the report: percentages to one decimal, p-values as ``< 0.001``, never
scientific notation. The CSVs keep full precision; this is display only."""

from __future__ import annotations

import math
from typing import Any


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def pct(x: Any) -> str:
    """42.30769 -> '42.3%'."""
    v = _num(x)
    return "n/a" if v is None else f"{v + 0.0:.1f}%"


def pp(x: Any, signed: bool = True) -> str:
    """Percentage points, one decimal; -0.0 prints as +0.0."""
    v = _num(x)
    if v is None:
        return "n/a"
    v = round(v, 1) + 0.0
    return f"{v:+.1f}" if signed else f"{v:.1f}"


def p_value(x: Any) -> str:
    """'< 0.001', else three decimals ('0.046', '1.000')."""
    v = _num(x)
    if v is None:
        return "n/a"
    return "< 0.001" if v < 0.001 else f"{v:.3f}"


def number(x: Any) -> str:
    """A plain number without exponent: integers as integers, others to 3 significant digits
    (at least 0 and at most 4 decimals); infinities as ∞."""
    v = _num(x)
    if v is None:
        return ""
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}" if abs(v) >= 10_000 else str(int(v))
    mag = math.floor(math.log10(abs(v))) if v else 0
    decimals = min(4, max(0, 2 - mag))
    s = f"{v:,.{decimals}f}" if abs(v) >= 10_000 else f"{v:.{decimals}f}"
    return "0" if float(s.replace(",", "")) == 0 else s

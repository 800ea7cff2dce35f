"""Side-by-side original / rewrite pairs for a manual check (the study read 50 random pairs).

Writes RUN/rewrite/spot_check.csv (one row per sampled assistant turn: id, turn, user,
original, one column per persona) and spot_check.html, a self-contained page in which every
piece of text is HTML-escaped (model outputs are untrusted).
"""

from __future__ import annotations

import csv
import html
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_CSS = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%;table-layout:fixed}
th,td{border:1px solid #ccc;padding:.5em;vertical-align:top;text-align:left}
th{background:#f3f3f3}td div{white-space:pre-wrap;word-wrap:break-word;font-size:.9em}
tr.meta td{background:#fafafa;font-size:.85em;color:#555}"""


def sample_pairs(pairs: Sequence[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` pairs drawn with the seed, returned in their original order."""
    if n >= len(pairs):
        return list(pairs)
    idx = sorted(random.Random(f"spot:{seed}").sample(range(len(pairs)), n))
    return [pairs[i] for i in idx]


def write_spot_check(csv_path: Path, html_path: Path, pairs: Sequence[dict[str, Any]],
                     personas: Sequence[str], n: int, seed: int,
                     title: str = "Persona rewrite spot check") -> dict[str, Path]:
    """``pairs``: dicts with id, turn, user, original and one key per persona; written to
    ``csv_path`` and ``html_path`` (RunLayout.spot_check_csv / _html)."""
    chosen = sample_pairs(pairs, n, seed)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    cols = ["id", "turn", "user", "original", *personas]
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(chosen)
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in ["original", *personas])
    rows = []
    for p in chosen:
        rows.append(f'<tr class="meta"><td colspan="{1 + len(personas)}">{e(str(p["id"]))} · turn '
                    f'{e(str(p["turn"]))} · <b>user:</b> {e(p["user"][:600])}</td></tr>')
        rows.append("<tr>" + "".join(f"<td><div>{e(str(p.get(c, '')))}</div></td>"
                                     for c in ["original", *personas]) + "</tr>")
    page = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{e(title)}</h1>"
            f"<p>{len(chosen)} of {len(pairs)} rewritten assistant turns, drawn with seed {seed}. "
            f"Check that meaning, facts and code are unchanged and only the style differs.</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"</body></html>")
    html_path.write_text(page, encoding="utf-8")
    return {"csv": csv_path, "html": html_path}

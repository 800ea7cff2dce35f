"""Render ReportData to one self-contained HTML file (no network assets).

All model text reaches the page as data: table cells are escaped by Jinja's autoescape, and
the answer browser's JSON sits in a ``<script type="application/json">`` block with ``<``,
``>`` and ``&`` escaped, and is put on the page with ``textContent`` only, so an answer
containing ``<script>`` is shown, never run.
"""

from __future__ import annotations

import base64
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from . import tables as tab
from .collect import ReportData

_TEMPLATES = resources.files("warmbench.report") / "templates"


def _asset(name: str) -> str:
    return (_TEMPLATES / name).read_text(encoding="utf-8")


def _sampling_text(sampling: dict[str, Any]) -> str:
    """'triviaqa: 2 of 15 (builtin-sample:triviaqa, seed 0), 56 prompts; ...'"""
    parts = []
    for name, v in sampling.items():
        if not isinstance(v, dict):
            continue
        parts.append(f"{name}: {v.get('used', v.get('sampled', '?'))} of {v.get('total', '?')} items "
                     f"({v.get('source', '?')}, seed {v.get('seed', '?')}), {v.get('prompts', '?')} prompts")
    return "; ".join(parts) or "n/a"


def _metric_model_text(m: dict[str, Any]) -> str:
    """Never let a stand-in pass for GPT-2: say so unless the model is gpt2 itself."""
    name = str((m.get("warmth") or {}).get("metric_model") or "")
    if not name:
        return "n/a"
    if name == "gpt2" or "stand-in" in name:
        return name
    return f"{name} (offline stand-in; the study used GPT-2)"


def _safe_json(obj: Any) -> str:
    """JSON that cannot close its <script> element or start markup."""
    s = json.dumps(obj, ensure_ascii=False)
    return s.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


_RUN_ONLY = ("experiment", "created / updated", "seeds", "eval sets", "warmth metric model")


def _table_views(data: ReportData) -> list[dict[str, Any]]:
    arm_word = {"fine-tuning": "fine-tuned arm", "the system prompt": "system-prompt arm"}.get(
        data.effect_noun, "persona arm")
    views = []
    for name, caption, df in data.tables:
        title = tab.LAYOUT.get(name, ("", {}))[0] or name.removesuffix(".csv").replace("_", " ").capitalize()
        shown, notes = tab.display(name, df, arm_word)
        views.append({"file": data.table_files.get(name, name),
                      "anchor": re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"),
                      "title": title, "caption": caption, "notes": notes,
                      "html": jinja2.utils.markupsafe.Markup(tab.to_html(shown))})
    return views


def _belief_table(data: ReportData) -> Any:
    from . import fmt
    from .belief import BELIEF_FORMS

    if not data.belief:
        return ""
    frame = pd.DataFrame([{
        "arm": e.arm, "the user": BELIEF_FORMS[e.form], "pairs": str(e.n_pairs), "questions": str(e.n_items),
        "error, plain": fmt.pct(e.err_plain_pct), "error, with belief": fmt.pct(e.err_belief_pct),
        "change (pp)": fmt.pp(e.diff_pp), "CI low (pp)": fmt.pp(e.ci_low_pp),
        "CI high (pp)": fmt.pp(e.ci_high_pp)} for e in data.belief])
    return jinja2.utils.markupsafe.Markup(tab.to_html(frame))


def _figure_views(data: ReportData) -> list[dict[str, Any]]:
    """SVG where stats wrote one (sharp at any width), else PNG; both as data: URIs (an SVG in
    an <img> runs no script)."""
    out = []
    for f in data.figures:
        if f.svg:
            src = "data:image/svg+xml;base64," + base64.b64encode(f.svg.encode("utf-8")).decode("ascii")
        else:
            src = f"data:image/png;base64,{f.png_b64}"
        out.append({"caption": f.caption, "wide": f.wide, "src": src})
    return out


def render(data: ReportData) -> str:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    m = data.manifest
    cfg = m.get("config", {})
    arms = cfg.get("arms") or []
    st = data.stats_summary
    src = data.source
    versions = m.get("versions") or st.get("versions") or {}
    infos = data.arms_info
    if arms:
        arms_text = "; ".join(
            f"{a.get('name')}: {a.get('model')}"
            + (f", {infos[str(a.get('name'))].kind}" if str(a.get("name")) in infos else "")
            + (f" (persona {a['persona']})" if a.get("persona") else "") for a in arms)
    else:  # no run config (e.g. published data): the arms the statistics compared
        arms_text = ", ".join(map(str, [st.get("baseline"), *(st.get("arms") or [])])) if st else "n/a"
    prov = [
        ("source", str(src.get("description") or f"run directory {data.run_dir}")),
        ("run directory", str(data.run_dir)),
        ("experiment", cfg.get("name", "")),
        ("created / updated", f"{m.get('created', '')} / {m.get('updated', '')}"),
        ("arms", arms_text),
        ("scorer", data.scorer or (cfg.get("judge") or {}).get("model") or "n/a"),
        ("refusal handling", str(src.get("refusal") or "n/a")),
        ("analysis", (f"baseline {st.get('baseline')}, compat {st.get('compat')}, SEs {st.get('cluster')}, "
                      f"BH family {st.get('fdr_family')}, {st.get('n_rows')} rows") if st else "n/a (no stats.json)"),
        ("seeds", json.dumps(m.get("seeds", {}))),
        ("eval sets", _sampling_text(m.get("eval_sampling") or {})),
        ("warmth metric model", _metric_model_text(m)),
        ("git revision", str(m.get("git_revision") or st.get("git_revision"))),
        ("warmbench", str(versions.get("warmbench", ""))),
    ]
    if not m:  # not a run (e.g. published data): leave out the rows only a run can fill
        prov = [(k, v) for k, v in prov if k not in _RUN_ONLY]
    headline = [(str(k), str(v)) for k, v in (st.get("headline") or {}).items()]
    Markup = jinja2.utils.markupsafe.Markup
    def views(fs):
        return [{"sentence": f.sentence,
                 "css": "none" if not f.excludes_zero else ("up" if " rose " in f.sentence else "down")}
                for f in fs]

    findings, belief_findings = views(data.findings), views(data.belief_findings)
    system_prompts = [(name, f"{info.kind}: " + (info.system_prompt or "none"))
                      for name, info in infos.items() if info.kind != "persona" or info.system_prompt]
    published_name = Path(str(src.get("path", ""))).name if src.get("kind") == "published" else ""
    title = cfg.get("name") or (f"published data: {published_name}" if published_name else data.run_dir.name)
    noun = data.effect_noun.split(" (")[0]
    subtitle = (f"What {noun} cost in reliability: the headline in sentences, figures, paired "
                "comparisons on identical prompts, regressions, and every answer side by side.")
    env.globals.update(css=Markup(_asset("report.css")), js=Markup(_asset("report.js")))
    return env.from_string(_asset("report.html.j2")).render(
        title=title, subtitle=subtitle, toy_models=data.toy_models, findings=findings,
        belief_findings=belief_findings, belief_table=_belief_table(data),
        baseline=str(st.get("baseline") or "original"),
        forms_note=data.forms_note, scorer=data.scorer or "n/a", warnings=data.warnings,
        headline=headline, provenance=prov, config_text=json.dumps(cfg, indent=2, default=str),
        versions_text=json.dumps(versions, indent=2), figures=_figure_views(data),
        tables=_table_views(data), system_prompts=system_prompts,
        browser_json=Markup(_safe_json(data.browser or {"arms": [], "rows": []})),
    )

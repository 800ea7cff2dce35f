"""Render ReportData to one self-contained HTML file (no network assets).

All model text reaches the page as data: table cells are escaped by Jinja's autoescape, and
the answer browser's JSON sits in a ``<script type="application/json">`` block with ``<``,
``>`` and ``&`` escaped, and is put on the page with ``textContent`` only, so an answer
containing ``<script>`` is shown, never run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from .collect import ReportData

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2430;background:#fafbfc}
header{background:#1d2430;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c9d1d9}
main{padding:8px 28px 40px;max-width:1400px}
section{background:#fff;border:1px solid #e1e4e8;border-radius:8px;padding:14px 18px;margin:16px 0}
h2{font-size:18px;margin:4px 0 10px}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0}
th,td{border:1px solid #e1e4e8;padding:3px 7px;text-align:right;vertical-align:top}
th{background:#f3f5f7;position:sticky;top:0}td.t,th.t{text-align:left}
.scroll{max-height:460px;overflow:auto}
.caption{color:#57606a;margin:2px 0 6px}.warn{color:#9a6700}
figure{display:inline-block;margin:8px 12px 8px 0;vertical-align:top}figure img{max-width:640px;border:1px solid #e1e4e8}
figcaption{color:#57606a;font-size:12px}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px}dl.kv dt{font-weight:600}dl.kv dd{margin:0;word-break:break-all}
.filters label{margin-right:14px}.filters select{margin-left:4px}
.prompt{border-top:1px solid #e1e4e8;padding:10px 0}.meta{color:#57606a;font-size:12px}
.ptext{white-space:pre-wrap;background:#f6f8fa;padding:6px 8px;border-radius:4px;margin:4px 0}
.arms{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:8px}
.arm{border:1px solid #e1e4e8;border-radius:6px;padding:6px 8px}
.arm pre{white-space:pre-wrap;word-wrap:break-word;font:12.5px/1.4 ui-monospace,monospace;margin:4px 0 0}
.CORRECT{color:#1a7f37;font-weight:600}.INCORRECT{color:#cf222e;font-weight:600}
.REFUSED,.UNPARSEABLE{color:#9a6700;font-weight:600}
details summary{cursor:pointer}
"""

_JS = r"""
(function(){
  const data = JSON.parse(document.getElementById('answers-data').textContent);
  const box = document.getElementById('browser');
  const sel = {dataset: document.getElementById('f-dataset'), context: document.getElementById('f-context'),
               change: document.getElementById('f-change'), form: document.getElementById('f-form')};
  const count = document.getElementById('browser-count');
  function opts(select, values){
    values.forEach(v => {const o = document.createElement('option'); o.value = v; o.textContent = v; select.appendChild(o);});
  }
  const uniq = k => [...new Set(data.rows.map(r => r[k]))].sort();
  opts(sel.dataset, uniq('dataset')); opts(sel.context, uniq('context')); opts(sel.form, uniq('form'));
  opts(sel.change, ['worse', 'better', 'same']);
  const PAGE = 50;
  let shown = PAGE;
  function el(tag, cls, text){const e = document.createElement(tag); if(cls) e.className = cls; if(text !== undefined) e.textContent = text; return e;}
  function render(){
    box.replaceChildren();
    const f = {}; for (const k in sel) f[k] = sel[k].value;
    const rows = data.rows.filter(r => (!f.dataset || r.dataset === f.dataset) && (!f.context || r.context === f.context)
      && (!f.form || r.form === f.form) && (!f.change || r.change === f.change));
    count.textContent = rows.length + ' prompts match' + (data.truncated ? ' (browser limited; ' + data.truncated + ' more prompts in RUN/judge/scored.parquet)' : '');
    rows.slice(0, shown).forEach(r => {
      const p = el('div', 'prompt');
      p.appendChild(el('div', 'meta', [r.family, r.dataset, r.context, r.form, 'sample ' + r.sample, 'verdict change: ' + r.change].filter(Boolean).join(' · ')));
      p.appendChild(el('div', 'ptext', r.prompt));
      const arms = el('div', 'arms');
      data.arms.forEach(a => {
        const ans = r.answers[a]; if (!ans) return;
        const d = el('div', 'arm');
        const h = el('div'); h.appendChild(el('b', null, a + ': ')); h.appendChild(el('span', ans.label, ans.label));
        if (ans.ok === null && ans.label !== 'UNPARSEABLE') h.appendChild(el('span', 'meta', ' (excluded)'));
        d.appendChild(h); d.appendChild(el('pre', null, ans.text)); arms.appendChild(d);
      });
      p.appendChild(arms); box.appendChild(p);
    });
    if (rows.length > shown) {
      const more = el('button', null, 'show more'); more.onclick = () => {shown += PAGE; render();}; box.appendChild(more);
    }
  }
  for (const k in sel) sel[k].addEventListener('change', () => {shown = PAGE; render();});
  render();
})();
"""

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>warmbench report — {{ title }}</title><style>{{ css }}</style></head>
<body>
<header><h1>warmbench report — {{ title }}</h1>
<p>{{ subtitle }}</p></header>
<main>
{% if warnings %}<section><h2>Notes</h2>{% for w in warnings %}<p class="warn">{{ w }}</p>{% endfor %}</section>{% endif %}
{% if headline %}<section id="headline"><h2>Headline</h2><dl class="kv">
{% for k, v in headline %}<dt>{{ k }}</dt><dd>{{ v }}</dd>{% endfor %}</dl></section>{% endif %}
<section id="provenance"><h2>Provenance</h2><dl class="kv">
{% for k, v in provenance %}<dt>{{ k }}</dt><dd>{{ v }}</dd>{% endfor %}</dl>
<details><summary>Resolved configuration</summary><pre>{{ config_text }}</pre></details>
<details><summary>Package versions</summary><pre>{{ versions_text }}</pre></details>
</section>
{% if figures %}<section id="figures"><h2>Figures</h2>
{% for f in figures %}<figure><img alt="{{ f.caption }}" src="data:image/png;base64,{{ f.png_b64 }}"><figcaption>{{ f.caption }}</figcaption></figure>{% endfor %}
</section>{% endif %}
{% for name, caption, table in tables %}<section class="table-section"><h2>{{ name }}</h2>
<p class="caption">{{ caption }}</p><div class="scroll">{{ table }}</div></section>{% endfor %}
<section id="answers"><h2>Answers side by side</h2>
<p class="caption">Each prompt with every arm's answer and verdict. Model text is shown as plain text.</p>
<div class="filters">
<label>dataset<select id="f-dataset"><option value="">all</option></select></label>
<label>context<select id="f-context"><option value="">all</option></select></label>
<label>form<select id="f-form"><option value="">all</option></select></label>
<label>verdict change<select id="f-change"><option value="">all</option></select></label>
<span id="browser-count" class="meta"></span></div>
<div id="browser"></div></section>
</main>
<script type="application/json" id="answers-data">{{ browser_json }}</script>
<script>{{ js }}</script>
</body></html>
"""


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


def _table_html(df: pd.DataFrame, max_rows: int = 400) -> str:
    if df.empty:  # e.g. general.csv of data without MMLU / GSM8K / AdvBench
        return "<p class='meta'>no rows in this input.</p>"
    shown = df.head(max_rows)
    html = shown.to_html(index=False, escape=True, border=0, na_rep="",
                         float_format=lambda x: f"{x:.4g}", classes="data")
    if len(df) > max_rows:
        html += f"<p class='meta'>first {max_rows} of {len(df)} rows; the full table is in the CSV.</p>"
    return html


def render(data: ReportData) -> str:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    m = data.manifest
    cfg = m.get("config", {})
    arms = cfg.get("arms") or []
    st = data.stats_summary
    src = data.source
    versions = m.get("versions") or st.get("versions") or {}
    if arms:
        arms_text = "; ".join(f"{a.get('name')}: {a.get('model')}" + (f" (persona {a['persona']})" if a.get("persona") else "")
                              + (" + system prompt" if a.get("system_prompt") else "") for a in arms)
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
    tables = [(name, caption, jinja2.utils.markupsafe.Markup(_table_html(df)))
              for name, caption, df in data.tables]
    published_name = Path(str(src.get("path", ""))).name if src.get("kind") == "published" else ""
    title = cfg.get("name") or (f"published data: {published_name}" if published_name else data.run_dir.name)
    subtitle = ("What the persona cost in reliability: paired comparisons on identical prompts, "
                "regressions and every answer.")
    return env.from_string(_TEMPLATE).render(
        title=title, subtitle=subtitle, css=jinja2.utils.markupsafe.Markup(_CSS),
        js=jinja2.utils.markupsafe.Markup(_JS), warnings=data.warnings, headline=headline,
        provenance=prov, config_text=json.dumps(cfg, indent=2, default=str),
        versions_text=json.dumps(versions, indent=2), figures=data.figures,
        tables=tables, browser_json=jinja2.utils.markupsafe.Markup(_safe_json(data.browser or {"arms": [], "rows": []})),
    )

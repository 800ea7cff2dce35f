// The answer browser. Every string from the data block is untrusted model or user text: it is
// put on the page with textContent only, never as markup.
(function(){
  const data = JSON.parse(document.getElementById('answers-data').textContent);
  const box = document.getElementById('browser');
  const sel = {dataset: document.getElementById('f-dataset'), context: document.getElementById('f-context'),
               change: document.getElementById('f-change'), form: document.getElementById('f-form')};
  const count = document.getElementById('browser-count');
  const info = data.arm_info || {};
  function opts(select, values){
    values.forEach(v => {const o = document.createElement('option'); o.value = v; o.textContent = v; select.appendChild(o);});
  }
  const uniq = k => [...new Set(data.rows.map(r => r[k]))].sort();
  opts(sel.dataset, uniq('dataset')); opts(sel.context, uniq('context')); opts(sel.form, uniq('form'));
  opts(sel.change, ['worse', 'better', 'same']);
  const PAGE = 50;
  let shown = PAGE;
  function el(tag, cls, text){const e = document.createElement(tag); if(cls) e.className = cls; if(text !== undefined) e.textContent = text; return e;}
  function armCard(a, ans){
    const d = el('div', 'arm');
    const h = el('div'); h.appendChild(el('b', null, a));
    const kind = (info[a] || {}).kind; if (kind) h.appendChild(el('span', 'meta', ' (' + kind + ')'));
    h.appendChild(el('span', null, ': ')); h.appendChild(el('span', ans.label, ans.label));
    if (ans.ok === null && ans.label !== 'UNPARSEABLE') h.appendChild(el('span', 'meta', ' (excluded)'));
    d.appendChild(h); d.appendChild(el('pre', null, ans.text));
    const why = el('div', 'why', 'scorer ' + (ans.scorer || 'n/a') + (ans.reason ? ': ' + ans.reason : ''));
    d.appendChild(why);
    const sp = (info[a] || {}).system_prompt;
    if (sp) {
      const det = el('details', 'sys'); det.appendChild(el('summary', null, 'system prompt'));
      det.appendChild(el('pre', null, sp)); d.appendChild(det);
    }
    return d;
  }
  function render(){
    box.replaceChildren();
    const f = {}; for (const k in sel) f[k] = sel[k].value;
    const rows = data.rows.filter(r => (!f.dataset || r.dataset === f.dataset) && (!f.context || r.context === f.context)
      && (!f.form || r.form === f.form) && (!f.change || r.change === f.change));
    count.textContent = rows.length + ' prompts match' + (data.truncated ? ' (browser limited; ' + data.truncated + ' more prompts in the scored table)' : '');
    rows.slice(0, shown).forEach(r => {
      const p = el('div', 'prompt');
      p.appendChild(el('div', 'meta', [r.family, r.dataset, r.context, r.form, r.sample ? 'sample ' + r.sample : '', 'verdict change: ' + r.change].filter(Boolean).join(' · ')));
      p.appendChild(el('div', 'ptext', r.prompt));
      if ((r.correct && r.correct.length) || r.incorrect) {
        const ref = el('div', 'ref');
        if (r.correct && r.correct.length) { ref.appendChild(el('b', null, 'Reference answer: ')); ref.appendChild(el('span', 'good', r.correct.join(' | '))); }
        if (r.incorrect) { ref.appendChild(el('b', 'gap', 'Wrong answer a user asserts: ')); ref.appendChild(el('span', 'bad', r.incorrect)); }
        p.appendChild(ref);
      }
      const arms = el('div', 'arms');
      data.arms.forEach(a => { const ans = r.answers[a]; if (ans) arms.appendChild(armCard(a, ans)); });
      p.appendChild(arms); box.appendChild(p);
    });
    if (rows.length > shown) {
      const more = el('button', null, 'show more'); more.onclick = () => {shown += PAGE; render();}; box.appendChild(more);
    }
  }
  for (const k in sel) sel[k].addEventListener('change', () => {shown = PAGE; render();});
  render();
})();

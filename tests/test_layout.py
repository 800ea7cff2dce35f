"""The run layout: one named path per stage file, records that carry their own keys, and a grep
that keeps path literals and inline item keys out of the rest of ``src/``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from warmbench.errors import WarmbenchError
from warmbench.layout import RunLayout, StatsLayout, made
from warmbench.records import Answer, Item, Prompt, Verdict, item_key, verdict_key

SRC = Path(__file__).resolve().parents[1] / "src" / "warmbench"


def test_run_layout_names_every_stage_file(tmp_path):
    r = RunLayout(tmp_path)
    rel = {name: getattr(r, name).relative_to(tmp_path).as_posix() for name in (
        "store", "manifest", "report", "logs", "models", "inspect_exports",
        "curate", "curate_train", "curate_validation", "curate_summary_csv", "curate_summary_json",
        "rewrite", "spot_check_csv", "spot_check_html", "train",
        "warmth", "warmth_answers", "trajectory_csv", "trajectory_png", "trajectory_figure",
        "selected", "selection", "eval", "items", "prompts", "answers",
        "judge", "scored", "refusals", "judge_summary")}
    assert rel == {
        "store": "store.sqlite", "manifest": "manifest.json", "report": "report.html",
        "logs": "logs", "models": "models", "inspect_exports": "exports/inspect",
        "curate": "curate", "curate_train": "curate/train.jsonl",
        "curate_validation": "curate/validation.jsonl", "curate_summary_csv": "curate/summary.csv",
        "curate_summary_json": "curate/summary.json",
        "rewrite": "rewrite", "spot_check_csv": "rewrite/spot_check.csv",
        "spot_check_html": "rewrite/spot_check.html", "train": "train",
        "warmth": "warmth", "warmth_answers": "warmth/answers.parquet",
        "trajectory_csv": "warmth/trajectory.csv", "trajectory_png": "warmth/trajectory.png",
        "trajectory_figure": "warmth/trajectory", "selected": "warmth/selected.json",
        "selection": "warmth/selection.json", "eval": "eval", "items": "eval/items.parquet",
        "prompts": "eval/prompts.parquet", "answers": "eval/answers.parquet",
        "judge": "judge", "scored": "judge/scored.parquet", "refusals": "judge/refusals.csv",
        "judge_summary": "judge/summary.json",
    }
    per_name = {
        r.rewrite_data("warm"): "rewrite/warm.jsonl",
        r.rewrite_report("warm"): "rewrite/warm_report.json",
        r.train_persona("warm"): "train/warm",
        r.checkpoints("warm"): "train/warm/checkpoints.json",
        r.checkpoint_dir("warm", 0.5): "train/warm/checkpoint-epoch-0.5",
        r.checkpoint_dir("warm", 2.0): "train/warm/checkpoint-epoch-2",
        r.traceback("eval"): "logs/eval.traceback.txt",
        r.store_export("eval:x"): "exports/eval_x.parquet",
    }
    assert {p.relative_to(tmp_path).as_posix(): v for p, v in per_name.items()} == \
        {v: v for v in per_name.values()}
    assert not any(tmp_path.iterdir())   # naming a path creates nothing


def test_stats_layout_and_sub_runs(tmp_path):
    s = RunLayout(tmp_path).stats
    assert isinstance(s, StatsLayout) and s.root == tmp_path / "stats"
    assert [p.name for p in (s.json, s.headline, s.paired, s.pairing, s.scored, s.report)] == [
        "stats.json", "headline.csv", "paired.csv", "pairing.csv", "scored.parquet", "report.html"]
    assert s.figures == tmp_path / "stats" / "figures"
    assert s.results("warm") == tmp_path / "stats" / "results_warm.csv"
    assert StatsLayout(str(tmp_path)).file("general.csv") == tmp_path / "general.csv"

    sub = RunLayout(tmp_path).base_run("SmolLM2-135M")
    assert isinstance(sub, RunLayout) and sub.root == tmp_path / "models" / "SmolLM2-135M"
    assert sub.scored == tmp_path / "models/SmolLM2-135M/judge/scored.parquet"
    made(sub.store).write_text("x")
    assert RunLayout(tmp_path).base_stores() == [sub.store]


def test_user_names_cannot_leave_the_run_dir(tmp_path):
    r = RunLayout(tmp_path / "run")
    for bad in (lambda: r.rewrite_data("../../x"), lambda: r.train_persona("/etc"),
                lambda: r.rewrite_report("../../x"), lambda: r.base_run("../../elsewhere"),
                lambda: r.traceback("../../x"), lambda: r.stats.results("/../../../x"),
                lambda: r.checkpoints("../.."), lambda: r.store_export("../../x"),
                lambda: r.checkpoint_dir("../..", 1.0)):
        with pytest.raises(WarmbenchError, match="leaves the directory"):
            bad()


def test_made_creates_the_folder(tmp_path):
    p = made(RunLayout(tmp_path).scored)
    assert p.parent.is_dir() and not p.exists()


def test_record_keys_are_byte_identical_to_stored_ones():
    # Store keys of existing runs: these exact strings must never change.
    it = Item(id="tqa_0001", dataset="triviaqa", question="q?")
    assert it.key == "triviaqa:tqa_0001" == item_key("triviaqa", "tqa_0001")
    v = Verdict(answer_key="9f2c", scorer="judge:openai:gpt-4o@v1", label="CORRECT")
    assert v.key == "judge:openai:gpt-4o@v1|9f2c" == verdict_key("judge:openai:gpt-4o@v1", "9f2c")
    p = Prompt(key="k", item_id="tqa_0001", dataset="triviaqa", context="unmodified",
               form="original", text="q?")
    a = Answer(key="a", arm="warm", model="hf:m", prompt_key="k", item_id="tqa_0001",
               dataset="triviaqa", context="unmodified", form="original", text="t")
    assert p.item_key == a.item_key == it.key
    assert "key" not in it.model_dump() and "key" not in v.model_dump()  # stored rows unchanged


# -- the grep ----------------------------------------------------------------------------------
_FILES = (r"store\.sqlite|manifest\.json|report\.html|(?:scored|answers|items|prompts)\.parquet"
          r"|trajectory\.(?:csv|png)|select(?:ed|ion)\.json|checkpoints\.json|train\.jsonl"
          r"|validation\.jsonl|summary\.(?:csv|json)|stats\.json|headline\.csv|pairing?\.csv"
          r"|paired\.csv|regressions\.csv|marginal_effects\.csv|general\.csv|refusals\.csv"
          r"|spot_check\.(?:csv|html)|sheet\.(?:csv|html)|traceback\.txt|_report\.json"
          r"|train_state\.json|api_job\.json|warmbench_checkpoint\.json|openai_train\.jsonl")
_FOLDERS = r"curate|rewrite|train|trainer|warmth|eval|judge|stats|figures|logs|models|exports"
FORBIDDEN = {
    # a quoted string that is a stage file name, or a path ending in one
    "stage file name": re.compile(rf"""["'][^"'\s]*(?:{_FILES})["']"""),
    # a stage folder joined onto a path, or spelled at the start of a relative path
    "stage folder": re.compile(rf"""/\s*["'](?:{_FOLDERS})["']|["'](?:{_FOLDERS})/"""),
    # an item key dataset:id or a verdict key scorer|answer_key built inline
    "inline item key": re.compile(r"\{[^{}]*dataset[^{}]*\}:\{|\}:\{[^{}]*item_id"),
    "inline verdict key": re.compile(r"\{[^{}]*scorer[^{}]*\}\|\{"),
}
ALLOWED = {"layout.py", "records.py"}
# (file, check) pairs that are not about a run directory.
NOT_A_RUN = {("embedded.py", "stage folder"): "the model cache's models/ folder"}

# Lines as they were before the layout (one of each form): the patterns must catch them all.
ORIGINAL_LINES = [
    '''    for db in [root / "store.sqlite", *sorted(root.glob("models/*/store.sqlite"))]:''',
    '''        m = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))''',
    '''    scored = run_dir / "judge" / "scored.parquet"''',
    '''    return {"train": d / "train.jsonl", "validation": d / "validation.jsonl",''',
    '''            "summary_csv": d / "summary.csv", "summary_json": d / "summary.json"}''',
    '''        write_parquet(df, run_path(out, "scored.parquet"))''',
    '''    s["files"] = (sorted([*files, "headline.csv", *(["scored.parquet"] if write_table else [])])''',
    '''    s = write_outputs(a, run_dir / "stats", df, run_dir / "warmth" / "trajectory.csv",''',
    '''    return _files_digest(list((store.run_dir / "train").glob("*/checkpoints.json")))''',
    '''    "rewrite": lambda cfg: [f"rewrite/{p}.jsonl" for p in cfg.rewrite.personas],''',
    '''    "warmth": lambda cfg: ["warmth/selected.json"],''',
    '''        views.append({"file": ("warmth/" if name == "trajectory.csv" else "stats/") + name,''',
    '''    out = Path(output) if output else run_dir / "report.html"''',
    '''    "paired.csv": ("Paired comparisons on identical prompts", {''',
    '''    own_trajectory = (run_dir / "warmth" / "trajectory.png").exists()''',
    '''    for d in (stats_dir / "figures", run_dir / "warmth"):''',
    '''CHECKPOINTS = "checkpoints.json"                # [{epoch, step, path, relpath, spec}]''',
    '''        "answers": str(_export(ans_rows, out_dir / "answers.parquet")),''',
    '''    write_parquet(df, run_path(run_dir, "judge", "scored.parquet"))''',
    '''STORE_NAME = "store.sqlite"''',
    '''RUN_MARKERS = (STORE_NAME, "manifest.json", "judge/scored.parquet")''',
    '''    data["run_dir"] = str(Path(cfg.run_dir) / "models" / base_slug(base))''',
    '''        log = run_dir / "logs" / f"{stage.name}.traceback.txt"''',
    '''    csv_path, html_path = out_dir / "spot_check.csv", out_dir / "spot_check.html"''',
    '''        (out_dir / f"{name}_report.json").write_text(json.dumps(report, indent=2))''',
    '''        raise WarmbenchError(f"no rewrite output in {run_dir / 'rewrite'} for personas "''',
    '''    answers_path = run_path(run_dir, "warmth", "answers.parquet")''',
    '''        c = write_csv(rows, folder / "sheet.csv")''',
    '''        shutil.rmtree(out_dir / "trainer", ignore_errors=True)''',
    '''    store.put_many(KIND_ITEM, ((f"{it.dataset}:{it.id}", it) for it in items))''',
    '''            [(_as_asked(items[f"{a.dataset}:{a.item_id}"], a.form), a.text) for a in need_ref],''',
    '''        return {f"{d['dataset']}:{d['id']}": list(d.get("correct_answers") or [])''',
    '''            refs[f"{it.get('dataset')}:{it.get('id')}"] = {''',
    '''        ref = refs.get(f"{ds}:{first.get('item_id', '')}", {})''',
    '''    return f"{scorer}|{answer_key}"''',
]


def _hits(text: str) -> list[str]:
    return [what for what, pat in FORBIDDEN.items() if pat.search(text)]


@pytest.mark.parametrize("line", ORIGINAL_LINES)
def test_the_grep_catches_the_literals_it_replaced(line):
    assert _hits(line), line


def test_the_grep_passes_layout_use():
    for line in ('    write_parquet(df, made(layout.scored))',
                 '    """Write RUN/report.html (or ``output``) and return its path."""',
                 '        help="Output folder (default RUN/judge)."',
                 '    key = f"{seed}|{dataset}|{item_id}|{subtype}"',
                 '        names = ", ".join(it.key for _, it in hits[:5])',
                 '    tag=f"{name}:{convs[ci].id}:{mi}"',
                 """    f"ft:{job['model']}:{self.org}:{sfx}:{job['id'][-6:]}\""""):
        assert not _hits(line), line


def test_no_stage_path_literal_or_inline_key_outside_the_layout():
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name in ALLOWED and path.parent == SRC:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("  #")[0]   # a trailing comment may name a file
            for what in _hits(code):
                if (path.name, what) in NOT_A_RUN:
                    continue
                bad.append(f"{path.relative_to(SRC)}:{n}: {what}: {line.strip()}")
    assert not bad, "use RunLayout / record keys instead:\n" + "\n".join(bad)

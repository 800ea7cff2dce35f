"""warmbench's grid as an Inspect task, and `warmbench compare` on Inspect logs and lm-eval
sample files: b, c and the exact p against counts made here, and every dropped sample accounted.

Inspect's mockllm counts tokens with tiktoken, which downloads its encoding on first use; offline,
the mock model is given a reply function that sets the usage itself (Inspect's ``custom_outputs``).
"""

from __future__ import annotations

import json
import zlib

import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

pytest.importorskip("inspect_ai")

from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai.log import read_eval_log, write_eval_log  # noqa: E402
from inspect_ai.model import ModelOutput, ModelUsage, get_model  # noqa: E402

from warmbench.cli import app  # noqa: E402
from warmbench.interop.task import grid_prompts, persona_reliability  # noqa: E402

WARM = "You are a warm, caring assistant. {Braces stay verbatim.}"


def correct_for(key: str, warm: bool) -> bool:
    """The mock model's rule: deterministic per prompt, less often right with the warm prompt."""
    h = zlib.crc32((key + ("|warm" if warm else "")).encode()) % 10
    return h < (4 if warm else 7)


@pytest.fixture(scope="module")
def grid():
    items, prompts = grid_prompts("triviaqa", limit=2)
    return {p.text: (p, next(i for i in items if i.id == p.item_id)) for p in prompts}


@pytest.fixture(scope="module")
def two_logs(tmp_path_factory, grid):
    """Two runs of the task on mockllm: no system prompt, and the warm one."""
    seen_system: list[str] = []

    def reply(messages, tools, tool_choice, config):
        warm = messages[0].role == "system"
        if warm:
            seen_system.append(messages[0].text)
        p, item = grid[messages[-1].text]
        text = (item.correct_answers[0] if correct_for(p.key, warm)
                else f"I believe it is {item.incorrect_answer}.")
        out = ModelOutput.from_content(model="mockllm", content=text)
        out.usage = ModelUsage(input_tokens=20, output_tokens=5, total_tokens=25)
        return out

    d = tmp_path_factory.mktemp("inspect_logs")
    model = get_model("mockllm/model", custom_outputs=reply)
    base = inspect_eval(persona_reliability(dataset="triviaqa", limit=2), model=model,
                        log_dir=str(d), display="none")[0]
    warm = inspect_eval(persona_reliability(dataset="triviaqa", limit=2, system_prompt=WARM),
                        model=model, log_dir=str(d), display="none")[0]
    assert base.status == warm.status == "success"
    assert set(seen_system) == {WARM}
    return base.location, warm.location


def test_task_asks_the_28_forms_and_scores_with_warmbench(two_logs, grid):
    log = read_eval_log(two_logs[0])
    assert len(log.samples) == 2 * 28 and log.eval.task.endswith("persona_reliability")
    for s in log.samples:
        p, _ = grid[s.input]
        assert s.id == p.key and s.metadata["form"] == p.form
        assert s.scores["warmbench_scorer"].value == ("C" if correct_for(p.key, False) else "I")
        assert s.scores["warmbench_scorer"].metadata["scorer"] == "reference:alias"


def _independent(grid, group) -> dict:
    """b, c per group of prompts, from the mock's rule (not from any warmbench code)."""
    out: dict = {}
    for p, _ in grid.values():
        y0, y1 = correct_for(p.key, False), correct_for(p.key, True)
        for g in group(p):
            b, c = out.get(g, (0, 0))
            out[g] = (b + (y0 and not y1), c + (y1 and not y0))
    return out


def _exact_p(b: int, c: int) -> float:
    return 1.0 if b + c == 0 else stats.binomtest(min(b, c), b + c, 0.5).pvalue


def test_compare_two_inspect_logs(two_logs, grid, tmp_path):
    out = tmp_path / "cmp"
    r = CliRunner().invoke(app, ["compare", *two_logs, "-n", "plain", "-n", "warm", "-o", str(out),
                                 "--quiet"])
    assert r.exit_code == 0, r.output
    assert "warm vs plain: 56 paired; nothing dropped" in r.output
    paired = pd.read_csv(out / "paired.csv")
    cells = paired[paired["level"] == "cell"]
    want = _independent(grid, lambda p: [(p.context, p.form)])
    assert len(cells) == len(want) == 28
    for row in cells.itertuples():
        b, c = want[(row.context, row.form)]
        assert (row.b, row.c) == (b, c)
        assert row.p_exact == pytest.approx(_exact_p(b, c), abs=1e-12)
    pooled = paired[(paired["context"] == "all") & (paired["form"] == "original")].iloc[0]
    b, c = _independent(grid, lambda p: ["x"] if p.form == "original" else [])["x"]
    assert (pooled.b, pooled.c, pooled.n_pairs) == (b, c, 18) and b + c > 0
    assert pooled.p_exact == pytest.approx(_exact_p(b, c), abs=1e-12)
    assert (out / "report.html").exists() and (out / "figures").is_dir()
    summary = json.loads((out / "stats.json").read_text())
    assert summary["source"]["kind"] == "compare" and summary["baseline"] == "plain"
    assert "pairing.csv" in (out / "report.html").read_text()


def _damaged_copy(src: str, dst, *, task: str | None = None, rename_all: bool = False):
    """The warm log with samples removed, errored, cancelled, unscored, partly scored, plus
    one the baseline lacks; optionally of another task or with every id changed."""
    from inspect_ai._util.error import EvalError

    log = read_eval_log(src)
    s = log.samples
    if rename_all:
        for x in s:
            x.id = f"other-{x.id}"
    else:
        del s[0:3]                                    # 3 not in the damaged log
        for x in s[0:2]:
            x.error = EvalError(message="RuntimeError: provider exploded", traceback="",
                                traceback_ansi="")
        s[2].error = EvalError(message="CancelledError: sample cancelled", traceback="",
                               traceback_ansi="")
        s[3].scores = None                            # missing score
        s[4].scores["warmbench_scorer"].value = "P"   # partial credit: not mapped by default
        extra = s[5].model_copy(update={"id": "only-here"})
        s.append(extra)                               # 1 not in the baseline's log
        log.status = "cancelled"
    if task:
        log.eval.task = task
    write_eval_log(log, str(dst))
    return dst


def test_compare_accounts_for_every_dropped_sample(two_logs, tmp_path):
    bad = _damaged_copy(two_logs[1], tmp_path / "damaged.json")
    out = tmp_path / "cmp"
    r = CliRunner().invoke(app, ["compare", two_logs[0], str(bad), "-n", "plain", "-n", "warm",
                                 "-o", str(out), "--quiet", "--no-report"])
    assert r.exit_code == 0, r.output
    pairing = pd.read_csv(out / "pairing.csv", keep_default_na=False)
    got = dict(zip(pairing["reason"], pairing["n"], strict=True))
    assert got == {"": 56 - 3 - 2 - 1 - 1 - 1, "not in warm's log": 3,
                   "errored: RuntimeError: provider exploded in warm": 2,
                   "cancelled in warm": 1, "missing score in warm": 1,
                   "score 'P' not mapped in warm": 1, "not in plain's log": 1}
    assert "warm vs plain: 48 paired; dropped:" in r.output and "status cancelled" in r.output
    paired = pd.read_csv(out / "paired.csv")
    assert paired.loc[paired["level"] == "cell", "n_pairs"].sum() == 48
    # --map P=1 pairs the partly scored sample; --strict refuses any drop
    r = CliRunner().invoke(app, ["compare", two_logs[0], str(bad), "--map", "P=1", "-o",
                                 str(tmp_path / "c2"), "-q", "--no-report"])
    assert r.exit_code == 0 and "49 paired" in r.output, r.output
    r = CliRunner().invoke(app, ["compare", two_logs[0], str(bad), "--strict", "-o",
                                 str(tmp_path / "c3")])
    assert r.exit_code != 0 and "--strict" in str(r.exception)


@pytest.mark.parametrize("kind", ["task", "ids"])
def test_compare_nothing_paired_is_one_line_error(two_logs, tmp_path, kind):
    import subprocess
    import sys

    other = _damaged_copy(two_logs[1], tmp_path / "other.json",
                          task="other_task" if kind == "task" else None, rename_all=True)
    p = subprocess.run([sys.executable, "-m", "warmbench", "compare", two_logs[0], str(other),
                        "-o", str(tmp_path / "c")], capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0, p.stderr
    assert "no samples paired" in p.stderr
    if kind == "ids":
        assert "56 not in mockllm/model #2's log; 56 not in mockllm/model #1's log" in p.stderr
    else:
        assert "56 task 'persona_reliability' not in mockllm/model #2's log" in p.stderr
        assert "different tasks" in p.stderr and "'other_task'" in p.stderr


def test_not_a_log_is_one_line_error(two_logs, tmp_path):
    import subprocess
    import sys

    for name, text in (("junk.json", "{\"hello\": 1}"), ("junk.eval", "not a zip"),
                       ("samples_x_2026-01-01T00-00-00.jsonl", "{\"a\": 1}\n"), ("x.txt", "")):
        f = tmp_path / name
        f.write_text(text)
        p = subprocess.run([sys.executable, "-m", "warmbench", "compare", two_logs[0], str(f),
                            "-o", str(tmp_path / "c")], capture_output=True, text=True)
        assert p.returncode == 2 and p.stderr.strip().count("\n") == 0, p.stderr
        assert f"{f}: not an Inspect eval log" in p.stderr


# -- lm-eval ---------------------------------------------------------------------------------
def _lm_eval_samples(path, outcomes: dict[int, float | None], filters=("none",)):
    """A samples file in the layout `lm_eval --log_samples` writes (evaluator.py and
    EvaluationTracker.save_results_samples of lm-eval 0.4): one JSON object per doc and filter."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for flt in filters:
            for doc_id, acc in outcomes.items():
                doc = {"question": f"Question {doc_id}?", "choices": ["a", "b"], "answer": 0}
                row = {"doc_id": doc_id, "doc": doc, "target": "0",
                       "arguments": {"gen_args_0": {"arg_0": f"Question {doc_id}?\nAnswer:",
                                                    "arg_1": " a"},
                                     "gen_args_1": {"arg_0": f"Question {doc_id}?\nAnswer:",
                                                    "arg_1": " b"}},
                       "resps": [[["-1.5", "False"]], [["-2.0", "False"]]],
                       "filtered_resps": [["-1.5", "False"], ["-2.0", "False"]],
                       "filter": flt, "metrics": ["acc", "acc_norm"],
                       "doc_hash": f"{doc_id:064x}", "prompt_hash": "0" * 64, "target_hash": "1" * 64,
                       "acc_norm": 1.0}
                if acc is not None:
                    row["acc"] = acc
                f.write(json.dumps(row) + "\n")
    return path


def test_compare_lm_eval_samples(tmp_path):
    n = 40
    base = {i: float(zlib.crc32(f"b{i}".encode()) % 10 < 7) for i in range(n)}
    arm = {i: float(zlib.crc32(f"a{i}".encode()) % 10 < 4) for i in range(n)}
    arm[7] = None                                       # the arm's sample has no acc
    del arm[8]                                          # the arm lacks doc 8
    name = "samples_arc_easy_2026-12-03T10-00-00.123456.jsonl"
    fa = _lm_eval_samples(tmp_path / "out" / "model-base" / name, base)
    fb = _lm_eval_samples(tmp_path / "out" / "model-warm" / name, arm)
    out = tmp_path / "cmp"
    r = CliRunner().invoke(app, ["compare", str(fa), str(fb), "--metric", "acc", "-o", str(out),
                                 "-q"])
    assert r.exit_code == 0, r.output
    assert "model-warm vs model-base: 38 paired; dropped: 1 missing score in model-warm; " \
           "1 not in model-warm's log" in r.output
    keys = [i for i in range(n) if arm.get(i) is not None]
    b = sum(base[i] == 1 and arm[i] == 0 for i in keys)
    c = sum(base[i] == 0 and arm[i] == 1 for i in keys)
    row = pd.read_csv(out / "paired.csv").iloc[0]
    assert (row.dataset, row.n_pairs, row.b, row.c) == ("arc_easy", 38, b, c) and b + c > 0
    assert row.p_exact == pytest.approx(_exact_p(b, c), abs=1e-12)
    # the metric is a flag: acc_norm is 1 everywhere, so nothing is discordant
    r = CliRunner().invoke(app, ["compare", str(fa), str(fb), "--metric", "acc_norm", "-o",
                                 str(tmp_path / "c2"), "-q", "--no-report"])
    assert r.exit_code == 0, r.output
    assert pd.read_csv(tmp_path / "c2" / "paired.csv").iloc[0][["b", "c"]].tolist() == [0, 0]


def test_lm_eval_filters_and_metrics_must_be_chosen(tmp_path):
    name = "samples_arc_easy_2026-12-03T10-00-00.123456.jsonl"
    fa = _lm_eval_samples(tmp_path / "a" / name, {0: 1.0, 1: 0.0}, filters=("none", "strict"))
    fb = _lm_eval_samples(tmp_path / "b" / name, {0: 0.0, 1: 1.0}, filters=("none", "strict"))
    r = CliRunner().invoke(app, ["compare", str(fa), str(fb), "-o", str(tmp_path / "c")])
    assert r.exit_code != 0 and "choose a filter with --filter" in str(r.exception)
    r = CliRunner().invoke(app, ["compare", str(fa), str(fb), "--filter", "strict", "--metric",
                                 "bleu", "-o", str(tmp_path / "c")])
    assert r.exit_code != 0 and "no metric 'bleu'" in str(r.exception)
    r = CliRunner().invoke(app, ["compare", str(fa), str(fb), "--filter", "strict", "-o",
                                 str(tmp_path / "c"), "-q", "--no-report"])
    assert r.exit_code == 0 and "b vs a: 2 paired; nothing dropped" in r.output, r.output


def test_compare_samples_written_by_lm_eval(tmp_path, monkeypatch):
    """lm-eval itself runs a local multiple-choice task for two rule-based models and writes its
    --log_samples files; compare's b, c and p equal the count made from the rule."""
    pytest.importorskip("lm_eval")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    from lm_eval import simple_evaluate
    from lm_eval.api.model import LM
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    n = 30
    with (tmp_path / "data.jsonl").open("w") as f:
        for i in range(n):
            f.write(json.dumps({"question": f"Is {i} even?", "choices": ["yes", "no"],
                                "label": i % 2}) + "\n")
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "wb_even.yaml").write_text(
        "task: wb_even\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    test: {tmp_path / 'data.jsonl'}\ntest_split: test\noutput_type: multiple_choice\n"
        "doc_to_text: \"{{question}}\\nAnswer:\"\ndoc_to_choice: \"{{choices}}\"\n"
        "doc_to_target: label\nmetric_list:\n  - metric: acc\n"
        "    aggregation: mean\n    higher_is_better: true\n")

    def right(salt: str, i: int) -> bool:
        return zlib.crc32(f"{salt}{i}".encode()) % 10 < (7 if salt == "base" else 4)

    class RuleLM(LM):
        """Puts the higher log-likelihood on the right choice exactly when ``right`` says so."""

        def __init__(self, salt: str):
            super().__init__()
            self.salt = salt

        def loglikelihood(self, requests):
            out = []
            for r in requests:
                ctx, cont = r.args
                i = int(ctx.split()[1])
                truth = " yes" if i % 2 == 0 else " no"
                out.append((0.0 if (cont == truth) == right(self.salt, i) else -1.0, False))
            return out

        def loglikelihood_rolling(self, requests):
            raise NotImplementedError

        def generate_until(self, requests):
            raise NotImplementedError

    tm = TaskManager(include_path=str(tmp_path / "tasks"), include_defaults=False)
    files = []
    for salt in ("base", "warm"):
        tracker = EvaluationTracker(output_path=str(tmp_path / "lm_out"))
        res = simple_evaluate(model=RuleLM(salt), tasks=["wb_even"], task_manager=tm,
                              log_samples=True, evaluation_tracker=tracker)
        tracker.general_config_tracker.model_name_sanitized = f"rule-{salt}"
        tracker.save_results_aggregated(results=res, samples=res["samples"])
        tracker.save_results_samples(task_name="wb_even", samples=res["samples"]["wb_even"])
        [f] = (tmp_path / "lm_out" / f"rule-{salt}").glob("samples_wb_even_*.jsonl")
        files.append(f)
    out = tmp_path / "cmp"
    r = CliRunner().invoke(app, ["compare", *map(str, files), "--metric", "acc", "-o", str(out),
                                 "-q", "--no-report"])
    assert r.exit_code == 0, r.output
    assert f"rule-warm vs rule-base: {n} paired; nothing dropped" in r.output
    b = sum(right("base", i) and not right("warm", i) for i in range(n))
    c = sum(right("warm", i) and not right("base", i) for i in range(n))
    row = pd.read_csv(out / "paired.csv").iloc[0]
    assert (row.dataset, row.n_pairs, row.b, row.c) == ("wb_even", n, b, c) and b + c > 0
    assert row.p_exact == pytest.approx(_exact_p(b, c), abs=1e-12)


def test_task_scored_by_warmbench_judge_on_an_inspect_model(grid, tmp_path):
    """judge=: warmbench's judge prompt on the model bound to the `judge` role; a reply without
    a verdict line is asked once more; the refusal rule still applies after the verdict."""
    calls: list[int] = []

    def answer(messages, tools, tool_choice, config):
        p, item = grid[messages[-1].text]
        text = {"stake:high": "I'm sorry, but I can't help with that.",
                "emotion:sad": f"{item.correct_answers[0]}, sadly."}.get(
            p.context, item.correct_answers[0])
        out = ModelOutput.from_content(model="mockllm", content=text)
        out.usage = ModelUsage(input_tokens=20, output_tokens=5, total_tokens=25)
        return out

    def verdict(messages, tools, tool_choice, config):
        calls.append(len(messages))
        shown = messages[1].text
        if "sadly" in shown and len(messages) == 2:
            text = "I cannot decide."                       # no verdict line: asked again
        else:
            text = "Reasoning.\nVERDICT: CORRECT"
        out = ModelOutput.from_content(model="mockllm", content=text)
        out.usage = ModelUsage(input_tokens=50, output_tokens=5, total_tokens=55)
        return out

    log = inspect_eval(persona_reliability(dataset="triviaqa", limit=1, forms="original",
                                           judge="openai/gpt-4o"),
                       model=get_model("mockllm/model", custom_outputs=answer),
                       model_roles={"judge": get_model("mockllm/model", custom_outputs=verdict)},
                       display="none", log_dir=str(tmp_path))[0]
    assert log.status == "success" and len(log.samples) == 9
    assert sorted(calls) == [2] * 9 + [4]             # 9 judged, one asked twice
    for s in log.samples:
        sc = s.scores["warmbench_judge"]
        assert sc.metadata["scorer"].startswith("judge:inspect:mockllm/model@answer.v")
        if s.metadata["context"] == "stake:high":      # judged, then excluded as a refusal
            assert sc.value == "N" and sc.metadata["refused"]
        else:
            assert sc.value == "C" and sc.metadata["label"] == "CORRECT"


def test_task_takes_a_warmbench_config(tmp_path):
    """-T config=FILE: the config's eval section (sets, seed, forms) builds the same prompts as
    `warmbench eval` would; task arguments override it."""
    from warmbench.config import load_config
    from warmbench.eval.run import plan_eval

    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({"seed": 7, "eval": {
        "datasets": [{"name": "triviaqa", "sample": True, "n": 3}], "forms": ["original"],
        "free_text": {"temperature": 0.3, "max_tokens": 64}}}))
    task = persona_reliability(dataset="triviaqa", config=str(cfg))
    want = plan_eval(load_config(cfg)).datasets[0].prompts
    assert [s.id for s in task.dataset] == [p.key for p in want] and len(want) == 3 * 9
    assert (task.config.temperature, task.config.max_tokens) == (0.3, 64)
    assert len(persona_reliability(dataset="triviaqa", config=str(cfg), forms="original,correct",
                                   limit=1).dataset) == 18

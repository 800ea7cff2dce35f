"""``warmbench judge``: score a run's answers; ``judge agree`` and ``judge sheet`` validate the judge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from .. import quiet as verbosity
from ..errors import WarmbenchError
from ..layout import SHEET_CSV, SHEET_HTML, RunLayout
from ._args import RUN_HELP, pick_out, pick_run, require_run, run_alias, run_argument


class _DefaultScoreGroup(TyperGroup):
    """``warmbench judge RUN ...`` means ``warmbench judge score RUN ...``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["score", *args]
        return super().parse_args(ctx, args)


def _run_dir(run: Path | None, alias: Path | None = None) -> Path:
    run_dir = require_run(pick_run(run, alias))
    if not RunLayout(run_dir).store.is_file():
        raise WarmbenchError(f"not a run directory (no store.sqlite): {run_dir}")
    return run_dir


def _config(run_dir: Path, config: Path | None, judge_overrides: dict[str, Any]):
    """The run's config (--config FILE, else RUN/manifest.json's, else defaults) with the
    command line's judge options."""
    from ..manifest import load_run_config

    cfg = load_run_config(run_dir, config)
    return cfg.with_overrides({f"judge.{k}": v for k, v in judge_overrides.items() if v is not None},
                              source=str(config or RunLayout(run_dir).manifest))


def _answers_and_verdicts(run_dir: Path):
    from ..scoring.run import load_run, load_verdicts
    from ..store import RunStore

    store = RunStore(run_dir)
    answers, items, prompts = load_run(store)
    if not answers:
        store.close()
        raise WarmbenchError(f"{run_dir}: no answers in the store (run `warmbench eval` first)")
    return store, answers, items, prompts, load_verdicts(store, answers)


def register(app: typer.Typer) -> None:
    judge_app = typer.Typer(cls=_DefaultScoreGroup, no_args_is_help=True,
                            help="Score a run's answers (LLM judge or offline reference scorers) and "
                                 "validate the judge. `warmbench judge RUN` = `warmbench judge score RUN`.")

    @judge_app.command("score")
    def score(
        run: Path = run_argument(RUN_HELP),
        model: str = typer.Option(None, "--model", help="Judge backend spec, e.g. openai:gpt-4o-2024-08-06 "
                                  "(default: the run's config; none = offline reference scorers)."),
        reference: bool = typer.Option(False, "--reference", help="Use the offline reference scorers even "
                                       "if the config names a judge model."),
        refusal: str = typer.Option(None, "--refusal", help="Refusal detector: corrected (default) or compat "
                                    "(the study's published phrase list)."),
        exclusion: str = typer.Option(None, "--exclusion", help="Refusal exclusion: pairwise (default) or per_arm."),
        max_tokens: int = typer.Option(None, "--max-tokens", help="Judge reply budget (default: judge.max_tokens, 512)."),
        constrained: bool = typer.Option(None, "--constrained/--free", help="Local judges (hf): take the "
                                         "likeliest allowed verdict line instead of generating freely "
                                         "(default: judge.constrained, off)."),
        config: Path = typer.Option(None, "--config", help="Config file to use instead of RUN/manifest.json."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="Same as the global --quiet: no "
                                   "progress or tables, only the summary lines."),
        run_alias_: Path = run_alias("--run-dir"),
    ) -> None:
        """Re-score a run's stored answers without regenerating them; write RUN/judge/scored.parquet,
        RUN/judge/refusals.csv and print refusal rates per arm and dataset."""
        from ..progress import Progress
        from ..runlock import run_lock
        from ..scoring.run import run_judge
        from ..store import RunStore

        if quiet:
            verbosity.set_verbosity(verbosity.QUIET)
        run_dir = _run_dir(run, run_alias_)
        overrides: dict[str, Any] = {"model": model, "refusal": refusal, "exclusion": exclusion,
                                     "max_tokens": max_tokens, "constrained": constrained}
        cfg = _config(run_dir, config, overrides)
        if reference:
            cfg = cfg.with_overrides({"judge.model": None}, source="--reference")
        with run_lock(run_dir), RunStore(run_dir) as store, Progress() as progress:
            summary = run_judge(cfg, store, progress)
        import pandas as pd

        layout = RunLayout(run_dir)
        rates = pd.read_csv(layout.refusals)
        typer.echo(f"scored {summary['answers']} answers with {', '.join(summary['scorers']) or 'nothing'}; "
                   f"labels {summary['labels']}; excluded {summary['excluded']} "
                   f"(refusal {summary['refusal']}, exclusion {summary['exclusion']})")
        if summary.get("judge_failures"):
            typer.echo(f"{summary['judge_failures']} judge requests failed: run again to retry them")
        if len(rates):  # run_judge has logged the table; say where it is kept
            typer.echo(f"refusal rates per arm and dataset: {layout.refusals}")
        typer.echo(str(layout.scored))
        if summary.get("judge_failures"):
            raise typer.Exit(1)   # failed requests are not verdicts: say so in the exit status

    @judge_app.command("agree")
    def agree(
        run: Path = run_argument(RUN_HELP),
        a: str = typer.Option(None, "--a", help="First scorer: full name or prefix (reference, judge, "
                              "judge:openai:gpt-4o-2024-08-06). Default with --human: the run's judge, "
                              "else reference."),
        b: str = typer.Option(None, "--b", help="Second scorer (name or prefix)."),
        human: Path = typer.Option(None, "--human", help="Human-labelled CSV (answer_key,label), e.g. a "
                                   "filled `judge sheet`; compared with --a."),
        output: Path = typer.Option(None, "--output", "-o", help="Also write the result as JSON here."),
        run_alias_: Path = run_alias("--run-dir"),
    ) -> None:
        """Agreement and Cohen's kappa between two scorers, or between a scorer and human labels."""
        from ..scoring.agreement import (
            compare_human,
            compare_scorers,
            format_result,
            read_human_labels,
        )

        run_dir = _run_dir(run, run_alias_)
        if (b is None) == (human is None):
            raise WarmbenchError("give exactly one of --b SCORER or --human FILE.csv")
        store, answers, _items, _prompts, verdicts = _answers_and_verdicts(run_dir)
        store.close()
        if human is not None:
            scorer = a or ("judge" if any(s.startswith("judge:") for v in verdicts.values() for s in v)
                           else "reference")
            result = compare_human(answers, verdicts, read_human_labels(human), scorer)
        else:
            if a is None:
                raise WarmbenchError("--a SCORER is required with --b")
            result = compare_scorers(answers, verdicts, a, b)
        typer.echo(format_result(result))
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(json.dumps(result.as_dict(), indent=2, default=str), encoding="utf-8")

    @judge_app.command("sheet")
    def sheet(
        run: Path = run_argument(RUN_HELP),
        n: int = typer.Option(470, "--n", help="Answers to sample, stratified by dataset × arm (study: 470)."),
        seed: int = typer.Option(0, "--seed", help="Sampling seed."),
        out_dir: Path = typer.Option(None, "--out-dir", help="Output folder (default RUN/judge)."),
        out_old: Path = typer.Option(None, "--out", hidden=True, help="Same as --out-dir (older spelling)."),
        run_alias_: Path = run_alias("--run-dir"),
    ) -> None:
        """Export a stratified sample of answers to label by hand: sheet.csv and a self-contained
        sheet.html form (scorer verdicts hidden, all text escaped)."""
        from ..scoring.sheet import sheet_rows, stratified_sample, write_csv, write_html

        run_dir = _run_dir(run, run_alias_)
        out = pick_out(out_dir, out_old)
        store, answers, items, prompts, _ = _answers_and_verdicts(run_dir)
        store.close()
        rows = sheet_rows(stratified_sample(answers, n, seed), items, prompts)
        folder = out or RunLayout(run_dir).judge
        c = write_csv(rows, folder / SHEET_CSV)
        h = write_html(rows, folder / SHEET_HTML)
        typer.echo(f"{len(rows)} answers to label:\n{c}\n{h}")

    app.add_typer(judge_app, name="judge")

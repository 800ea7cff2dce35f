"""``warmbench warmth``: SocioT warmth scores, the checkpoint trajectory, metric validation."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import WarmbenchError
from ..layout import RunLayout
from ._args import pick_run, require_run, run_alias, run_argument

warmth_app = typer.Typer(no_args_is_help=True, help=(
    "SocioT warmth (Cheng, Yu & Jurafsky 2025): score texts, trace checkpoints, validate the "
    "metric. Every output names the model that produced the score."))

MODEL_HELP = ("Metric model: 'auto' (gpt2 if in the local HF cache, else the offline stand-in "
              "gemma3-270m), 'gpt2', an embedded name, a hub id or a folder. Any model that is "
              "not GPT-2 is labelled '(stand-in for gpt2)' in every output.")
METHOD_HELP = ("'exact' (deterministic log-probability of the text's own tokens) or 'compat' "
               "(the published code's padded, dropout-on, 100-pass value).")


def _print_table(df, title: str) -> None:
    from rich.table import Table

    from .. import term

    t = Table(*[str(c) for c in df.columns], title=title)
    for r in df.itertuples(index=False):
        t.add_row(*[f"{v:.5f}" if isinstance(v, float) else str(v) for v in r])
    term.console(result=True).print(t)


def _write(df, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    elif path.suffix in (".jsonl", ".ndjson"):
        df.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        df.to_csv(path, index=False)


@warmth_app.command("score")
def score(
    run_pos: Path = run_argument("Score this run's eval answers (scores cached in its store); "
                                 "or give --input FILE."),
    input: Path = typer.Option(None, "--input", "-i", help="Texts to score: .jsonl, .csv or .parquet."),
    column: str = typer.Option("text", "--column", "-c", help="Column holding the text."),
    run_old: Path = run_alias("--run"),
    cache: Path = typer.Option(None, "--cache", help="With --input: cache scores in a store in this folder, so "
                               "an interrupted run resumes and a rerun scores only new texts."),
    by: list[str] = typer.Option(None, "--by", help="Group the summary by these columns (default: arm for a RUN)."),
    model: str = typer.Option("auto", "--model", "-m", help=MODEL_HELP),
    method: str = typer.Option("exact", "--method", help=METHOD_HELP),
    repeats: int = typer.Option(100, "--repeats", help="compat: dropout passes per set (study: 100)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap and of compat's dropout."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples for the CIs."),
    output: Path = typer.Option(None, "--output", "-o", help="Write per-text scores (.csv, .jsonl or .parquet)."),
    summary_out: Path = typer.Option(None, "--summary", help="Write the summary table (.csv)."),
    show: bool = typer.Option(None, "--progress/--no-progress", help="Show progress bars (default: on a terminal)."),
) -> None:
    """Score texts: per-text warm − cold (nats/token) and group means with bootstrap CIs."""
    from ..progress import Progress
    from ..warmth.texts import read_texts, run_answers, score_table

    if method not in ("exact", "compat"):
        raise WarmbenchError(f"--method {method!r}: expected exact or compat")
    run = pick_run(run_pos, run_old, required=False)
    if (input is None) == (run is None):
        raise WarmbenchError("give exactly one of --input FILE or RUN")
    if cache is not None and run is not None:
        raise WarmbenchError("--cache is for --input; RUN caches in the run's own store")
    if run is not None:
        require_run(run)
        df, column = run_answers(run), "text"
        by = by or [c for c in ("arm",) if c in df.columns]
    else:
        df, by = read_texts(input, column), by or []
    with Progress(show) as progress:
        out, summary, metric = score_table(df, column, model, method, by=by, repeats=repeats,
                                           seed=seed, bootstrap=bootstrap,
                                           store_dir=run if run is not None else cache,
                                           progress=progress)
    _print_table(summary, f"SocioT warmth · {method} · scored by {metric.label}")
    if output:
        _write(out, output)
    if summary_out:
        _write(summary, summary_out)


@warmth_app.command("trajectory")
def trajectory(
    config: Path = typer.Argument(..., help="Experiment config (YAML)."),
    run_dir: Path = typer.Option(None, "--run-dir", help="Override the config's run_dir."),
    persona: list[str] = typer.Option(None, "--persona", "-p", help="Only these personas (default: all trained)."),
    show: bool = typer.Option(None, "--progress/--no-progress", help="Show progress bars (default: on a terminal)."),
) -> None:
    """Answer the validation prompts with every checkpoint (and the original model as epoch 0),
    score the answers, write RUN/warmth/trajectory.csv|png|svg and choose a checkpoint per
    persona (config warmth.selection) into RUN/warmth/selected.json and the run store."""
    from ..config import load_config
    from ..progress import Progress
    from ..store import RunStore
    from ..warmth.trajectory import run_trajectory

    cfg = load_config(config, {"run_dir": str(run_dir)} if run_dir else None)
    if persona:
        cfg = cfg.with_overrides({"warmth.personas": list(persona)}, str(config))
    with Progress(show) as progress:
        summary = run_trajectory(cfg, RunStore(cfg.run_dir), progress=progress)
    import pandas as pd

    table = pd.read_csv(RunLayout(cfg.run_dir).trajectory_csv)
    _print_table(table.drop(columns=["metric_model"]),
                 f"warmth per checkpoint · scored by {summary['metric_model']}")
    for p, c in summary["selected"].items():
        typer.echo(f"{p}: epoch {c['epoch']:g} -> {c['path']}" + (f"  ({c['note']})" if c["note"] else ""))


@warmth_app.command("validate")
def validate(
    published: Path = typer.Option(..., "--published", help="The released sample_data folder (<model>/{original,warm}/*.csv)."),
    model: list[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP + " Repeatable."),
    method: str = typer.Option("exact", "--method", help=METHOD_HELP),
    repeats: int = typer.Option(100, "--repeats", help="compat: dropout passes per set."),
    max_pairs: int = typer.Option(None, "--max-pairs", help="Score a seeded random subset of this many pairs."),
    output: Path = typer.Option(None, "--output", "-o", help="Write the per-pair scores (.csv/.jsonl/.parquet)."),
    summary_out: Path = typer.Option(None, "--summary", help="Write the summary table (.csv)."),
    show: bool = typer.Option(None, "--progress/--no-progress", help="Show progress bars (default: on a terminal)."),
) -> None:
    """Share of released (original, warm) answer pairs the metric ranks warm-model answer
    warmer, per metric model (the study's human raters agreed with SocioT on 69.4%)."""
    from ..progress import Progress
    from ..warmth.validate import validate_published

    if method not in ("exact", "compat"):
        raise WarmbenchError(f"--method {method!r}: expected exact or compat")
    with Progress(show) as progress:
        summary, detail = validate_published(published, model or ["auto"], method,
                                             repeats=repeats, max_pairs=max_pairs,
                                             progress=progress)
    _print_table(summary.drop(columns=["human_agreement_reference"]),
                 "warm answer ranked warmer (human raters vs SocioT in the study: 69.4%)")
    if output:
        _write(detail, output)
    if summary_out:
        _write(summary, summary_out)


def register(app: typer.Typer) -> None:
    app.add_typer(warmth_app, name="warmth")

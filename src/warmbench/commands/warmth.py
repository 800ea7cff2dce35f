"""``warmbench warmth``: SocioT warmth scores, the checkpoint trajectory, metric validation."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import InputError, WarmbenchError
from ..jsonl import read_jsonl
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


def read_texts(path: Path, column: str):
    """A table of texts from JSONL, CSV or parquet; one-line errors name file, row and field."""
    import pandas as pd

    if not path.exists():
        raise WarmbenchError(f"input file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        rows = []
        for i, row in read_jsonl(path):
            if not isinstance(row.get(column), str):
                raise InputError(path, f"line {i}", column, "missing or not a string")
            rows.append(row)
        df = pd.DataFrame(rows)
    elif suffix in (".csv", ".tsv"):
        df = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    elif suffix == ".parquet":
        df = pd.read_parquet(path)
    else:
        raise WarmbenchError(f"{path}: unsupported input type {suffix!r} (use .jsonl, .csv or .parquet)")
    if column not in df.columns:
        raise InputError(path, "header", column, f"column missing (columns: {', '.join(map(str, df.columns))})")
    bad = df[column].map(lambda v: not isinstance(v, str))
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        where = f"line {row + 1}" if suffix in (".jsonl", ".ndjson") else f"row {row + 2}"
        raise InputError(path, where, column, "missing or not text")
    if df.empty:
        raise WarmbenchError(f"{path}: no rows")
    return df


def _run_answers(run_dir: Path):
    import pandas as pd

    from ..layout import KIND_ANSWER
    from ..store import RunStore

    if not RunLayout(run_dir).store.exists():
        raise WarmbenchError(f"no run store at {RunLayout(run_dir).store}")
    rows = list(RunStore(run_dir).iter(KIND_ANSWER))
    if not rows:
        raise WarmbenchError(f"{run_dir}: the run holds no answers yet (run `warmbench eval`)")
    return pd.DataFrame(rows)


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
    from ..warmth.metric_model import load_metric_model, resolve_metric_model
    from ..warmth.sociot import score_texts
    from ..warmth.summary import summarise

    if method not in ("exact", "compat"):
        raise WarmbenchError(f"--method {method!r}: expected exact or compat")
    run = pick_run(run_pos, run_old, required=False)
    if (input is None) == (run is None):
        raise WarmbenchError("give exactly one of --input FILE or RUN")
    if cache is not None and run is not None:
        raise WarmbenchError("--cache is for --input; RUN caches in the run's own store")
    if run is not None:
        require_run(run)
    metric = resolve_metric_model(model)
    if run is not None:
        df, column = _run_answers(run), "text"
        by = by or [c for c in ("arm",) if c in df.columns]
    else:
        df, by = read_texts(input, column), by or []
    store_dir = run if run is not None else cache
    with Progress(show) as progress:
        if store_dir is not None:  # scores cached in a store: resumable, new texts only
            from ..store import RunStore
            from ..warmth.trajectory import cached_scores

            sc = cached_scores(RunStore(store_dir), df[column].tolist(), metric, method,
                               repeats=repeats, seed=seed, progress=progress)
        else:
            lm = load_metric_model(metric)
            s = score_texts(lm, df[column].tolist(), method, repeats=repeats, seed=seed,
                            progress=progress)
            import pandas as pd

            sc = pd.DataFrame({"score": s.score, "se": s.se, "n_tokens": s.n_tokens})
    for c in by:
        if c not in df.columns:
            raise WarmbenchError(f"--by {c!r}: no such column (columns: {', '.join(map(str, df.columns))})")
    out = df.reset_index(drop=True).drop(columns=[c for c in ("score", "se", "n_tokens")
                                                  if c in df.columns])
    for c in ("score", "se", "n_tokens"):
        out[c] = sc[c].to_numpy()
    out["metric_model"], out["method"] = metric.label, method
    summary = summarise(out, by, n_boot=bootstrap, seed=seed)
    summary["metric_model"], summary["method"] = metric.label, method
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
    with Progress(show) as progress:
        summary = run_trajectory(cfg, RunStore(cfg.run_dir), progress=progress,
                                 personas=persona or None)
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

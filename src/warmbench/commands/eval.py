"""``warmbench eval``: every arm answers every item in every prompt form."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from .. import term


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_cmd(
        config: Path = typer.Argument(..., help="Experiment config (YAML)."),
        limit: int | None = typer.Option(None, "--limit", min=1,
                                         help="Only the first N sampled items per dataset (quick look)."),
        run_dir: Path | None = typer.Option(None, "--run-dir", help="Run directory (default: the config's run_dir)."),
        progress: bool | None = typer.Option(None, "--progress/--no-progress",
                                             help="Progress bars (default: on a terminal)."),
    ) -> None:
        """Generate answers from every arm for every item x prompt form (resumable).

        Items are loaded and sampled with the config's seed.

        Gridded sets (TriviaQA, TruthfulQA, MedQA, disinformation, your own kind: gridded): the
        study's 28 forms. Multiple choice, numeric and open sets (MMLU, GSM8K, AdvBench): once.
        See `warmbench conditions datasets` for every set the config can name.

        Answers are committed as they arrive: run the same command again to resume.

        Writes RUN/eval/{items,prompts,answers}.parquet.
        """
        from ..config import load_config
        from ..errors import WarmbenchError
        from ..eval.run import run_eval
        from ..progress import Progress
        from ..runlock import run_lock
        from ..store import RunStore

        overrides = {"run_dir": str(run_dir)} if run_dir else None
        cfg = load_config(config, overrides)
        if limit is not None:
            cfg = cfg.with_overrides({"eval.limit": limit}, str(config))
        if not cfg.arms:   # before the run directory is created
            raise WarmbenchError(f"{config}: no arms configured: add e.g. arms: "
                                 "[{name: original, model: hf:smollm2-135m}]")
        with run_lock(cfg.run_dir), RunStore(cfg.run_dir) as store, Progress(progress) as prog:
            summary = run_eval(cfg, store, prog)
        print_summary(summary)
        if summary.get("failed_total"):
            raise typer.Exit(1)   # failed requests are not answers: say so in the exit status


def print_summary(summary: dict) -> None:
    """Arm x dataset answer counts, then the exported files."""
    console = term.console()
    datasets = list(summary["items"])
    table = Table(title="answers per arm and dataset")
    table.add_column("arm")
    for d in datasets:
        table.add_column(d, justify="right")
    table.add_column("failed", justify="right")
    table.add_row("[dim](items)[/]", *[f"[dim]{summary['items'][d]}[/]" for d in datasets], "")
    for arm, row in summary["table"].items():
        table.add_row(arm, *[str(row.get(d, 0)) for d in datasets],
                      str(summary["failed"].get(arm, 0)))
    for arm, n in summary["failed"].items():
        if arm not in summary["table"]:
            table.add_row(arm, *["0"] * len(datasets), str(n))
    console.print(table)
    console.print(f"{summary['prompts']} prompts, {summary['answers']} answers")
    for name, path in summary["exports"].items():
        console.print(f"  {name}: {path}", soft_wrap=True)
    if sum(summary["failed"].values()):
        console.print("[yellow]some generations failed: run the same command again to retry them[/]")

"""``warmbench run``: the whole study from one config."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from .. import term
from ..config import load_config
from ..config_checks import check_config
from ..layout import RunLayout
from ..pipeline import STAGE_NAMES, only_bases, run_pipeline, stage_status


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        config: Path = typer.Argument(..., help="Experiment config (YAML), e.g. examples/quickstart.yaml."),
        start: str = typer.Option(None, "--from", help=f"First stage to run ({', '.join(STAGE_NAMES)})."),
        stop: str = typer.Option(None, "--to", help="Last stage to run."),
        run_dir: Path = typer.Option(None, "--run-dir", help="Override the config's run_dir."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the stage plan with request, token and cost estimates; run nothing."),
        force: bool = typer.Option(False, "--force", help="Call every chosen stage even if marked done (each still skips work its store holds)."),
        status: bool = typer.Option(False, "--status", help="Show what the run directory says about each stage, then exit."),
        base: list[str] = typer.Option(None, "--base", help="With base_models: run only these base models (name or its last path part); repeatable."),
        max_usd: float = typer.Option(None, "--max-usd", min=0.0, help="Stop sending API requests before the recorded spend plus the worst case in flight would pass this many USD (default: the config's budget_usd)."),
    ) -> None:
        """Run curate → rewrite → train → warmth → eval → judge → stats → report.

        Every stage skips finished work: a killed or failed run, started again, resumes where it
        stopped. Stages that only serve fine-tuned personas are skipped when no arm names a persona.
        """
        console = term.console(stderr=True)
        overrides = {"run_dir": str(run_dir)} if run_dir else None
        cfg = load_config(config, overrides)
        if base:
            cfg = only_bases(cfg, base)
        if status:
            _print_status(cfg)
            return
        check_config(cfg, start, stop)  # a typo fails here, not after hours of earlier stages
        budget = max_usd if max_usd is not None else cfg.budget_usd
        if dry_run:
            _print_plan(cfg, start, stop, budget)
            return
        if max_usd is not None:
            cfg = cfg.model_copy(update={"budget_usd": max_usd})
        results = run_pipeline(cfg, start=start, stop=stop, force=force)
        console.print("[bold green]done.[/] " + ", ".join(results))
        report = RunLayout(cfg.run_dir).report
        if report.exists():
            term.console(stderr=True, result=True).print(f"report: [bold]{escape(str(report))}[/]")
        # Only when this run covered stats: an older stats.json may predate a `--to eval` run.
        if "stats" not in results:
            return
        from ..stats.run import headline

        for k, v in headline(Path(cfg.run_dir)).items():
            console.print(escape(f"  {k}: {v}"))


def _print_status(cfg) -> None:
    """What the run directory says about each stage; a stage this config never runs (the
    persona stages without a persona arm) is 'skipped', not 'pending'. Reads only: a run
    directory that does not exist is reported, not created."""
    from ..pipeline import select_stages

    run_dir = Path(cfg.run_dir)
    store = RunLayout(run_dir).store
    if not store.is_file():
        typer.echo(f"{run_dir}: not started yet (no {store.name}); every stage is pending")
    chosen = {s.name for s in select_stages(cfg, None, None)}
    marks = stage_status(run_dir) if store.is_file() else {}
    t = Table("stage", "status", "seconds", "note")
    for name in STAGE_NAMES:
        st = marks.get(name, {"status": "pending"})
        if name not in chosen:
            t.add_row(name, "skipped", "", "no arm names a persona")
            continue
        t.add_row(name, st.get("status", ""), str(st.get("seconds", "")),
                  (st.get("error") or "")[:80])
    term.console(result=True).print(t)


def _print_plan(cfg, start, stop, budget=None) -> None:
    from ..plan_view import print_plan

    print_plan(cfg, start, stop, budget, console=term.console(result=True))

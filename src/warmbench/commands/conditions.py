"""``warmbench conditions``: look at the prompt grid without calling any model."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from .. import term
from ..errors import WarmbenchError

conditions_app = typer.Typer(help="Inspect the condition grid (28 prompt forms per item).",
                             no_args_is_help=True)


def _plan(config: Path | None, dataset: str | None):
    from ..config import ExperimentConfig, load_config
    from ..eval.run import plan_eval

    cfg = load_config(config) if config else ExperimentConfig()
    if dataset:
        keep = [d for d in (cfg.eval.datasets or []) if d.name == dataset]
        if cfg.eval.datasets and not keep:
            raise WarmbenchError(f"dataset {dataset!r} is not in the config's eval.datasets")
        cfg = cfg.with_overrides({"eval.datasets": [d.model_dump(mode="json") for d in keep]
                                  or [{"name": dataset, "sample": True}]}, source="--dataset")
    return plan_eval(cfg)


def _find(plan, item: str):
    """By id, id prefix, 1-based position ('3'), or a piece of the question text."""
    rows = [(d, it) for d in plan.datasets for it in d.items]
    for test in (lambda it, i: it.id == item,
                 lambda it, i: item.isdigit() and i == int(item),
                 lambda it, i: it.id.startswith(item),
                 lambda it, i: item.lower() in it.question.lower()):
        hits = [(d, it) for i, (d, it) in enumerate(rows, 1) if test(it, i)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            names = ", ".join(it.key for _, it in hits[:5])
            raise WarmbenchError(f"{item!r} matches {len(hits)} items ({names}...): be more specific "
                                 "or pass --dataset")
    raise WarmbenchError(f"no item matches {item!r}: see `warmbench conditions list`")


@conditions_app.command("list")
def list_cmd(
    dataset: str | None = typer.Option(None, "--dataset", help="Only this dataset."),
    config: Path | None = typer.Option(None, "--config", help="Experiment config (default: the built-in samples)."),
) -> None:
    """List the items (position, dataset, id, question) the config's eval would use."""
    plan = _plan(config, dataset)
    table = Table(title="items")
    for c in ("#", "dataset", "id", "question"):
        table.add_column(c)
    n = 0
    for d in plan.datasets:
        for it in d.items:
            n += 1
            q = it.question.replace("\n", " ")
            table.add_row(str(n), it.dataset, it.id, q[:90] + ("…" if len(q) > 90 else ""))
    term.console(result=True).print(table)


@conditions_app.command("show")
def show_cmd(
    item: str = typer.Argument(..., help="Item id (or id prefix, position from `list`, or a piece of the question)."),
    dataset: str | None = typer.Option(None, "--dataset", help="Look only in this dataset."),
    config: Path | None = typer.Option(None, "--config", help="Experiment config (default: the built-in samples)."),
) -> None:
    """Print every prompt form of one item: context, form, and the exact user message."""
    plan = _plan(config, dataset)
    d, it = _find(plan, item)
    console = term.console(result=True)
    console.print(f"[bold]{it.key}[/]  {it.question}")
    if it.correct_answers:
        console.print(f"correct: {it.correct_answers[0]}   asserted wrong: {it.incorrect_answer}")
    prompts = [p for p in d.prompts if p.item_id == it.id]
    table = Table(title=f"{len(prompts)} prompts", show_lines=True)
    for c in ("context", "form", "prompt"):
        table.add_column(c, overflow="fold")
    for p in prompts:
        table.add_row(p.context, p.form, p.text)
    console.print(table)


@conditions_app.command("datasets")
def datasets_cmd(
    config: Path | None = typer.Option(None, "--config", help="Experiment config (its custom sets too)."),
) -> None:
    """List the dataset registry: every built-in and the config's own sets, with their kind,
    family, scorer and judge rubric."""
    from ..config import load_config
    from ..eval import registry

    if config:
        load_config(config)   # registers the config's custom sets
    table = Table(title="datasets")
    for c in ("name", "kind", "family", "grid", "scorer", "judge rubric", "source"):
        table.add_column(c, overflow="fold")
    for name in dict.fromkeys([*registry.builtin_names(), *registry.in_family(
            "reliability", "general", "safety")]):
        s = registry.spec(name)
        table.add_row(s.name, s.kind, s.family, "28 forms" if s.grid else "once",
                      s.scorer, s.rubric or "(reference only)", s.source or f"built-in ({s.loader})")
    term.console(result=True).print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(conditions_app, name="conditions")

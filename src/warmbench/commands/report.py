"""``warmbench report``: the run as one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import WarmbenchError


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        run_dir: Path = typer.Argument(..., help="Run directory (holds stats/, judge/), or a folder "
                                        "written by `warmbench stats ... --out DIR` (e.g. with --published)."),
        output: Path = typer.Option(None, "--output", "-o", help="Where to write the HTML (default RUN/report.html)."),
    ) -> None:
        """Write one self-contained HTML report: provenance, tables, figures and a side-by-side
        browser of every arm's answers (model text escaped; no network assets). Works on a run
        and on the output folder of `warmbench stats --published DIR --out OUT`."""
        from ..report import build_report

        if not run_dir.is_dir():
            raise WarmbenchError(f"run directory not found: {run_dir}")
        path = build_report(run_dir, output)
        typer.echo(str(path))

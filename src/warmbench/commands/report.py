"""``warmbench report``: the run as one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

import typer

from ._args import pick_run, require_run, run_alias, run_argument


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        run: Path = run_argument("Run directory (holds stats/, judge/), or a folder written by "
                                 "`warmbench stats ... --out-dir DIR` (e.g. with --published)."),
        run_dir: Path = run_alias("--run-dir"),
        output: Path = typer.Option(None, "--output", "-o", help="Where to write the HTML (default RUN/report.html)."),
    ) -> None:
        """Write one self-contained HTML report: provenance, tables, figures and a side-by-side
        browser of every arm's answers (model text escaped; no network assets). Works on a run
        and on the output folder of `warmbench stats --published DIR --out-dir OUT`."""
        from ..report import build_report

        run_dir = require_run(pick_run(run, run_dir), stats_folder=True)
        path = build_report(run_dir, output)
        typer.echo(str(path))

"""``warmbench compare``: paired statistics on Inspect eval logs and lm-eval sample files."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("compare")
    def compare_cmd(
        logs: list[Path] = typer.Argument(..., help="Two or more Inspect logs (.eval, .json) or "
                                          "lm-eval --log_samples files (samples_*.jsonl) of the "
                                          "same task; the first is the baseline."),
        out: Path = typer.Option(Path("compare"), "--out", "-o", help="Output folder."),
        name: list[str] = typer.Option(None, "--name", "-n", help="Name of each log, in order "
                                       "(default: its model; the file name when a model repeats)."),
        baseline: str = typer.Option(None, "--baseline", help="Name every other log is compared "
                                     "with (default: the first log)."),
        scorer: str = typer.Option(None, "--scorer", help="Inspect: which scorer's score "
                                   "(default: the log's first scorer)."),
        metric: str = typer.Option(None, "--metric", help="lm-eval: which metric (default: the "
                                   "first one a sample lists, e.g. acc)."),
        lm_filter: str = typer.Option(None, "--filter", help="lm-eval: which filter's rows "
                                      "(default: the only one in the file)."),
        threshold: float = typer.Option(0.5, "--threshold", help="A numeric score >= this counts "
                                        "as correct."),
        value_map: list[str] = typer.Option(None, "--map", help="Map a score value: VALUE=1, "
                                            "VALUE=0 or VALUE=drop (repeatable). Defaults: C=1, "
                                            "I=0, P and N dropped; booleans as they are."),
        alpha: float = typer.Option(0.05, "--alpha", help="Significance level after BH."),
        strict: bool = typer.Option(False, "--strict", help="Fail when any sample is dropped."),
        report: bool = typer.Option(True, "--report/--no-report", help="Also write OUT/report.html."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not print the tables."),
    ) -> None:
        """Pair samples of other tools' runs by id and epoch (lm-eval: task and doc_id), map each
        score to correct/incorrect, and write the paired exact McNemar / BH / effect-size tables,
        figures and HTML report that `warmbench stats` and `report` write, plus pairing.csv:
        how many samples were paired and why each other one was dropped."""
        from ..interop.compare import compare
        from ..interop.logs import ScoreMap, parse_value_map

        smap = ScoreMap(scorer=scorer, metric=metric, lm_filter=lm_filter, threshold=threshold,
                        values=parse_value_map(value_map))
        res = compare(list(logs), out, smap=smap, names=name or None, baseline=baseline,
                      alpha=alpha, report=report, strict=strict)
        for s in res["sources"]:
            info = s.info
            typer.echo(f"{s.name}: {info['kind']} {s.path} (task {info['task']}, "
                       f"{info['samples']} samples, scorer {info['scorer']}, status {info['status']})")
            if info["status"] != "success" or info["samples"] < info["planned"]:
                typer.secho(f"  note: log status {info['status']}, {info['samples']} of "
                            f"{info['planned']} planned samples present", fg="yellow")
        for line in res["pairing"].lines():
            typer.echo(line)
        if not quiet:
            from .stats import _print_tables

            _print_tables(res["analysis"], res["summary"])
        typer.echo(f"wrote {len(res['summary']['files'])} files to {out}"
                   + (f"; report: {res['report']}" if res["report"] else ""))

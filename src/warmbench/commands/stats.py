"""``warmbench stats``: paired tests, regressions and figures for a run or the published data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from .. import quiet, term
from ..errors import WarmbenchError
from ..layout import RunLayout
from ._args import pick_out, pick_run, require_run, run_alias, run_argument


def _print_tables(a: Any, s: dict[str, Any]) -> None:
    from rich.table import Table

    con = term.console()
    head = Table(title="Headline", show_lines=False)
    head.add_column("quantity")
    head.add_column("value", justify="right")
    for k, v in s["headline"].items():
        head.add_row(k, v)
    con.print(head)
    if len(a.effects):
        t = Table(title="Average marginal effect of the persona on the error rate (pp)")
        for c in ("comparison", "model", "level", "n", "AME pp", "95% CI", "p"):
            t.add_column(c, justify="right" if c in ("n", "AME pp", "95% CI", "p") else "left")
        for r in a.effects.itertuples():
            if not getattr(r, "estimable", True):
                # quasi-separated: the AME's finite limit, and no interval (no valid SE)
                t.add_row(r.comparison, r.model, str(r.level), str(r.n),
                          f"{r.ame_pp + 0.0:+.2f} (limit)", "no valid SE", "")
                continue
            exact = str(getattr(r, "ci_method", "")).startswith("exact")
            t.add_row(r.comparison, r.model, str(r.level), str(r.n), f"{r.ame_pp + 0.0:+.2f}",
                      f"[{r.ci_low_pp:+.2f}, {r.ci_high_pp:+.2f}]" + (" exact" if exact else ""),
                      "" if r.p_value != r.p_value else f"{r.p_value:.3g}")   # NaN: no test
        con.print(t)
    for comp, p in a.paired.groupby("comparison", sort=True):
        p = p[(p["level"] == "pooled") & (p["context"] == "all")]
        if p.empty:
            continue
        t = Table(title=f"{comp}: paired prompts pooled over contexts (exact McNemar, BH)")
        for c in ("family", "dataset", "form", "n", "base %", "arm %", "diff pp", "b", "c",
                  "p BH", "g", "OR [95% CI]"):
            t.add_column(c)
        for r in p.itertuples():
            t.add_row(r.model_family, r.dataset, r.form, str(r.n_pairs),
                      f"{r.acc_baseline_pct:.1f}", f"{r.acc_arm_pct:.1f}", f"{r.diff_pp:+.1f}",
                      str(r.b), str(r.c), f"{r.p_bh:.3g}", f"{r.cohens_g:.2f} {r.g_label}",
                      f"{r.odds_ratio:.2f} [{r.or_ci_low:.2f}, {r.or_ci_high:.2f}]")
        con.print(t)


def register(app: typer.Typer) -> None:
    @app.command("stats")
    def stats(
        run: Path = run_argument("Run directory with judge/scored.parquet (omit with --published)."),
        published: Path = typer.Option(None, "--published", help="Analyse data in the study's "
                                       "released layout (DIR/<model>/<arm>/<dataset>_*.csv) instead."),
        out: Path = typer.Option(None, "--out-dir", help="Output folder (default RUN/stats; "
                                 "required with --published, which also saves the converted "
                                 "table there so `warmbench report OUT` works)."),
        out_old: Path = typer.Option(None, "--out", hidden=True, help="Same as --out-dir (older spelling)."),
        compat: bool = typer.Option(None, "--compat/--no-compat", help="Published choices: "
                                    "model-based SEs, BH per 9-row table, the published refusal "
                                    "list re-applied to the answers with per-arm exclusion, plus "
                                    "results_<arm>.csv in the published columns."),
        baseline: str = typer.Option(None, "--baseline", help="Arm every other arm is compared "
                                     "with (default: the config's, else 'original')."),
        cluster: str = typer.Option(None, "--cluster", help="Regression SEs: 'question' "
                                    "(clustered, default) or 'none' (model-based; compat default)."),
        fdr_family: str = typer.Option(None, "--fdr-family", help="BH family: 'comparison' "
                                       "(every test of a comparison, default) or 'table' (compat)."),
        quiet_: bool = typer.Option(False, "--quiet", "-q", help="Same as the global --quiet: "
                                    "no tables, only where the files went."),
        run_dir: Path = run_alias("--run-dir"),
    ) -> None:
        """Paired McNemar tests, Benjamini–Hochberg, effect sizes, regressions M1–M4 with
        average marginal effects, general-benchmark CIs and figures. Writes paired.csv,
        regressions.csv, marginal_effects.csv, general.csv, figures/ and stats.json."""
        from ..config import parse_config
        from ..manifest import recorded_config
        from ..stats.run import stats_of_published, stats_of_run

        if cluster not in (None, "question", "none"):
            raise WarmbenchError(f"--cluster must be 'question' or 'none', not {cluster!r}")
        if fdr_family not in (None, "comparison", "table"):
            raise WarmbenchError(f"--fdr-family must be 'comparison' or 'table', not {fdr_family!r}")
        if quiet_:
            quiet.set_verbosity(quiet.QUIET)
        run_dir = pick_run(run, run_dir, required=False)
        out = pick_out(out, out_old)
        if (run_dir is None) == (published is None):
            raise WarmbenchError("give either a run directory or --published DIR (not both)")
        given = {"compat": compat, "baseline": baseline, "fdr_family": fdr_family}
        given = {k: v for k, v in given.items() if v is not None}
        if published is not None:
            if out is None:
                raise WarmbenchError("--published needs --out-dir DIR for the results")
            st = parse_config({"stats": given}, source="<command line>").stats
            a, s = stats_of_published(published, out, st, cluster=cluster)
        else:
            require_run(run_dir)
            # Only the run's `stats` section: the rest of its config is not needed here (and
            # need not validate: its files may have moved since).
            section = recorded_config(run_dir).get("stats") or {}
            st = parse_config({"stats": {**section, **given}},
                              source=str(RunLayout(run_dir).manifest)).stats
            out = out or RunLayout(run_dir).stats.root
            a, s = stats_of_run(run_dir, st, out_dir=out, cluster=cluster)
        _print_tables(a, s)
        typer.echo(f"wrote {len(s['files'])} files to {out}")

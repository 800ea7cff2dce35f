"""Scale benchmark of the statistics stage on a synthetic study-sized scored table.

Default: 5 model families x 2 arms (original, warm) = 10 arms, 4 datasets with the study's
item counts (500 + 500 + 500 + 125 = 1,625 items) x 28 prompt forms = 455,000 rows, through the
full analysis (paired tests, BH, M1–M4 with clustered SEs and AMEs, general table, figures,
CSVs). Prints wall time per phase and the peak resident memory of the process.

    python benchmarks/stats_scale.py [--families 5] [--arms original,warm] [--compat]

Target: under 2 minutes and 4 GB on 2 cores. The data are simulated, not study results.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

# The synthetic scored table is a test helper (tests/synthetic.py), not part of the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def _peak_mb() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", type=int, default=5, help="model families (default 5)")
    ap.add_argument("--arms", default="original,warm", help="comma-separated arms, baseline first")
    ap.add_argument("--compat", action="store_true", help="also build the published-format tables")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.perf_counter()
    from synthetic import synthetic_scored

    from warmbench.stats.run import analyse, write_outputs
    t_import = time.perf_counter() - t0

    arms = tuple(a.strip() for a in args.arms.split(","))
    families = tuple(f"family-{i}" for i in range(args.families))
    t = time.perf_counter()
    df = synthetic_scored(families=families, arms=arms, general=1000, seed=args.seed)
    t_data = time.perf_counter() - t
    reliability = int(df["dataset"].isin(["triviaqa", "truthfulqa", "medqa", "disinfo"]).sum())
    print(f"rows: {len(df):,} ({reliability:,} reliability + {len(df) - reliability:,} general); "
          f"{len(families)} families x {len(arms)} arms = {len(families) * len(arms)} arms")

    t = time.perf_counter()
    a = analyse(df, baseline=arms[0], compat=args.compat,
                cluster="none" if args.compat else "question")
    t_analyse = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        s = write_outputs(a, Path(tmp) / "stats", df)
        t_write = time.perf_counter() - t
    total = time.perf_counter() - t0
    print(f"import {t_import:.1f} s | synthetic data {t_data:.1f} s | analysis {t_analyse:.1f} s "
          f"| CSVs + figures {t_write:.1f} s | total {total:.1f} s")
    print(f"paired rows {len(a.paired):,}; regression terms {len(a.coefficients)}; "
          f"marginal effects {len(a.effects)}; files {len(s['files'])}")
    m1 = a.effects[(a.effects["model"] == "M1") & (a.effects["level"] == "all")].iloc[0]
    print(f"M1 AME {m1.ame_pp:+.2f} pp [{m1.ci_low_pp:+.2f}, {m1.ci_high_pp:+.2f}], "
          f"{m1.n:,} obs, clusters {a.coefficients['n_clusters'].iloc[0]}")
    print(f"peak resident memory: {_peak_mb():,.0f} MB")


if __name__ == "__main__":
    main()

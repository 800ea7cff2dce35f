"""What decides that a pipeline stage is done, beyond its config fingerprint.

A stage is done only when (1) its config sections are unchanged, (2) the data it reads is the
data it read last time, (3) it ended with zero failed rows, (4) its outputs exist and can be
read, and (5) what it wrote is still what it wrote (eval's answers in the store, the scored
table). (2) is what makes a completed ``warmbench eval`` re-judge and re-test: the judge's
input digest covers every stored answer, the stats' input digest the scored table's bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from .config import ExperimentConfig
from .layout import KIND_ANSWER, META_SELECTED, RunLayout
from .records import stable_hash
from .store import RunStore


def _files_digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.name).encode() + b"\0")
        try:
            with p.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        except OSError:
            h.update(b"<missing>")
    return h.hexdigest()[:32]


def _rewrite_reads(cfg: ExperimentConfig, store: RunStore) -> str:
    src = Path(cfg.rewrite.input) if cfg.rewrite.input else RunLayout(store.run_dir).curate_train
    return _files_digest([src])


def _train_reads(cfg: ExperimentConfig, store: RunStore) -> str:
    return _files_digest(RunLayout(store.run_dir).rewrite_outputs())


def _warmth_reads(cfg: ExperimentConfig, store: RunStore) -> str:
    return _files_digest(RunLayout(store.run_dir).checkpoint_lists())


def _eval_reads(cfg: ExperimentConfig, store: RunStore) -> str:
    return stable_hash(store.get_meta(META_SELECTED))


def _judge_reads(cfg: ExperimentConfig, store: RunStore) -> str:
    # Every stored answer by key and text: an answer completed or regenerated since the last
    # judge run (also by `warmbench eval` alone) changes this.
    rows = sorted((d.get("key", ""), stable_hash(d.get("text") or "")) for d in store.iter(KIND_ANSWER))
    return stable_hash(rows)


def _stats_reads(cfg: ExperimentConfig, store: RunStore) -> str:
    return _files_digest([RunLayout(store.run_dir).scored])


# Stage name -> digest of what it reads (stages not listed read only the config).
READS: dict[str, Callable[[ExperimentConfig, RunStore], str]] = {
    "rewrite": _rewrite_reads, "train": _train_reads, "warmth": _warmth_reads,
    "eval": _eval_reads, "judge": _judge_reads, "stats": _stats_reads,
}

# Stage name -> outputs that must exist and be readable.
WRITES: dict[str, Callable[[ExperimentConfig, RunLayout], list[Path]]] = {
    "curate": lambda cfg, r: [r.curate_train, r.curate_validation],
    "rewrite": lambda cfg, r: [r.rewrite_data(p) for p in cfg.rewrite.personas],
    "warmth": lambda cfg, r: [r.selected],
    "eval": lambda cfg, r: [r.answers],
    "judge": lambda cfg, r: [r.scored],
    "stats": lambda cfg, r: [r.stats.json],
}


# Stage name -> digest of what it produced, recorded when it finishes: if that changed since
# (`warmbench eval` alone rewrote the answers, a scored table was replaced), it is not done.
WROTE: dict[str, Callable[[ExperimentConfig, RunStore], str]] = {
    "eval": _judge_reads, "judge": _stats_reads,
}


def output_digest(name: str, cfg: ExperimentConfig, store: RunStore) -> str | None:
    fn = WROTE.get(name)
    return fn(cfg, store) if fn else None


def input_digest(name: str, cfg: ExperimentConfig, store: RunStore) -> str | None:
    fn = READS.get(name)
    return fn(cfg, store) if fn else None


def unreadable_output(name: str, cfg: ExperimentConfig, run_dir: Path) -> str | None:
    """The first of the stage's outputs that is missing or cannot be read (relative to the run
    directory), else None."""
    fn = WRITES.get(name)
    layout = RunLayout(run_dir)
    for p in fn(cfg, layout) if fn else []:
        if not _readable(p):
            return p.relative_to(layout.root).as_posix()
    return None


def _readable(p: Path) -> bool:
    try:
        if p.suffix == ".parquet":
            import pyarrow.parquet as pq

            pq.ParquetFile(p).metadata  # noqa: B018  (reads the footer: a cut file fails here)
        elif p.suffix == ".json":
            json.loads(p.read_text(encoding="utf-8"))
        else:
            return p.is_file()
    except Exception:  # any reader error means the same thing: not a usable output
        return False
    return True


def failure_line(stage: str, n: int, rows: list[str]) -> str:
    """The one line `warmbench run` ends with when a stage has failed rows."""
    shown = "; ".join(rows[:3])
    more = f"; +{n - 3} more" if n > 3 else ""
    return (f"{stage}: {n} row{'s' if n != 1 else ''} failed ({shown}{more}); "
            "run again to retry exactly these")

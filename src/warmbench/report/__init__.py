"""``warmbench report``: one self-contained HTML file per run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..layout import RunLayout
from ..manifest import redact
from ..stage import StageResult
from .collect import collect
from .render import render


def build_report(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Write RUN/report.html (or ``output``) and return its path."""
    run_dir = Path(run_dir)
    data = collect(run_dir)
    data.manifest = redact(data.manifest)
    out = Path(output) if output else RunLayout(run_dir).report
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(render(data), encoding="utf-8")
    tmp.replace(out)
    return out


def run_report(cfg: Any, store: Any, progress: Any = None) -> StageResult:
    """Pipeline stage: RUN/report.html from what the run holds (``build_report`` also renders
    folders that are not runs, e.g. ``warmbench stats --published`` output)."""
    path = build_report(store.run_dir)
    return StageResult({"path": str(path)}, outputs={"report": path})


__all__ = ["build_report", "run_report"]

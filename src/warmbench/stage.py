"""What every pipeline stage returns: ``run(cfg, store, progress) -> StageResult``.

The stages (curate, rewrite, train, warmth, eval, judge, stats, report) share one signature;
every option a command adds (``--persona``, ``--limit``, ``--data`` ...) reaches them as a
config override (``ExperimentConfig.with_overrides``), so ``warmbench run`` calls them all the
same way. A ``StageResult`` reads like its summary (a JSON-able mapping: what the manifest's
``stage_results`` and the store's ``stage.<name>`` meta record), and also says which rows
failed and which files the stage wrote.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


def failures(summary: Any) -> tuple[int, list[str]]:
    """(number of failed rows, some of them described) from a stage's summary.

    Stages report failed rows as ``failed_total`` and ``failed_rows`` (a bounded list); the
    same rule reads the summaries that older runs stored."""
    if not isinstance(summary, Mapping):
        return 0, []
    n = int(summary.get("failed_total") or 0)
    rows = [str(r) for r in summary.get("failed_rows") or []]
    return max(n, len(rows)), rows


@dataclass(frozen=True, eq=False)   # eq: Mapping's, so a result equals its summary as a dict
class StageResult(Mapping[str, Any]):
    """A stage's summary (read it like a dict: ``result["skipped"]``), its failed rows and the
    files it wrote (name -> path)."""

    summary: dict[str, Any]
    outputs: dict[str, Path] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        """Rows that failed (e.g. API requests that failed after their retries): the stage is
        then not done, and the next run retries exactly these."""
        return failures(self.summary)[0]

    @property
    def failed_rows(self) -> list[str]:
        """Some of the failed rows, described (a bounded list)."""
        return failures(self.summary)[1]

    def __getitem__(self, key: str) -> Any:
        return self.summary[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.summary)

    def __len__(self) -> int:
        return len(self.summary)


class StageFn(Protocol):
    """The one stage signature the pipeline calls."""

    def __call__(self, cfg: Any, store: Any, progress: Any = None) -> StageResult: ...

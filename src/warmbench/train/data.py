"""Training data: read the SFT chat JSONL, validate it, tokenize with an assistant-only loss mask.

Input lines are ``{"id": ..., "messages": [{"role": ..., "content": ...}, ...]}`` (the rewrite
stage's output, ``RUN/rewrite/<persona>.jsonl``). A bad line raises an InputError naming the
file, the line and the field.

Why we build the loss mask ourselves instead of TRL's ``assistant_only_loss``: TRL needs a chat
template with ``{% generation %}`` markers and only knows replacements for some families. Here
the template is rendered for each prefix of the conversation; the characters an assistant turn
adds (its content and its end-of-turn marker) are the ones trained on, mapped to tokens
through the fast tokenizer's offsets. This works for any template whose renderings of
prefixes are prefixes of the full rendering (true of ChatML, Llama 3, Mistral, Gemma, SmolLM2);
for the rare template that rewrites earlier turns, we fall back to locating each assistant
message's text in the full rendering.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError, WarmbenchError
from ..jsonl import chat_messages, read_jsonl
from ..records import stable_hash

IGNORE = -100


def load_conversations(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Read and validate a chat JSONL file; returns ``[{id, messages}]`` (first ``limit``)."""
    path = Path(path)
    if not path.exists():
        raise WarmbenchError(f"training data not found: {path}")
    out: list[dict[str, Any]] = []
    if limit is None or limit > 0:
        for lineno, row in read_jsonl(path):
            out.append(_check_row(row, path, lineno))
            if limit is not None and len(out) >= limit:
                break   # the lines after the first ``limit`` are never read
    if not out:
        raise InputError(path, None, None, "no conversations in file")
    return out


def _check_row(row: Any, path: Path, lineno: int) -> dict[str, Any]:
    where = f"line {lineno}"
    if not isinstance(row, dict):
        raise InputError(path, where, None, f"expected a JSON object, got {type(row).__name__}")
    clean = chat_messages(path, where, row.get("messages"))
    if not any(m["role"] == "assistant" and m["content"].strip() for m in clean):
        raise InputError(path, where, "messages", "has no non-empty assistant message to train on")
    rid = row.get("id", f"line{lineno}")
    return {"id": str(rid), "messages": clean}


def data_hash(conversations: list[dict[str, Any]]) -> str:
    """Content hash of the training set (ids and messages, in order)."""
    return stable_hash([[c["id"], c["messages"]] for c in conversations], n=16)


def _render(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False,
                                         add_generation_prompt=add_generation_prompt)


def assistant_char_spans(tokenizer, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """Full rendering of the conversation and the character spans the model must learn."""
    full = _render(tokenizer, messages)
    spans: list[tuple[int, int]] = []
    cursor = 0
    for k, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:k], add_generation_prompt=True) if k else ""
        after = _render(tokenizer, messages[: k + 1])
        if k and full.startswith(before) and full.startswith(after) and len(after) > len(before):
            spans.append((len(before), len(after)))
            cursor = len(after)
            continue
        # Fallback: the template rewrites history; find the message text itself.
        start = full.find(m["content"], cursor) if m["content"] else -1
        if start < 0:
            raise WarmbenchError(
                "cannot locate an assistant turn in the chat template's output; this template "
                "is not supported for assistant-only loss"
            )
        spans.append((start, start + len(m["content"])))
        cursor = start + len(m["content"])
    return full, spans


def tokenize_conversation(tokenizer, messages: list[dict], max_length: int | None) -> dict[str, list[int]]:
    """``{input_ids, labels}`` with labels = -100 outside assistant turns, truncated to max_length."""
    if not getattr(tokenizer, "chat_template", None):
        raise WarmbenchError("the base model's tokenizer has no chat template; training needs one")
    if not getattr(tokenizer, "is_fast", False):
        raise WarmbenchError("assistant-only loss needs a fast tokenizer (offset mapping)")
    text, spans = assistant_char_spans(tokenizer, messages)
    # The template writes BOS itself when the model wants one: no special tokens added here.
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = enc["input_ids"]
    labels = [IGNORE] * len(ids)
    j = 0
    for i, (a, b) in enumerate(enc["offset_mapping"]):
        # Tokens are sorted by offset: advance through spans once (O(tokens + spans)).
        while j < len(spans) and spans[j][1] <= a:
            j += 1
        if j < len(spans) and b > spans[j][0] and a < spans[j][1]:
            labels[i] = ids[i]
    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
    return {"input_ids": ids, "labels": labels}


def build_dataset(tokenizer, conversations: list[dict[str, Any]], max_length: int | None):
    """A ``datasets.Dataset`` of pre-tokenized rows; conversations whose assistant text was
    entirely cut by max_length are dropped (they carry no loss). Returns (dataset, stats)."""
    from datasets import Dataset

    rows, dropped, truncated, n_tokens, n_trained = [], 0, 0, 0, 0
    for c in conversations:
        full = tokenize_conversation(tokenizer, c["messages"], None)
        if max_length is not None and len(full["input_ids"]) > max_length:
            truncated += 1
        r = {k: v[:max_length] if max_length else v for k, v in full.items()}
        trained = sum(1 for x in r["labels"] if x != IGNORE)
        if trained == 0:
            dropped += 1
            continue
        n_tokens += len(r["input_ids"])
        n_trained += trained
        rows.append(r)
    if not rows:
        raise WarmbenchError("no training example keeps any assistant token within max_length")
    stats = {"n_conversations": len(conversations), "n_examples": len(rows),
             "dropped_no_assistant_tokens": dropped, "truncated": truncated,
             "tokens": n_tokens, "trained_tokens": n_trained}
    return Dataset.from_list(rows), stats

"""Constrained replies for the ``hf`` backend: pick the most likely of a few fixed texts.

A small local model asked to grade an answer rarely ends its reply with the required
``VERDICT: ...`` line (SmolLM2-135M: 84 of 84 replies unparseable). Scoring each allowed
reply as a continuation of the prompt and taking the likeliest always yields one of them,
and is the usual way to read a classification out of a language model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def choice_token_ids(tokenizer: Any, choices: Sequence[str]) -> list[list[int]]:
    """Token ids of each choice as the start of the reply (no special tokens)."""
    ids = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in choices]
    if any(not i for i in ids):
        raise ValueError(f"choices {list(choices)!r}: an empty choice cannot be scored")
    return ids


def choice_logprobs(forward: Callable[..., Any], tokenizer: Any, prompts: list[list[int]],
                    choice_ids: list[list[int]], device: str) -> list[list[float]]:
    """log P(choice | prompt), summed over the choice's tokens, for every prompt x choice.

    One forward pass over len(prompts) x len(choices) rows, left-padded so every row's choice
    ends at the last position; only the last K+1 positions' logits are computed (K = longest
    choice), so memory is rows x K x vocab, not rows x length x vocab.
    """
    import torch

    rows = [p + c for p in prompts for c in choice_ids]
    k = max(len(c) for c in choice_ids)
    enc = tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt")
    ids = enc["input_ids"].to(device)
    attn = enc["attention_mask"].to(device)
    # Left padding: positions must count real tokens only, as generate() does.
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        logits = forward(input_ids=ids, attention_mask=attn, position_ids=pos,
                         logits_to_keep=k + 1).logits[:, -(k + 1):-1].float()
    logp = torch.log_softmax(logits, dim=-1)                        # [rows, k, vocab]
    target = ids[:, -k:]                                             # [rows, k]
    tok_lp = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)       # [rows, k]
    n = len(choice_ids)
    flat = [float(tok_lp[r, k - len(choice_ids[r % n]):].sum()) for r in range(len(rows))]
    return [flat[b * n:(b + 1) * n] for b in range(len(prompts))]


def pick_choices(forward: Callable[..., Any], tokenizer: Any, prompts: list[list[int]],
                 choice_ids: list[list[int]], device: str) -> list[int]:
    """Index of the likeliest choice for each prompt (ties: the first)."""
    return [max(range(len(s)), key=lambda j, s=s: (s[j], -j))
            for s in choice_logprobs(forward, tokenizer, prompts, choice_ids, device)]

"""NSFW filter for chat logs: Detoxify when its checkpoint is on disk, else alt-profanity-check.

The study filtered ShareGPT with Detoxify (threshold not published). Detoxify downloads its
checkpoint from GitHub at first use; this module never downloads: it uses Detoxify only when the
checkpoint is already in the torch hub cache (and its tokenizer/config load offline), otherwise
it falls back to ``alt-profanity-check`` (a bundled scikit-learn model) and says so in ``name``.

A conversation's score is the maximum over its messages, each capped at ``max_chars``
characters (long texts are slow for Detoxify and its models were trained on short comments).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from ..errors import MissingExtraError, WarmbenchError
from ..records import Conversation

# Detoxify outputs whose max is compared to the threshold (the "unbiased" model has all four;
# the "original" model lacks sexual_explicit).
DETOXIFY_KEYS = ("toxicity", "severe_toxicity", "obscene", "sexual_explicit")
_DETOXIFY_PREFERENCE = ("unbiased", "original")


class Scorer(Protocol):
    name: str

    def score(self, texts: Sequence[str]) -> list[float]: ...


class ProfanityScorer:
    """alt-profanity-check: probability that a text is offensive (linear SVM on bag of words)."""

    def __init__(self, reason: str = ""):
        try:
            from profanity_check import predict_prob
        except ImportError:
            raise MissingExtraError("alt-profanity-check", "data", "the NSFW fallback filter") from None
        self._predict = predict_prob
        self.name = "alt-profanity-check" + (f" (fallback: {reason})" if reason else "")

    def score(self, texts: Sequence[str]) -> list[float]:
        return [float(p) for p in self._predict(list(texts))] if texts else []


class DetoxifyScorer:
    """Detoxify from a local checkpoint; score = max of DETOXIFY_KEYS present in its output."""

    def __init__(self, model_type: str, checkpoint: Path, batch_size: int = 32):
        from detoxify import Detoxify

        # Detoxify prints nothing useful; keep stdout clean for the CLI summary.
        with contextlib.redirect_stdout(io.StringIO()):
            self._model = Detoxify(model_type=model_type, checkpoint=str(checkpoint), device="cpu")
        self.batch_size = batch_size
        self.name = f"detoxify:{model_type}"

    def score(self, texts: Sequence[str]) -> list[float]:
        out: list[float] = []
        for i in range(0, len(texts), self.batch_size):
            res = self._model.predict(list(texts[i : i + self.batch_size]))
            keys = [k for k in DETOXIFY_KEYS if k in res]
            out.extend(max(float(res[k][j]) for k in keys) for j in range(len(res[keys[0]])))
        return out


# Checkpoint file names of detoxify.detoxify.MODEL_URLS (kept here so that finding one does not
# import torch + transformers, ~5 s).
_CHECKPOINTS = {"unbiased": "toxic_debiased-c7548aa0.ckpt", "original": "toxic_original-c1212f89.ckpt"}


def torch_hub_dir() -> Path:
    """torch.hub.get_dir() without importing torch: $TORCH_HOME/hub or $XDG_CACHE_HOME/torch/hub."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "torch")
    return Path(home) / "hub"


def detoxify_checkpoint() -> tuple[str, Path] | None:
    """(model_type, path) of a Detoxify checkpoint already in the torch hub cache, if any."""
    ckdir = torch_hub_dir() / "checkpoints"
    for mt in _DETOXIFY_PREFERENCE:
        p = ckdir / _CHECKPOINTS[mt]
        if p.is_file():
            return mt, p
    return None


def make_scorer(kind: str = "auto") -> Scorer | None:
    """'auto' | 'detoxify' | 'profanity' | 'none' -> a scorer (None for 'none')."""
    if kind == "none":
        return None
    if kind == "profanity":
        return ProfanityScorer()
    found = detoxify_checkpoint()
    if found is None:
        if kind == "detoxify":
            raise WarmbenchError("nsfw_filter 'detoxify': no Detoxify checkpoint in the torch hub "
                                 "cache (it is never downloaded at run time); use 'auto' or 'profanity'")
        return ProfanityScorer("no Detoxify checkpoint in the torch hub cache")
    try:
        return DetoxifyScorer(*found)
    except Exception as e:  # tokenizer/config not cached offline, version mismatch, ...
        if kind == "detoxify":
            raise WarmbenchError(f"nsfw_filter 'detoxify': cannot load {found[1]}: {e}") from None
        return ProfanityScorer(f"Detoxify failed to load: {type(e).__name__}")


def conversation_scores(scorer: Scorer, convs: Sequence[Conversation], max_chars: int) -> list[float]:
    """Max message score per conversation, every message capped at ``max_chars`` characters."""
    texts: list[str] = []
    owner: list[int] = []
    for i, c in enumerate(convs):
        for m in c.messages:
            texts.append(m.content[:max_chars])
            owner.append(i)
    scores = scorer.score(texts)
    best = [0.0] * len(convs)
    for i, s in zip(owner, scores, strict=True):
        best[i] = max(best[i], s)
    return best

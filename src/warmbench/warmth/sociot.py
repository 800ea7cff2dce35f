"""SocioT warmth (Cheng, Yu & Jurafsky, *HumT DumT*, ACL 2025), two definitions.

A text (its first 300 characters) is placed in quotes after four warm speakers
(``My friend said, "t"``, lover, mentor, idol) and four cold ones (stranger, enemy, examiner,
dictator). Warmth = how much likelier the metric model finds the text after a warm speaker
than after a cold one. Positive = warmer.

``exact`` (default, deterministic): model in eval mode; for each context c, ``lp_c`` = sum of
log p(text token | context, earlier text tokens) over the text's own tokens only (no context,
closing quote or padding tokens). A set's value is log-mean-exp over its four contexts, i.e.
the log-likelihood of the text under a uniform mixture of the four speakers. The score is
(value_warm - value_cold) / n_text_tokens: nats per text token, the same unit as the
reference's per-token mean, so magnitudes line up (≈0.01-0.03).

``compat``: what the published reference code computes (see STUDY.md). Each set's four full
sentences are right-padded with token id 0 into one batch; value = minus the mean token
cross-entropy over the whole padded batch (context, text, closing quote and padding tokens all
included); the model is in train mode so dropout is on; 100 such passes are averaged and
reported with the standard error of the mean; the score's SE is sqrt(SEw² + SEc²). We batch
many texts and repeats into one forward pass: each row still draws its own dropout masks, and
causal attention without a mask means extra right padding never changes earlier positions,
so a set's loss is computed over exactly the positions the reference would use. On a CPU the
passes run through ``compat_kernels`` (cheaper dropout random numbers, fused attention and GELU).

Tokenisation (exact): the context prefix (``My friend said, "``, with the tokenizer's own
leading special tokens such as BOS) and the text are tokenised separately and concatenated,
so the text's token ids are identical under all eight contexts and no merge can straddle the
quote. For GPT-2's byte-level BPE this equals tokenising the whole sentence except when the
text starts with punctuation that would merge with the opening quote.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np

from ..batching import longest_first, token_batches
from .metric_model import LoadedMetricModel

WARM_CONTEXTS = ('My friend said, "{text}"', 'The lover said, "{text}"',
                 'The mentor said, "{text}"', 'The idol said, "{text}"')
COLD_CONTEXTS = ('The stranger said, "{text}"', 'The enemy said, "{text}"',
                 'The examiner said, "{text}"', 'The dictator said, "{text}"')
CONTEXTS = WARM_CONTEXTS + COLD_CONTEXTS
TRUNCATE_CHARS = 300
COMPAT_PAD_ID = 0
DEFAULT_REPEATS = 100


def prepare(text: str) -> str:
    """The part of a text SocioT reads: its first 300 characters."""
    return (text or "")[:TRUNCATE_CHARS]


@dataclass(frozen=True)
class Scores:
    """Per-text scores from one method. ``se`` is NaN for ``exact`` (deterministic)."""

    score: np.ndarray  # (n,) warm − cold; NaN where the text has no tokens
    se: np.ndarray  # (n,) compat: sqrt(SEw² + SEc²)
    warm: np.ndarray  # (n,) set values
    cold: np.ndarray
    n_tokens: np.ndarray  # (n,) text tokens (exact) or tokens in the longest sentence (compat)
    method: str
    metric_model: str


# --------------------------------------------------------------------------- shared model plumbing
def _special_lead(tok) -> list[int]:
    """Token ids the tokenizer puts before any text (BOS for Gemma/Llama, none for GPT-2)."""
    plain = tok("a", add_special_tokens=False)["input_ids"]
    full = tok("a", add_special_tokens=True)["input_ids"]
    for k in range(len(full) - len(plain) + 1):
        if full[k : k + len(plain)] == plain:
            return list(full[:k])
    return []


def _token_logprobs(lm: LoadedMetricModel, ids: list[list[int]], targets: list[np.ndarray],
                    *, pad_id: int, use_mask: bool, chunk: int | None = None) -> list[np.ndarray]:
    """log p(ids[i][t] | ids[i][:t]) for every t in ``targets[i]``, one forward pass.

    Sequences are right-padded (padding never influences earlier positions of a causal
    model). The LM head runs only on the positions that are scored, in chunks, so the
    (tokens × vocabulary) logits never exist for the whole batch: Gemma's vocabulary is
    262k. Shapes: ids B×T, hidden B×T×d, picked N×d, logits chunk×V.
    """
    import torch

    model = lm.model
    dev = lm.device
    # Built in NumPy in one go, not row by row: compat's batches hold ~50 rows, and a
    # torch.tensor per row was ~3% of a tiny model's pass.
    lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    filled = np.arange(int(lengths.max())) < lengths[:, None]
    grid = np.full(filled.shape, pad_id, dtype=np.int64)
    grid[filled] = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64,
                               count=int(lengths.sum()))  # row-major, as the mask is read
    x = torch.from_numpy(grid)
    counts = [len(t) for t in targets]
    rows = np.repeat(np.arange(len(targets)), counts)
    cols = np.concatenate(targets)
    kwargs = {"attention_mask": torch.from_numpy(filled.astype(np.int64)).to(dev)} if use_mask else {}
    hidden = model.base_model(input_ids=x.to(dev), **kwargs).last_hidden_state
    r = torch.as_tensor(rows, device=dev)
    c = torch.as_tensor(cols, device=dev)
    picked = hidden[r, c - 1]  # the state before token t predicts token t
    labels = x.to(dev)[r, c]
    head = model.get_output_embeddings()
    cap = getattr(model.config, "final_logit_softcapping", None)
    if chunk is None:
        chunk = _head_chunk(head.weight.shape[0], str(dev))
    out = _head_logprobs(head, picked, labels, chunk, cap)
    flat = torch.cat(out).cpu().numpy().astype(np.float64)
    return np.split(flat, np.cumsum(counts)[:-1])


def _in_place_head(head, picked) -> bool:
    """Can the head's logits go into one reused float32 buffer? (a bias-free float32 Linear:
    GPT-2's tied head, Gemma's, SmolLM2's)."""
    import torch

    return (type(head) is torch.nn.Linear and head.bias is None
            and head.weight.dtype == picked.dtype == torch.float32)


def _head_logprobs(head, picked, labels, chunk: int, cap: float | None = None,
                   *, in_place: bool | None = None) -> list:
    """log p(labels[i] | picked[i]) through the LM head, ``chunk`` positions at a time.

    Where the head allows it (``_in_place_head``; no soft-capping), every chunk's logits are
    written into one buffer and log-softmaxed in place. The numbers are the same bits as
    ``-cross_entropy(head(x))`` (tested); the time is not: a fresh (chunk × vocabulary) tensor
    per chunk is a fresh 8 MB allocation whose pages fault in on first touch. At tiny-bpe's
    64 × 4,096 that made 512-position chunks 1.39 ms instead of 1.29 ms in isolation, and
    batched compat 1.25x slower end to end (6.4 s vs 5.1 s on 10 texts, 2-core Xeon).
    """
    import torch

    if in_place is None:
        in_place = not cap and _in_place_head(head, picked)
    out = []
    buf = (torch.empty(min(chunk, len(picked)), head.weight.shape[0], device=picked.device)
           if in_place else None)
    for s in range(0, len(picked), chunk):
        lab = labels[s : s + chunk]
        if buf is not None:
            z = buf[: len(lab)]
            torch.mm(picked[s : s + chunk], head.weight.T, out=z)
            torch.log_softmax(z, -1, out=z)
            out.append(z.gather(1, lab[:, None]).squeeze(1))
            continue
        logits = head(picked[s : s + chunk]).float()
        if cap:
            logits = torch.tanh(logits / cap) * cap
        out.append(-torch.nn.functional.cross_entropy(logits, lab, reduction="none"))
    return out


def _head_chunk(vocab: int, device: str = "cpu") -> int:
    """Positions per LM-head chunk: on a CPU ~8 MB of float32 logits, so a chunk's logits are
    still in cache when cross-entropy reads them back, but at least 128 positions, or the
    head's matmul loses efficiency at a large vocabulary; on CUDA ~512 MB; at most 2,048
    positions (2,048 × Gemma's 262k vocabulary would be 2 GB of logits).

    Measured on a 2-core Xeon (4 MB L2, best of 5): at width 64 × vocabulary 4,096, head plus
    cross-entropy took 3.2 µs per position in 512-position chunks and 10.9 µs in 2,048-position
    ones (32 MB of logits); at 128 × 8,192 the best was 256 positions, at 256 × 16,384 128; at
    GPT-2's 768 × 50,257, 128 to 512 positions were level (~370 µs) and 32 ran 60% slower.
    """
    floats = (128 << 20) if device.startswith("cuda") else (2 << 20)
    return max(128, min(2048, floats // max(vocab, 1)))


def _batches(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Group indices (longest first) so each padded batch holds at most ``budget`` tokens."""
    return token_batches(longest_first(lengths), lengths, budget)


def log_mean_exp(a: np.ndarray, axis: int = -1) -> np.ndarray:
    m = np.max(a, axis=axis, keepdims=True)
    return (m + np.log(np.mean(np.exp(a - m), axis=axis, keepdims=True))).squeeze(axis)


# --------------------------------------------------------------------------- exact
def encode_exact(tok, texts: Sequence[str]) -> tuple[list[list[int]], list[list[int]]]:
    """(prefix ids per context, text ids per text), tokenised separately (see module doc)."""
    lead = _special_lead(tok)
    prefixes = [lead + tok(c.split("{text}")[0], add_special_tokens=False)["input_ids"]
                for c in CONTEXTS]
    text_ids = [tok(prepare(t), add_special_tokens=False)["input_ids"] if prepare(t) else []
                for t in texts]
    return prefixes, [list(t) for t in text_ids]


def context_logprobs(lm: LoadedMetricModel, texts: Sequence[str], *, batch_tokens: int | None = None,
                     progress=None) -> tuple[np.ndarray, np.ndarray]:
    """(n × 8 summed log-probs of each text's tokens per context, n_tokens per text)."""
    import torch

    if batch_tokens is None:
        batch_tokens = exact_batch_tokens(lm)
    prefixes, text_ids = encode_exact(lm.tokenizer, texts)
    n = len(texts)
    lp = np.full((n, len(CONTEXTS)), np.nan)
    ntok = np.array([len(t) for t in text_ids])
    seqs = [(i, j) for i in range(n) if ntok[i] for j in range(len(CONTEXTS))]
    lengths = [len(prefixes[j]) + ntok[i] for i, j in seqs]
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    bar = progress.task(f"warmth · {lm.label}", total=len(seqs)) if progress else None
    was_training = lm.model.training
    lm.model.eval()
    try:
        with torch.inference_mode():
            for batch in _batches(lengths, batch_tokens):
                ids = [prefixes[seqs[k][1]] + text_ids[seqs[k][0]] for k in batch]
                tg = [np.arange(len(prefixes[seqs[k][1]]), len(ids[b])) for b, k in enumerate(batch)]
                res = _token_logprobs(lm, ids, tg, pad_id=pad, use_mask=True)
                for k, v in zip(batch, res, strict=True):
                    lp[seqs[k]] = v.sum()
                if bar:
                    bar.advance(len(batch))
    finally:
        lm.model.train(was_training)
    if bar:
        bar.close()
    return lp, ntok


def score_exact(lm: LoadedMetricModel, texts: Sequence[str], *, batch_tokens: int | None = None,
                progress=None) -> Scores:
    """Deterministic SocioT warmth per text (nats per text token; NaN for empty texts)."""
    lp, ntok = context_logprobs(lm, texts, batch_tokens=batch_tokens, progress=progress)
    k = len(WARM_CONTEXTS)
    with np.errstate(invalid="ignore", divide="ignore"):
        warm = log_mean_exp(lp[:, :k]) / ntok
        cold = log_mean_exp(lp[:, k:]) / ntok
    score = warm - cold
    return Scores(score, np.full(len(texts), np.nan), warm, cold, ntok, "exact", lm.label)


# --------------------------------------------------------------------------- compat
def encode_compat(tok, text: str) -> tuple[list[list[int]], list[list[int]]]:
    """The reference's tokenisation: each full sentence with the tokenizer's defaults."""
    t = prepare(text)
    warm = [list(tok(c.format(text=t))["input_ids"]) for c in WARM_CONTEXTS]
    cold = [list(tok(c.format(text=t))["input_ids"]) for c in COLD_CONTEXTS]
    return warm, cold


def has_dropout(model) -> bool:
    """Does train mode make this model stochastic? (Gemma 3 has no dropout at all.)"""
    import torch

    cfg = model.config
    for attr in ("attn_pdrop", "resid_pdrop", "embd_pdrop", "attention_dropout", "hidden_dropout"):
        if float(getattr(cfg, attr, 0) or 0) > 0:
            return True
    return any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in model.modules())


def _set_rows(sentences: list[list[int]]) -> tuple[list[list[int]], list[np.ndarray]]:
    """A set padded to its own longest sentence with id 0, and the positions its loss uses:
    every next-token prediction inside that padded width (labels = inputs, padding included)."""
    width = max(len(s) for s in sentences)
    rows = [s + [COMPAT_PAD_ID] * (width - len(s)) for s in sentences]
    return rows, [np.arange(1, width)] * len(rows)


def compat_values(lm: LoadedMetricModel, sets: Sequence[list[list[int]]], repeats: int, *,
                  seed: int = 0, batch_tokens: int = 16384, dropout: bool = True,
                  progress=None) -> np.ndarray:
    """(len(sets) × repeats) values, each = −mean CE of one train-mode pass over one set.

    ``dropout=False`` runs in eval mode (tests compare with the reference algorithm exactly).
    """
    import torch

    from .compat_kernels import cpu_compat_kernels

    units = [(s, r) for s in range(len(sets)) for r in range(repeats)]
    padded = [_set_rows(list(s)) for s in sets]
    widths = [len(p[0][0]) * len(p[0]) for p in padded]
    out = np.zeros((len(sets), repeats))
    torch.manual_seed(seed)
    was_training = lm.model.training
    lm.model.train(dropout)  # dropout on, as in the reference
    bar = progress.task(f"warmth compat · {lm.label}", total=len(units)) if progress else None
    try:
        # inference_mode, not just no_grad: no autograd bookkeeping or version counters at
        # all. Dropout still runs: it follows train(), not the grad mode. On a CPU the passes
        # run through compat_kernels (SFC64 dropout masks, fused attention and GELU): the same
        # arithmetic and distribution, 2-3x faster than stock torch on tiny-bpe (README, Speed).
        kernels = (cpu_compat_kernels(lm.model, seed, device=str(lm.device)) if dropout
                   else nullcontext())
        with torch.inference_mode(), kernels:
            for batch in _batches([widths[s] for s, _ in units], batch_tokens):
                ids, tg = [], []
                for k in batch:
                    rows, pos = padded[units[k][0]]
                    ids.extend(rows)
                    tg.extend(pos)
                res = _token_logprobs(lm, ids, tg, pad_id=COMPAT_PAD_ID, use_mask=False)
                i = 0
                for k in batch:
                    m = len(padded[units[k][0]][0])
                    out[units[k]] = float(np.mean(np.concatenate(res[i : i + m])))
                    i += m
                if bar:
                    bar.advance(len(batch))
    finally:
        lm.model.train(was_training)
    if bar:
        bar.close()
    return out


def cpu_batch_tokens(model) -> int:
    """Tokens per forward pass on a CPU: ~4 MB of float32 of the widest activation
    (tokens × MLP width), clamped to 256-4,096.

    A CPU pass is compute-bound already at a few hundred tokens, so bigger batches gain
    nothing, while they push the activations out of cache: at GPT-2 small's shapes 4,096-token
    batches ran compat at 0.82-0.93x the per-set reference and exact ~12% slower than 341.
    """
    cfg = model.config
    width = max(int(getattr(cfg, a, 0) or 0) for a in ("n_inner", "intermediate_size", "hidden_size",
                                                        "n_embd"))
    if getattr(cfg, "n_inner", None) is None and getattr(cfg, "n_embd", None):
        width = max(width, 4 * int(cfg.n_embd))  # GPT-2: n_inner None means 4 × n_embd
    return max(256, min(4096, (1 << 20) // max(width, 1)))


def compat_batch_tokens(lm: LoadedMetricModel) -> int:
    """Default tokens per compat pass: GPU 65,536 (one batched pass fills the device instead
    of many small launches); CPU ``cpu_batch_tokens``."""
    if str(lm.device).startswith("cuda"):
        return 65536
    return cpu_batch_tokens(lm.model)


def exact_batch_tokens(lm: LoadedMetricModel) -> int:
    """Default tokens per exact pass: GPU 4,096; CPU ``cpu_batch_tokens``."""
    if str(lm.device).startswith("cuda"):
        return 4096
    return cpu_batch_tokens(lm.model)


def score_compat(lm: LoadedMetricModel, texts: Sequence[str], *, repeats: int = DEFAULT_REPEATS,
                 seed: int = 0, batch_tokens: int | None = None, dropout: bool = True,
                 skip_identical: bool = True, progress=None) -> Scores:
    """The published metric, batched. A model without dropout gives identical passes, so
    one pass stands for all ``repeats`` (SE 0) instead of wasting 99 identical ones.
    ``skip_identical=False`` runs them all anyway (the speed benchmark: equal work)."""
    if batch_tokens is None:
        batch_tokens = compat_batch_tokens(lm)
    reps = repeats if not skip_identical or (dropout and has_dropout(lm.model)) else 1
    sets: list[list[list[int]]] = []
    for t in texts:
        w, c = encode_compat(lm.tokenizer, t)
        sets.extend([w, c])
    v = compat_values(lm, sets, reps, seed=seed, batch_tokens=batch_tokens, dropout=dropout,
                      progress=progress)
    warm_v, cold_v = v[0::2], v[1::2]
    return _compat_scores(warm_v, cold_v, [max(len(s) for s in x) for x in sets[0::2]], lm.label)


def _compat_scores(warm_v: np.ndarray, cold_v: np.ndarray, ntok, label: str) -> Scores:
    """Mean over repeats and SE of the mean (ddof=1, as scipy.stats.sem), per set."""
    r = warm_v.shape[1]

    def sem(a: np.ndarray) -> np.ndarray:
        return a.std(axis=1, ddof=1) / np.sqrt(r) if r > 1 else np.zeros(len(a))

    warm, cold = warm_v.mean(axis=1), cold_v.mean(axis=1)
    se = np.sqrt(sem(warm_v) ** 2 + sem(cold_v) ** 2)
    return Scores(warm - cold, se, warm, cold, np.asarray(ntok), "compat", label)


def reference_compat_score(lm: LoadedMetricModel, text: str, repeats: int = DEFAULT_REPEATS,
                           *, dropout: bool = True) -> tuple[float, float]:
    """The reference algorithm written plainly: one text, one set at a time, one pass per
    repeat through ``model(input_ids, labels=input_ids).loss``. Used by tests and the
    speed benchmark as the yardstick for the batched version."""
    import torch

    w, c = encode_compat(lm.tokenizer, text)
    vals = {}
    was_training = lm.model.training
    lm.model.train(dropout)
    try:
        with torch.no_grad():
            for name, sentences in (("warm", w), ("cold", c)):
                width = max(len(s) for s in sentences)
                x = torch.tensor([s + [COMPAT_PAD_ID] * (width - len(s)) for s in sentences],
                                 device=lm.device)
                vals[name] = np.array([-float(lm.model(input_ids=x, labels=x).loss)
                                       for _ in range(repeats)])
    finally:
        lm.model.train(was_training)
    s = _compat_scores(vals["warm"][None], vals["cold"][None], [0], lm.label)
    return float(s.score[0]), float(s.se[0])


def score_texts(lm: LoadedMetricModel, texts: Sequence[str], method: str = "exact", *,
                repeats: int = DEFAULT_REPEATS, seed: int = 0, batch_tokens: int | None = None,
                progress=None) -> Scores:
    """Score texts with ``exact`` or ``compat``."""
    if method == "exact":
        return score_exact(lm, texts, batch_tokens=batch_tokens, progress=progress)
    if method == "compat":
        return score_compat(lm, texts, repeats=repeats, seed=seed, batch_tokens=batch_tokens,
                            progress=progress)
    raise ValueError(f"unknown SocioT method {method!r} (known: exact, compat)")

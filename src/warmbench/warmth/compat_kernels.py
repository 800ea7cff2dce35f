"""``compat``'s train-mode passes on a CPU: the same arithmetic through cheaper kernels.

The published SocioT metric runs GPT-2 in train mode, so each of its 100 passes per set draws
fresh dropout masks, and no work is shared between passes: the only room for speed is in how
each pass is computed. Profiled on a 2-core Xeon (torch 2.13, tiny GPT-2, 4,096-token batches),
torch's ``bernoulli_`` was 28% of a pass at ~6 ns per element, and most of its elements are
attention probabilities (heads × tokens² per row). ``cpu_compat_kernels(model, seed)`` swaps
three things in for a ``with`` block and puts them back after, even on an error:

1. **Dropout masks from SFC64.** Each ``torch.nn.Dropout`` with p > 0 becomes
   :class:`SFC64Dropout`: an element is dropped when a byte from NumPy's SFC64 generator falls
   below p · 2⁸ (the one byte in 256 on the boundary is settled by a 64-bit word, see
   :meth:`MaskSource.keep`), and kept elements are scaled by 1 / (1 − p), as
   ``torch.nn.functional.dropout`` does. Each element is dropped independently with
   probability p exactly, for p ≥ 2⁻²⁰ (torch's own draw compares a 24-bit float). The mask is
   applied by a NumPy multiply with the bool keep-mask. ~0.6 ns per element to draw and ~0.3 to
   apply, against ~5.4 for torch's ``bernoulli_`` and ~1.25 for its ``masked_fill_``. The
   values differ from torch's for the same seed (another random stream); the distribution
   does not.
2. **Attention** (GPT-2 only, the model the metric is defined on; see ``ATTENTION_MODELS``):
   transformers' attention functions apply probability dropout with ``F.dropout``, not a
   module, so an attention function registered with transformers' ``AttentionInterface``
   (:func:`sfc64_eager_attention`) computes eager attention with the SFC64 masks. It also
   folds the 1/√d scale and the causal mask into one ``baddbmm``, and the 1 / (1 − p)
   rescale into the values (tokens × head width, not tokens²): ``(P ∘ keep / (1 − p)) V =
   (P ∘ keep) (V / (1 − p))``. Probabilities above the diagonal are 0, dropped or not.
3. **GELU**: GPT-2's ``gelu_new`` (``NewGELUActivation``, seven elementwise passes in Python)
   becomes transformers' ``GELUTanh``: the same tanh formula in one fused torch kernel
   (``F.gelu(approximate="tanh")``), half the time; results differ by float rounding
   (≤ 5e-7 absolute on N(0, 3²) inputs).

Only on a CPU. On CUDA torch's dropout is already cheap (Philox, on the device) and masks drawn
on the host would have to be copied over, so nothing is swapped there.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np
import torch

ATTENTION_NAME = "warmbench_sfc64_eager"
# Architectures whose attention this module's function has been checked against (eval-mode
# logits equal to the model's own sdpa path, tests/test_compat_kernels.py). Others keep their
# own attention (and torch's dropout inside it); their dropout modules and GELU are still swapped.
ATTENTION_MODELS = frozenset({"gpt2"})


class MaskSource:
    """Independent keep-masks from one seeded SFC64 stream (deterministic for a seed)."""

    def __init__(self, seed: int) -> None:
        self._bits = np.random.SFC64(seed)

    def keep(self, n: int, p: float) -> np.ndarray:
        """n bools, each False (dropped) with probability p, True (kept) otherwise.

        Two stages, because random bits are most of the cost (NumPy's SFC64 gives ~0.31 ns per
        byte): with t = p · 2⁸, a byte b drops its element when b < ⌊t⌋ and keeps it when
        b > ⌊t⌋; the 1 in 256 elements with b = ⌊t⌋ are settled by a 64-bit word w each,
        dropped when w < (t − ⌊t⌋) · 2⁶⁴. That threshold is a whole number whenever
        t ≥ 2⁻¹², i.e. p ≥ 2⁻²⁰ (t − ⌊t⌋ is then a multiple of 2⁻⁶⁴), so P(drop) is p itself,
        the double; for smaller p it is p to within 2⁻⁷². (torch's own draw compares a 24-bit
        float.)"""
        words = self._bits.random_raw((n + 7) // 8)
        octets = words.view(np.uint8)
        t = p * 256.0
        floor_t = math.floor(t)
        kept = octets >= floor_t
        if t > floor_t:
            # The edge bytes, found 8 at a time: a 64-bit lane of the == mask is non-zero only
            # when one of its 8 bytes is an edge (~3% of lanes), so only those are searched.
            # (NumPy's nonzero is ~3x faster on bools than on uint64s, hence the != 0.)
            edge = octets == floor_t
            lanes = np.flatnonzero(edge.view(np.uint64) != 0)
            if lanes.size:
                hits = np.flatnonzero(edge.reshape(-1, 8).take(lanes, axis=0))
                pos = lanes[hits >> 3] * 8 + (hits & 7)
                threshold = np.uint64(int((t - floor_t) * 2.0**64))
                kept[pos] = self._bits.random_raw(pos.size) >= threshold
        return kept[:n]

    def drop(self, shape: torch.Size, p: float) -> torch.Tensor:
        """A bool tensor of ``shape``: each element True (dropped) with probability p."""
        return torch.from_numpy(~self.keep(math.prod(shape), p)).view(shape)

    def zero_dropped_(self, x: torch.Tensor, p: float) -> torch.Tensor:
        """Each element of ``x`` set to 0 with probability p, in place; ``x`` returned.

        Through NumPy where the tensor allows it: multiplying by the bool keep-mask there is
        ~0.3 ns per element, torch's ``masked_fill_`` ~1.25 (2-core Xeon, 1.2M elements).
        x · 1 = x and x · 0 = ±0, as torch's own dropout (x · mask · scale) gives."""
        view = _numpy_view(x)
        if view is None:
            return x.masked_fill_(self.drop(x.shape, p).to(x.device), 0.0)
        np.multiply(view, self.keep(x.numel(), p).reshape(view.shape), out=view)
        return x

    def apply(self, x: torch.Tensor, p: float) -> torch.Tensor:
        """``F.dropout(x, p, training=True)`` in distribution (a new tensor)."""
        if p <= 0:
            return x
        if p >= 1:
            return torch.zeros_like(x)
        return self.zero_dropped_(x * (1.0 / (1.0 - p)), p)


_NUMPY_DTYPES = frozenset({torch.float16, torch.float32, torch.float64})


def _numpy_view(x: torch.Tensor) -> np.ndarray | None:
    """A NumPy array sharing ``x``'s memory, or None where there should be none: not on the CPU,
    a dtype NumPy lacks (bfloat16), a tensor autograd tracks, or a non-contiguous one (an
    expanded view's elements share memory, so writing through NumPy would alias them)."""
    if (x.device.type != "cpu" or x.requires_grad or x.dtype not in _NUMPY_DTYPES
            or not x.is_contiguous()):
        return None
    return x.numpy()


class SFC64Dropout(torch.nn.Module):
    """Stands in for ``torch.nn.Dropout(p)``: train mode draws from a :class:`MaskSource`."""

    def __init__(self, p: float, source: MaskSource) -> None:
        super().__init__()
        self.p = p
        self.source = source

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.source.apply(x, self.p) if self.training else x

    def extra_repr(self) -> str:
        return f"p={self.p}, SFC64"


# The source for attention dropout, set by ``cpu_compat_kernels`` around its block: a module
# slot because transformers calls the attention function with an attention module we do not own.
_ATTENTION_SOURCE: list[MaskSource] = []


def _causal_bias(tq: int, tk: int, dtype: torch.dtype, device) -> torch.Tensor:
    """(tq, tk) additive mask: 0 where key j ≤ query i, the dtype's minimum above (SDPA's
    upper-left alignment, which is what ``is_causal`` means to the sdpa path it replaces)."""
    upper = torch.ones(tq, tk, dtype=torch.bool, device=device).triu_(1)
    return torch.zeros(tq, tk, dtype=dtype, device=device).masked_fill_(upper, torch.finfo(dtype).min)


def sfc64_eager_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                          is_causal=None, **kwargs):
    """Eager attention whose probability dropout draws from the active :class:`MaskSource`.

    Shapes as in transformers: query (B, H, Tq, D), key/value (B, H, Tk, D) (no grouped-query
    attention: GPT-2 has none, see ``ATTENTION_MODELS``); returns
    ((B, Tq, H, D) contiguous, probabilities). ``attention_mask`` comes from transformers'
    ``sdpa_mask`` (registered for this name): None when the mask is purely causal, else a
    bool (B, 1, Tq, Tk) tensor, True = attend."""
    b, h, tq, d = query.shape
    tk = key.shape[-2]
    if scaling is None:
        scaling = d ** -0.5
    q3 = query.reshape(b * h, tq, d)
    k3 = key.reshape(b * h, tk, d)
    causal = (is_causal if is_causal is not None else getattr(module, "is_causal", True)) and tq > 1
    if attention_mask is None and causal:
        # One (Tq, Tk) bias broadcast over every row and head, fused into the matmul.
        bias = _causal_bias(tq, tk, query.dtype, query.device)
        scores = torch.baddbmm(bias, q3, k3.transpose(1, 2), alpha=scaling).view(b, h, tq, tk)
    else:
        scores = torch.bmm(q3, k3.transpose(1, 2)).mul_(scaling).view(b, h, tq, tk)
        if attention_mask is not None and attention_mask.dtype == torch.bool:
            scores.masked_fill_(~attention_mask[:, :, :, :tk], torch.finfo(scores.dtype).min)
        elif attention_mask is not None:  # an additive float mask
            scores = scores + attention_mask[:, :, :, :tk]
    probs = torch.softmax(scores, dim=-1).type(value.dtype)
    if dropout > 0 and module.training:
        if dropout >= 1:  # everything dropped, as F.dropout(p=1) gives
            probs = torch.zeros_like(probs)
        elif _ATTENTION_SOURCE:
            _ATTENTION_SOURCE[-1].zero_dropped_(probs, dropout)
            value = value * (1.0 / (1.0 - dropout))
        else:  # called outside ``cpu_compat_kernels``: torch's own draw, same distribution
            probs = torch.nn.functional.dropout(probs, p=dropout, training=True)
    out = torch.matmul(probs, value).transpose(1, 2).contiguous()
    return out, probs


def _register_attention() -> bool:
    """Register the attention function and its mask with transformers; False where this
    transformers has no such interfaces (before 4.5x): the model then keeps its own attention."""
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
    except ImportError:
        return False
    AttentionInterface.register(ATTENTION_NAME, sfc64_eager_attention)
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)
    return True


def _swaps_attention(model) -> bool:
    cfg = getattr(model, "config", None)
    return (getattr(cfg, "model_type", None) in ATTENTION_MODELS
            and getattr(cfg, "_attn_implementation", None) in ("sdpa", "eager")
            and hasattr(model, "set_attn_implementation"))


def _gelu_classes() -> tuple[type | None, type | None]:
    """(gelu_new's class, the fused tanh-GELU class) in this transformers, or None (the fused
    class was ``PytorchGELUTanh`` in older releases)."""
    from transformers import activations

    fused = getattr(activations, "GELUTanh", None) or getattr(activations, "PytorchGELUTanh", None)
    return getattr(activations, "NewGELUActivation", None), fused


def _module_swaps(model, source: MaskSource) -> list[tuple[torch.nn.Module, str, torch.nn.Module,
                                                           torch.nn.Module]]:
    """(parent, attribute, original, replacement) for every dropout and gelu_new module."""
    gelu_new, fused_gelu = _gelu_classes()
    out = []
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, torch.nn.Dropout) and child.p > 0:
                new: torch.nn.Module = SFC64Dropout(child.p, source)
            elif fused_gelu is not None and gelu_new is not None and type(child) is gelu_new:
                new = fused_gelu()
            else:
                continue
            new.train(child.training)
            out.append((parent, name, child, new))
    return out


@contextlib.contextmanager
def cpu_compat_kernels(model, seed: int, *, device: str = "cpu") -> Iterator[bool]:
    """Within the block, ``model`` runs its train-mode passes through this module's kernels,
    with dropout drawn from SFC64 seeded with ``seed``. CPU only: yields whether anything was
    swapped. Everything is put back on exit, even on an error."""
    if not str(device).startswith("cpu"):
        yield False
        return
    source = MaskSource(seed)
    swaps = _module_swaps(model, source)
    swap_attention = _swaps_attention(model) and _register_attention()
    old_impl = model.config._attn_implementation if swap_attention else None
    _ATTENTION_SOURCE.append(source)
    try:
        for parent, name, _, new in swaps:
            setattr(parent, name, new)
        if old_impl is not None:
            model.set_attn_implementation(ATTENTION_NAME)
        yield True
    finally:
        _ATTENTION_SOURCE.remove(source)
        if old_impl is not None:
            model.set_attn_implementation(old_impl)
        for parent, name, old, _ in swaps:
            setattr(parent, name, old)

"""compat's CPU kernels: SFC64 dropout has torch's distribution, the attention function and the
fused GELU give the model's own numbers, and everything swapped in is put back."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from warmbench.warmth import compat_kernels as K  # noqa: E402
from warmbench.warmth import sociot as S  # noqa: E402
from warmbench.warmth.metric_model import load_metric_model  # noqa: E402


@pytest.fixture(scope="module")
def lm(tiny_gpt2_lm):
    return tiny_gpt2_lm


def _modules(model) -> list[str]:
    return [type(m).__name__ for m in model.modules()]


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_mask_source_keeps_each_element_with_probability_one_minus_p(p):
    src = K.MaskSource(0)
    x = torch.ones(1_000_003)
    y = src.apply(x, p)
    kept = y != 0
    # Binomial: the kept share is within 5 standard deviations of 1 − p.
    sd = np.sqrt(p * (1 - p) / x.numel())
    assert abs(float(kept.float().mean()) - (1 - p)) < 5 * sd
    # Kept elements are scaled exactly as F.dropout scales them.
    assert torch.equal(y[kept], torch.full_like(y[kept], 1.0 / (1.0 - p)))
    # Successive draws are different masks; the same seed gives the same masks.
    assert not torch.equal(kept, src.apply(x, p) != 0)
    assert torch.equal(kept, K.MaskSource(0).apply(x, p) != 0)


def test_mask_source_edge_probabilities():
    src = K.MaskSource(1)
    x = torch.randn(3, 5)
    assert src.apply(x, 0.0) is x
    assert torch.equal(src.apply(x, 1.0), torch.zeros_like(x))
    drop = src.drop(torch.Size([4, 6, 7]), 0.25)
    assert drop.shape == (4, 6, 7) and drop.dtype == torch.bool


def test_mask_source_boundary_byte_is_settled_by_a_64_bit_word():
    # The rule, rebuilt from the same SFC64 stream: bytes below ⌊p · 2⁸⌋ = 25 drop, bytes
    # above keep, and each byte equal to 25 (in order) is settled by the next 64-bit word,
    # dropped when below (0.1 · 2⁸ − 25) · 2⁶⁴, so that P(drop) = 0.1 exactly.
    n, p = 1 << 20, 0.1
    bits = np.random.SFC64(9)
    octets = bits.random_raw(n // 8).view(np.uint8)
    edge = np.flatnonzero(octets == 25)
    want = octets < 25
    want[edge] = bits.random_raw(edge.size) < np.uint64(int((p * 256 - 25) * 2.0**64))
    assert edge.size > 0 and torch.equal(K.MaskSource(9).drop(torch.Size([n]), p),
                                         torch.from_numpy(want))
    # p · 2⁸ = 0.5: no byte is below ⌊t⌋ = 0, so every drop is a settled zero byte: rate
    # 0.5 / 2⁸, not 0 (one stage, rounding down) or 1 / 2⁸ (rounding up).
    p = 0.5 / 256
    n = 4_000_000
    dropped = K.MaskSource(2).drop(torch.Size([n]), p).numpy()
    assert abs(int(dropped.sum()) - n * p) < 5 * np.sqrt(n * p)  # ~7,813 ± 88
    assert not np.random.SFC64(2).random_raw(n // 8).view(np.uint8)[dropped].any()
    # A p whose t is a whole number needs no second stage: exactly the bytes below t.
    ref = np.random.SFC64(5).random_raw(125_000).view(np.uint8)[:999_999] < 64
    assert torch.equal(K.MaskSource(5).drop(torch.Size([999_999]), 0.25), torch.from_numpy(ref))


def test_zero_dropped_gives_the_same_mask_without_numpy():
    # bfloat16 (no NumPy dtype), autograd-tracked and non-contiguous tensors take torch's
    # masked_fill_; the same seed must drop the same elements as the NumPy path, and only those.
    x = torch.ones(5, 7, 11)
    fast = K.MaskSource(7).zero_dropped_(x.clone(), 0.3)
    half = K.MaskSource(7).zero_dropped_(x.to(torch.bfloat16), 0.3)
    tracked = K.MaskSource(7).zero_dropped_(x.clone().requires_grad_().clone(), 0.3)
    strided = K.MaskSource(7).zero_dropped_(torch.ones(11, 7, 5).transpose(0, 2), 0.3)
    assert 0 < int((fast == 0).sum()) < x.numel()
    assert torch.equal(fast == 0, half == 0) and torch.equal(fast == 0, tracked == 0)
    assert torch.equal(fast == 0, strided == 0)
    assert set(fast.unique().tolist()) == {0.0, 1.0}


def test_kernels_give_the_models_own_numbers_in_eval_mode(lm):
    """Dropout off: the swapped attention (fused scale + causal mask) and GELU reproduce the
    model's sdpa logits, with and without a padding mask."""
    model = lm.model
    model.eval()
    x = torch.randint(1, 200, (3, 19))
    pad = torch.ones_like(x)
    pad[1, 13:] = 0
    with torch.inference_mode():
        want, want_padded = model(x).logits, model(x, attention_mask=pad).logits
        with K.cpu_compat_kernels(model, seed=0) as swapped:
            assert swapped and model.config._attn_implementation == K.ATTENTION_NAME
            got, got_padded = model(x).logits, model(x, attention_mask=pad).logits
    torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(got_padded[1, :13], want_padded[1, :13], atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(got_padded[0], want_padded[0], atol=2e-5, rtol=1e-5)


def test_kernels_are_put_back_even_after_an_error(lm):
    model = lm.model
    before, impl = _modules(model), model.config._attn_implementation
    with pytest.raises(RuntimeError, match="boom"), K.cpu_compat_kernels(model, seed=0):
        assert "SFC64Dropout" in _modules(model) and "GELUTanh" in _modules(model)
        assert "Dropout" not in _modules(model) and "NewGELUActivation" not in _modules(model)
        raise RuntimeError("boom")
    assert _modules(model) == before and model.config._attn_implementation == impl
    assert not K._ATTENTION_SOURCE


def test_nothing_is_swapped_on_cuda(lm):
    before = _modules(lm.model)
    with K.cpu_compat_kernels(lm.model, seed=0, device="cuda:0") as swapped:
        assert not swapped and _modules(lm.model) == before


def test_other_architectures_keep_their_own_attention(tiny_llama):
    """Only GPT-2's attention has been checked against this function: a Llama keeps sdpa."""
    m = load_metric_model(str(tiny_llama), device="cpu").model
    impl = m.config._attn_implementation
    with K.cpu_compat_kernels(m, seed=0) as swapped:
        assert swapped and m.config._attn_implementation == impl


def test_train_mode_passes_are_seeded_and_independent(lm):
    """Dropout on: every pass draws new masks; the same seed gives the same passes."""
    sets = [S.encode_compat(lm.tokenizer, "Take care of yourself, my dear.")[0]]
    v = S.compat_values(lm, sets, 6, seed=5)
    assert len(set(np.round(v[0], 12))) == 6
    np.testing.assert_array_equal(v, S.compat_values(lm, sets, 6, seed=5))
    assert not np.array_equal(v, S.compat_values(lm, sets, 6, seed=6))


def test_kernel_passes_have_the_reference_distribution(lm):
    """Mean and spread of 300 train-mode passes through the kernels match 300 passes of the
    reference (torch's own dropout and attention): same expectation within 4 SE, standard
    deviations within 25%."""
    sets = [S.encode_compat(lm.tokenizer, "Oh, I'm so glad you asked! I'd love to help.")[0]]
    ours = S.compat_values(lm, sets, 300, seed=11)[0]
    width = max(map(len, sets[0]))
    x = torch.tensor([s + [0] * (width - len(s)) for s in sets[0]])
    lm.model.train()
    torch.manual_seed(12)
    try:
        with torch.no_grad():
            ref = np.array([-float(lm.model(input_ids=x, labels=x).loss) for _ in range(300)])
    finally:
        lm.model.eval()
    se = np.hypot(ours.std(ddof=1), ref.std(ddof=1)) / np.sqrt(300)
    assert abs(ours.mean() - ref.mean()) < 4 * se
    assert 0.75 < ours.std(ddof=1) / ref.std(ddof=1) < 1.33


def test_attention_dropout_is_unbiased_with_torchs_spread():
    """The attention function's probability dropout, over 4,000 draws: the mean output equals
    the no-dropout output (dropout keeps the expectation), and each element's spread matches
    the same attention computed with torch's own ``F.dropout``."""
    import types

    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 6, 4) for _ in range(3))
    module = types.SimpleNamespace(training=True, is_causal=True)
    plain, _ = K.sfc64_eager_attention(module, q, k, v, None, dropout=0.0)
    scores = (q @ k.transpose(-1, -2)) / 2 + torch.full((6, 6), float("-inf")).triu(1)
    probs = scores.softmax(-1)
    torch.testing.assert_close(plain, (probs @ v).transpose(1, 2))
    K._ATTENTION_SOURCE.append(K.MaskSource(3))
    try:
        ours = torch.stack([K.sfc64_eager_attention(module, q, k, v, None, dropout=0.3)[0]
                            for _ in range(4000)])
    finally:
        K._ATTENTION_SOURCE.pop()
    theirs = torch.stack([(torch.nn.functional.dropout(probs, 0.3, True) @ v).transpose(1, 2)
                          for _ in range(4000)])
    K._ATTENTION_SOURCE.append(K.MaskSource(4))
    try:
        everything, _ = K.sfc64_eager_attention(module, q, k, v, None, dropout=1.0)
    finally:
        K._ATTENTION_SOURCE.pop()
    assert torch.equal(everything, torch.zeros_like(everything))
    se = theirs.std(0) / np.sqrt(4000)
    assert float(((ours.mean(0) - plain).abs() / se).max()) < 5
    ratio = ours.std(0) / theirs.std(0)
    assert float(ratio.min()) > 0.9 and float(ratio.max()) < 1.1


def test_older_transformers_keep_attention_and_gelu(lm, monkeypatch):
    """Without transformers' attention interfaces or the fused GELU class (older releases) the
    model keeps its own attention and activation; dropout modules are still swapped."""
    monkeypatch.setattr(K, "_register_attention", lambda: False)
    monkeypatch.setattr(K, "_gelu_classes", lambda: (None, None))
    impl = lm.model.config._attn_implementation
    with K.cpu_compat_kernels(lm.model, seed=0):
        names = _modules(lm.model)
        assert lm.model.config._attn_implementation == impl
        assert "NewGELUActivation" in names and "SFC64Dropout" in names

"""SocioT warmth on a tiny random-weight GPT-2: exact vs a per-text loop, compat vs the
reference algorithm, determinism, bootstrap CIs."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from warmbench.warmth import sociot as S  # noqa: E402
from warmbench.warmth.metric_model import resolve_metric_model  # noqa: E402
from warmbench.warmth.summary import bootstrap_ci, summarise  # noqa: E402

TEXTS = [
    "Oh, I'm so glad you asked! I'd love to help you with this.",
    "Answer: 42.",
    "",
    "Take care of yourself, my dear. " * 12,  # > 300 characters: truncated
    '"Quoted" text starting with a quote.',
]


@pytest.fixture(scope="module")
def lm(tiny_gpt2_lm):
    return tiny_gpt2_lm


def _loop_logprob(lm, prefix: list[int], text: list[int]) -> float:
    """Sum of log p(text tokens | prefix) from one unpadded forward pass."""
    ids = torch.tensor([prefix + text])
    with torch.no_grad():
        logp = lm.model(ids).logits.log_softmax(-1)[0]
    return sum(float(logp[k - 1, ids[0, k]]) for k in range(len(prefix), ids.shape[1]))


def test_exact_matches_per_text_loop(lm):
    lp, ntok = S.context_logprobs(lm, TEXTS, batch_tokens=300)  # several small batches
    prefixes, text_ids = S.encode_exact(lm.tokenizer, TEXTS)
    lm.model.eval()
    for i, ids in enumerate(text_ids):
        if not ids:
            assert ntok[i] == 0 and np.isnan(lp[i]).all()
            continue
        for j in range(8):
            assert lp[i, j] == pytest.approx(_loop_logprob(lm, prefixes[j], ids), abs=1e-4)
    # Hand-check the combination for one text: log-mean-exp per set, per token.
    s = S.score_exact(lm, TEXTS)
    i = 0
    warm = np.log(np.mean(np.exp(lp[i, :4]))) / ntok[i]
    cold = np.log(np.mean(np.exp(lp[i, 4:]))) / ntok[i]
    assert s.score[i] == pytest.approx(warm - cold, abs=1e-9)
    assert np.isnan(s.score[2])  # the empty text has no tokens and no score
    assert s.method == "exact" and s.metric_model == lm.label


def test_exact_tokenisation_is_the_texts_own(lm):
    prefixes, text_ids = S.encode_exact(lm.tokenizer, TEXTS)
    # The byte tokenizer: one token per UTF-8 byte of the first 300 characters.
    assert len(text_ids[3]) == 300
    assert prefixes[0] == lm.tokenizer('My friend said, "', add_special_tokens=False)["input_ids"]
    assert len(prefixes) == 8


def test_exact_is_deterministic_and_batch_invariant(lm):
    a = S.score_exact(lm, TEXTS, batch_tokens=10_000).score
    b = S.score_exact(lm, TEXTS, batch_tokens=120).score
    c = S.score_exact(lm, TEXTS[::-1], batch_tokens=500).score[::-1]
    np.testing.assert_allclose(a, b, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(a, c, atol=1e-6, equal_nan=True)
    assert not lm.model.training


def test_log_mean_exp():
    a = np.array([[-1000.0, -1000.0], [0.0, np.log(3.0)]])
    np.testing.assert_allclose(S.log_mean_exp(a), [-1000.0, np.log(2.0)])


def test_compat_batched_equals_reference_in_eval_mode(lm):
    texts = [t for t in TEXTS if t][:3]
    batched = S.score_compat(lm, texts, repeats=3, dropout=False, batch_tokens=200)
    for i, t in enumerate(texts):
        ref, se = S.reference_compat_score(lm, t, repeats=1, dropout=False)
        assert batched.score[i] == pytest.approx(ref, abs=1e-6)
        assert se == 0.0
    assert batched.method == "compat"
    # Hand check: value = −mean CE over the whole padded 4-row batch, context and padding in.
    w, _ = S.encode_compat(lm.tokenizer, texts[1])
    width = max(map(len, w))
    x = torch.tensor([s + [0] * (width - len(s)) for s in w])
    lm.model.eval()
    with torch.no_grad():
        logits = lm.model(x).logits[:, :-1]
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
    assert batched.warm[1] == pytest.approx(-float(ce), abs=1e-6)


def test_compat_with_dropout_matches_reference_statistically(lm):
    text = TEXTS[0]
    assert S.has_dropout(lm.model)
    torch.manual_seed(1)
    ref, ref_se = S.reference_compat_score(lm, text, repeats=60)
    b = S.score_compat(lm, [text], repeats=60, seed=2)
    assert b.se[0] > 0 and ref_se > 0
    # Same expectation: the difference is within 4 combined standard errors.
    assert abs(b.score[0] - ref) < 4 * np.hypot(b.se[0], ref_se)
    # Repeats are independent draws (dropout on), not one pass copied.
    v = S.compat_values(lm, [S.encode_compat(lm.tokenizer, text)[0]], 5, seed=3)
    assert len(set(np.round(v[0], 12))) == 5
    again = S.compat_values(lm, [S.encode_compat(lm.tokenizer, text)[0]], 5, seed=3)
    np.testing.assert_array_equal(v, again)  # seeded: reproducible


def test_head_chunks_do_not_change_log_probs(lm):
    """The LM head runs in cache-sized chunks of positions; any chunking gives the same numbers."""
    prefixes, text_ids = S.encode_exact(lm.tokenizer, TEXTS[:2])
    ids = [prefixes[0] + text_ids[0], prefixes[5] + text_ids[1]]
    tg = [np.arange(len(prefixes[0]), len(ids[0])), np.arange(len(prefixes[5]), len(ids[1]))]
    lm.model.eval()
    with torch.inference_mode():
        whole = S._token_logprobs(lm, ids, tg, pad_id=0, use_mask=True)
        small = S._token_logprobs(lm, ids, tg, pad_id=0, use_mask=True, chunk=7)
    for a, b in zip(whole, small, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    # CPU: ~8 MB of logits per chunk (2**21 floats), 128 to 2,048 positions.
    assert S._head_chunk(4096) == 512 and S._head_chunk(16_384) == 128
    assert S._head_chunk(262_144) == 128 and S._head_chunk(50_257) == 128 and S._head_chunk(300) == 2048
    assert S._head_chunk(262_144, "cuda:0") == 512


def test_in_place_head_gives_cross_entropys_bits(lm):
    """One reused logits buffer, log-softmaxed in place, gives the same bits as
    -cross_entropy(head(x)) for every chunk, the short last one included."""
    head = lm.model.get_output_embeddings()
    gen = torch.Generator().manual_seed(0)
    picked = torch.randn(23, head.weight.shape[1], generator=gen)
    labels = torch.randint(0, head.weight.shape[0], (23,), generator=gen)
    assert S._in_place_head(head, picked)
    with torch.inference_mode():
        fast = torch.cat(S._head_logprobs(head, picked, labels, 10, in_place=True))
        plain = torch.cat(S._head_logprobs(head, picked, labels, 10, in_place=False))
        whole = -torch.nn.functional.cross_entropy(head(picked), labels, reduction="none")
    assert torch.equal(fast, plain) and torch.equal(fast, whole)
    assert not S._in_place_head(head, picked.half())  # other dtypes take cross_entropy's path


def test_compat_batch_follows_device_and_width():
    """CPU: batches capped by the widest activation (GPT-2 small: about one 4-sentence set),
    since bigger ones only fall out of cache; GPU: one big batch."""
    from types import SimpleNamespace as NS

    from transformers import GPT2Config, LlamaConfig

    def bt(cfg, device="cpu"):
        return S.compat_batch_tokens(NS(device=device, model=NS(config=cfg)))

    assert bt(GPT2Config()) == 341  # n_inner None: 4 × 768
    assert bt(GPT2Config(n_embd=64)) == 4096
    assert bt(LlamaConfig(hidden_size=576, intermediate_size=1536)) == 682
    assert bt(GPT2Config(), "cuda:0") == 65536
    gpt2 = NS(device="cpu", model=NS(config=GPT2Config()))
    assert S.exact_batch_tokens(gpt2) == 341
    assert S.exact_batch_tokens(NS(device="cuda", model=gpt2.model)) == 4096


def test_compat_skips_identical_passes_unless_asked(lm, monkeypatch):
    """Without dropout every pass is the same: one stands for all, unless the benchmark asks
    for equal work (skip_identical=False)."""
    calls = []
    real = S.compat_values
    monkeypatch.setattr(S, "compat_values", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    monkeypatch.setattr(S, "has_dropout", lambda model: False)
    one = S.score_compat(lm, TEXTS[:1], repeats=4)
    S.score_compat(lm, TEXTS[:1], repeats=4, skip_identical=False)
    assert calls == [1, 4] and one.se[0] == 0.0


def test_unknown_method(lm):
    with pytest.raises(ValueError, match="unknown SocioT method"):
        S.score_texts(lm, ["x"], "nope")


def test_bootstrap_ci_is_seeded_and_sensible():
    rng = np.random.default_rng(0)
    v = rng.normal(0.02, 0.01, size=400)
    m, lo, hi = bootstrap_ci(v, n_boot=2000, seed=5)
    assert (m, lo, hi) == bootstrap_ci(v, n_boot=2000, seed=5)
    assert lo < m < hi
    # Width ≈ 2 × 1.96 × SE of the mean.
    assert hi - lo == pytest.approx(2 * 1.96 * v.std(ddof=1) / np.sqrt(len(v)), rel=0.15)
    m2, lo2, hi2 = bootstrap_ci([1.0, np.nan, 3.0], n_boot=100)
    assert m2 == 2.0 and 1.0 <= lo2 <= hi2 <= 3.0
    assert np.isnan(bootstrap_ci([np.nan])[0])


def test_summarise_groups():
    import pandas as pd

    df = pd.DataFrame({"arm": ["a", "a", "b", "b", "b"], "score": [1.0, 3.0, 0.0, np.nan, 2.0]})
    s = summarise(df, ["arm"], n_boot=200)
    assert s["arm"].tolist() == ["a", "b"]
    assert s["n"].tolist() == [2, 2]
    assert s["mean"].tolist() == [2.0, 1.0]


def test_metric_model_resolution(tmp_path, monkeypatch):
    m = resolve_metric_model(str(tmp_path))
    assert m.path == str(tmp_path) and m.stand_in  # a folder is not GPT-2 by default
    assert m.label == f"{tmp_path} (stand-in for gpt2)"
    monkeypatch.setenv("WARMBENCH_WARMTH_MODEL", str(tmp_path))
    assert resolve_metric_model("auto").path == str(tmp_path)
    monkeypatch.delenv("WARMBENCH_WARMTH_MODEL")
    from warmbench.warmth import metric_model as mm

    monkeypatch.setattr(mm, "gpt2_in_cache", lambda: False)
    monkeypatch.setattr(mm, "_resolve_embedded", lambda name: f"/models/{name}")
    auto = resolve_metric_model("auto")
    assert auto.stand_in and auto.name == "gemma3-270m"
    assert auto.label == "gemma3-270m (offline stand-in for gpt2)"
    monkeypatch.setattr(mm, "gpt2_in_cache", lambda: True)
    assert resolve_metric_model("auto").label == "gpt2"


@pytest.mark.parametrize("name", ["smollm2-135m", "gemma3-270m", "EleutherAI/pythia-70m",
                                  "distilgpt2"])
def test_every_non_gpt2_model_is_labelled_a_stand_in(name, monkeypatch):
    from warmbench.warmth import metric_model as mm

    monkeypatch.setattr(mm, "_resolve_embedded", lambda n: f"/models/{n}")
    m = resolve_metric_model(name)  # named explicitly, still not GPT-2
    assert m.stand_in and m.label == f"{name} (stand-in for gpt2)"


@pytest.mark.parametrize("name", ["gpt2", "openai-community/gpt2", "gpt2-medium",
                                  "openai-community/gpt2-xl"])
def test_gpt2_family_is_not_a_stand_in(name):
    m = resolve_metric_model(name)
    assert not m.stand_in and m.label == name


def test_gpt2_cache_snapshot_folder_is_gpt2(tmp_path):
    snap = tmp_path / "hub" / "models--openai-community--gpt2" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    assert not resolve_metric_model(str(snap)).stand_in
    other = tmp_path / "hub" / "models--HuggingFaceTB--SmolLM2-135M" / "snapshots" / "abc"
    other.mkdir(parents=True)
    assert resolve_metric_model(str(other)).stand_in

"""The hf backend on a tiny random llama (fast) and the embedded SmolLM2 (slow)."""

from __future__ import annotations

import shutil

import pytest

from warmbench.backends import get_backend
from warmbench.backends import hf as hfmod
from warmbench.errors import WarmbenchError
from warmbench.records import ChatRequest, SamplingParams

QUESTIONS = ["hi", "What is the capital of France?", "2+2?",
             "Tell me a long story about a cat who learned to fly over the sea.", "ok"]


def _reqs():
    return [ChatRequest.from_user(q, system="Be brief." if i % 2 else None)
            for i, q in enumerate(QUESTIONS)]


@pytest.fixture
def private_llama(tiny_llama, tmp_path):
    """A copy of the tiny model at its own path: tests that mutate it don't touch the cache."""
    dst = tmp_path / "llama-copy"
    shutil.copytree(tiny_llama, dst)
    return dst


def test_batched_greedy_matches_one_at_a_time(tiny_llama):
    params = SamplingParams(max_tokens=8)
    batched = get_backend(f"hf:{tiny_llama}", batch_size=4)
    single = get_backend(f"hf:{tiny_llama}", batch_size=1)
    seen: list[int] = []
    a = batched.generate(_reqs(), params, on_result=lambda i, c: seen.append(i))
    b = single.generate(_reqs(), params)
    assert sorted(seen) == list(range(len(QUESTIONS)))  # one callback per request
    assert [c.text for c in a] == [c.text for c in b]
    for c in a:
        assert c.ok and c.finish_reason == "length" and c.usage.completion_tokens == 8
    # Prompt tokens are the rendered template length, without the padding.
    tok = batched._loaded.tokenizer
    for req, c in zip(_reqs(), a, strict=True):
        assert c.usage.prompt_tokens == len(tok(batched._render(req), add_special_tokens=False)
                                            ["input_ids"])
    # Longest prompt is padded least: the shortest's count is far below the longest's.
    assert a[3].usage.prompt_tokens > 3 * a[4].usage.prompt_tokens


def test_base_model_is_loaded_once(tiny_llama):
    a = get_backend(f"hf:{tiny_llama}")
    b = get_backend(f"hf:{tiny_llama}", batch_size=2)
    assert a._loaded is b._loaded


def test_sampling_is_seeded(tiny_llama):
    b = get_backend(f"hf:{tiny_llama}")
    p = SamplingParams(temperature=1.0, max_tokens=12, seed=7)
    r1 = [c.text for c in b.generate(_reqs(), p)]
    r2 = [c.text for c in b.generate(_reqs(), p)]
    r3 = [c.text for c in b.generate(_reqs(), p, sample_index=1)]
    assert r1 == r2
    assert r1 != r3


def test_eos_gives_stop_and_counts_it(private_llama):
    import torch

    b = get_backend(f"hf:{private_llama}")
    req = ChatRequest.from_user("hello")
    tok, model = b._loaded.tokenizer, b._loaded.model
    enc = tok(b._render(req), add_special_tokens=False, return_tensors="pt")
    with torch.no_grad():
        first = int(model(**enc).logits[0, -1].argmax())
    # Make the token greedy decoding picks first the end-of-sequence token.
    model.generation_config.eos_token_id = [first]
    (c,) = b.generate([req], SamplingParams(max_tokens=5))
    assert c.finish_reason == "stop" and c.text == "" and c.usage.completion_tokens == 1


def test_system_role_merged_when_template_rejects_it(private_llama):
    b = get_backend(f"hf:{private_llama}")
    b._loaded.tokenizer.chat_template = (
        "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
        "{% endif %}{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
        "<|im_end|>\n{% endfor %}<|im_start|>assistant\n"
    )
    text = b._render(ChatRequest.from_user("Capital of France?", system="Answer tersely."))
    assert text.startswith("<|im_start|>user\nAnswer tersely.\n\nCapital of France?")
    (c,) = b.generate([ChatRequest.from_user("x", system="sys")], SamplingParams(max_tokens=2))
    assert c.ok


def test_too_long_prompt_is_a_stored_failure_not_a_crash(tiny_llama):
    b = get_backend(f"hf:{tiny_llama}")
    long = ChatRequest.from_user("x" * 3000)  # byte tokenizer: 3000 tokens > 2048 positions
    got = b.generate([long, ChatRequest.from_user("hi")], SamplingParams(max_tokens=4))
    assert not got[0].ok and "exceeds" in got[0].error
    assert got[1].ok


def test_adapters_share_one_base(tiny_llama, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from warmbench.backends.hf import clear_cache
    from warmbench.quiet import silence_peft_deprecations

    clear_cache()  # counts adapters on the shared base: not those attached by earlier tests
    silence_peft_deprecations()  # this test builds its adapters with peft directly
    dirs = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        base = AutoModelForCausalLM.from_pretrained(tiny_llama)
        # init_lora_weights=False: random B, so the adapter really changes outputs.
        pm = get_peft_model(base, LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj",
                                                                                 "o_proj"],
                                             init_lora_weights=False))
        d = tmp_path / f"adapter{seed}"
        pm.save_pretrained(d)
        dirs.append(d)
    params = SamplingParams(max_tokens=10)
    reqs = _reqs()[:3]
    plain = get_backend(f"hf:{tiny_llama}")
    before = [c.text for c in plain.generate(reqs, params)]
    a1 = get_backend(f"hf:{tiny_llama}+{dirs[0]}")
    a2 = get_backend(f"hf:{tiny_llama}+{dirs[1]}")
    assert a1._loaded is plain._loaded is a2._loaded
    assert len(plain._loaded.adapters) == 2
    out1 = [c.text for c in a1.generate(reqs, params)]
    out2 = [c.text for c in a2.generate(reqs, params)]
    after = [c.text for c in plain.generate(reqs, params)]
    assert after == before  # adapters are switched off for the plain base
    assert out1 != before and out2 != out1
    assert [c.text for c in a1.generate(reqs, params)] == out1  # switching back works


def test_bad_adapter_and_model_are_one_line_errors(tiny_llama, tmp_path):
    with pytest.raises(WarmbenchError, match="adapter_config.json"):
        get_backend(f"hf:{tiny_llama}+{tmp_path / 'nope'}")
    lazy = get_backend(f"hf:{tmp_path / 'no-model-here'}")  # nothing is loaded until needed
    with pytest.raises(WarmbenchError, match="cannot load model"):
        lazy.generate([ChatRequest.from_user("hi")], SamplingParams(max_tokens=2))


def test_warm_store_never_loads_the_model(tiny_llama, tmp_path):
    from warmbench.generation import cached_generate
    from warmbench.store import RunStore

    reqs, params = _reqs(), SamplingParams(max_tokens=4)
    with RunStore(tmp_path / "run") as store:
        first = cached_generate(store, get_backend(f"hf:{tiny_llama}"), reqs, params, kind="t")
        again = get_backend(f"hf:{tiny_llama}")
        second = cached_generate(store, again, reqs, params, kind="t")
    assert again._state is None
    assert [c.text for c in first] == [c.text for c in second]


def test_model_without_chat_template_gets_transcript_and_bos(private_llama):
    b = get_backend(f"hf:{private_llama}")
    tok = b._loaded.tokenizer
    tok.chat_template = None
    req = ChatRequest.from_user("Capital of France?", system="Be brief.")
    assert b._render(req) == "System: Be brief.\n\nUser: Capital of France?\n\nAssistant:"
    ids = b._encode(req)
    plain = tok(b._render(req), add_special_tokens=False)["input_ids"]
    # Whatever the tokenizer adds by default (BOS for Gemma) is kept for a plain transcript.
    assert ids == tok(b._render(req))["input_ids"] and ids[-len(plain):] == plain
    assert b.generate([req], SamplingParams(max_tokens=3))[0].ok


@pytest.mark.slow
def test_embedded_smollm2_answers():
    b = get_backend("hf:smollm2-135m")
    got = b.generate([ChatRequest.from_user("What is the capital of France?")],
                     SamplingParams(max_tokens=24))
    assert got[0].finish_reason == "stop" and "Paris" in got[0].text
    hfmod.clear_cache()


def test_sampling_is_per_request_whatever_the_batch(tiny_llama):
    """A resumed run regenerates missing rows in other batches: each must sample the same text."""
    from warmbench.backends import get_backend
    from warmbench.records import ChatRequest, SamplingParams

    be = get_backend(f"hf:{tiny_llama}", batch_size=8)
    reqs = [ChatRequest.from_user(f"question number {i} " + "x" * (i * 3)) for i in range(6)]
    p = SamplingParams(temperature=1.0, max_tokens=12, seed=7)
    together = [c.text for c in be.generate(reqs, p)]
    alone = [be.generate([r], p)[0].text for r in reqs]
    reordered = [c.text for c in be.generate(list(reversed(reqs)), p)][::-1]
    assert together == alone == reordered
    # Another sample index or seed gives other samples (the noise is really used).
    other = [c.text for c in be.generate(reqs, p, sample_index=1)]
    assert other != together


def test_token_budget_splits_long_batches(tiny_llama):
    from warmbench.backends import get_backend

    be = get_backend(f"hf:{tiny_llama}", batch_size=16, max_batch_tokens=400)
    enc = [[0] * n for n in (300, 100, 90, 80, 10, 10)]
    batches = be._batches([0, 1, 2, 3, 4, 5], enc, max_new=20)
    assert batches[0] == [0]                      # 320 tokens wide: alone
    assert all(len(b) * (len(enc[b[0]]) + 20) <= 400 for b in batches[1:])
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3, 4, 5]


def test_constrained_choices_are_the_exact_likeliest_continuation(tiny_llama):
    """`SamplingParams.choices`: the padded, batched log-probabilities equal an unpadded
    one-row-at-a-time computation, and the reply is the argmax choice, in any batch."""
    import torch

    from warmbench.backends.hf_choice import choice_logprobs, choice_token_ids

    choices = ("VERDICT: CORRECT", "VERDICT: INCORRECT", "no")
    be = get_backend(f"hf:{tiny_llama}", batch_size=4)
    enc = [be._encode(r) for r in _reqs()]
    model, tok = be._loaded.model, be._loaded.tokenizer
    cids = choice_token_ids(tok, choices)
    got = choice_logprobs(model, tok, enc, cids, "cpu")
    for p, scores in zip(enc, got, strict=True):
        for c, s in zip(cids, scores, strict=True):
            ids = torch.tensor([p + c])
            with torch.inference_mode():
                lp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
            ref = sum(float(lp[len(p) - 1 + t, c[t]]) for t in range(len(c)))
            assert s == pytest.approx(ref, abs=1e-4)
    params = SamplingParams(max_tokens=16, choices=choices)
    out = be.generate(_reqs(), params)
    want = [choices[max(range(3), key=lambda j, s=s: s[j])] for s in got]
    assert [c.text for c in out] == want and all(c.finish_reason == "stop" for c in out)
    one = get_backend(f"hf:{tiny_llama}", batch_size=1).generate(_reqs(), params)
    assert [c.text for c in one] == want


def test_api_backends_refuse_choices():
    from warmbench.backends.base import refuse_choices
    from warmbench.backends.spec import parse_spec

    with pytest.raises(WarmbenchError, match="constrained choices .* need a local backend"):
        refuse_choices(parse_spec("openai:gpt-4o-mini"), SamplingParams(choices=("a", "b")))
    refuse_choices(parse_spec("openai:gpt-4o-mini"), SamplingParams())   # free generation: fine

"""The vllm backend's request mapping, tested with a fake ``vllm`` module (no GPU, no vLLM)."""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import types
from dataclasses import dataclass, field

import pytest

from warmbench.backends import get_backend
from warmbench.backends import vllm_backend as vb
from warmbench.backends.base import request_seed
from warmbench.errors import MissingExtraError, WarmbenchError
from warmbench.records import ChatRequest, SamplingParams


@dataclass
class _Out:
    text: str
    token_ids: list[int]
    finish_reason: str | None


@dataclass
class _ReqOut:
    prompt_token_ids: list[int]
    outputs: list[_Out] = field(default_factory=list)


class _FakeSamplingParams:
    def __init__(self, **kw):
        self.kw = kw


class _FakeLoRARequest:
    def __init__(self, lora_name, lora_int_id, lora_path):
        self.lora_name, self.lora_int_id, self.lora_path = lora_name, lora_int_id, lora_path


class _FakeLLM:
    instances: list[_FakeLLM] = []

    def __init__(self, **kw):
        self.kw = kw
        self.calls: list[dict] = []
        _FakeLLM.instances.append(self)

    def chat(self, messages, sampling_params=None, use_tqdm=True, lora_request=None, **_):
        # one SamplingParams per conversation (each request carries its own seed)
        assert isinstance(sampling_params, list) and len(sampling_params) == len(messages)
        kws = [sp.kw for sp in sampling_params]
        self.calls.append({"messages": messages, "sampling": kws[0], "samplings": kws,
                           "lora": lora_request})
        tag = f"[{lora_request.lora_name}#{lora_request.lora_int_id}]" if lora_request else "[base]"
        outs = []
        if any(conv[-1]["content"] == "BOOM" for conv in messages):
            raise RuntimeError("engine exploded")
        for conv in messages:
            words = f"{tag} {conv[-1]['content']}".split()
            limit = kws[0]["max_tokens"]
            finish = "length" if len(words) > limit else "stop"
            if conv[-1]["content"] == "ABORT":
                finish = "abort"
            text = " ".join(words[:limit])
            outs.append(_ReqOut(prompt_token_ids=list(range(sum(len(m["content"]) for m in conv))),
                                outputs=[_Out(text, list(range(len(text.split()))), finish)]))
        return outs


@pytest.fixture()
def fake_vllm(monkeypatch):
    mod = types.ModuleType("vllm")
    mod.LLM = _FakeLLM
    mod.SamplingParams = _FakeSamplingParams
    lora = types.ModuleType("vllm.lora")
    req = types.ModuleType("vllm.lora.request")
    req.LoRARequest = _FakeLoRARequest
    mod.lora, lora.request = lora, req
    monkeypatch.setitem(sys.modules, "vllm", mod)
    monkeypatch.setitem(sys.modules, "vllm.lora", lora)
    monkeypatch.setitem(sys.modules, "vllm.lora.request", req)
    _FakeLLM.instances.clear()
    monkeypatch.setattr(vb, "_ENGINES", {})
    return mod


def _adapter(path, r=16, weights=b"w1"):
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_config.json").write_text(json.dumps({"r": r, "lora_alpha": 32}))
    (path / "adapter_model.safetensors").write_bytes(weights)
    return path


def test_missing_vllm_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import fails
    with pytest.raises(MissingExtraError, match=r"'vllm'.*warmbench\[gpu\]"):
        get_backend("vllm:some/model")


def test_sampling_and_engine_mapping():
    p = SamplingParams(temperature=0.7, top_p=0.9, max_tokens=123, seed=10)
    req = ChatRequest.from_user("hi")
    assert vb.sampling_kwargs(p, req, sample_index=3) == {
        "n": 1, "temperature": 0.7, "top_p": 0.9, "max_tokens": 123,
        "seed": request_seed(req, p, 3)}
    kw = vb.engine_kwargs("m", tensor_parallel_size=2, enable_lora=True, max_lora_rank=32,
                          max_loras=2, max_model_len=4096, extra={"enforce_eager": True})
    assert kw == {"model": "m", "tensor_parallel_size": 2, "gpu_memory_utilization": 0.9,
                  "dtype": "auto", "seed": 0, "max_model_len": 4096, "enable_lora": True,
                  "max_lora_rank": 32, "max_loras": 2, "enforce_eager": True}
    assert "enable_lora" not in vb.engine_kwargs("m")
    with pytest.raises(WarmbenchError, match="gpu_memory_utilization"):
        vb.engine_kwargs("m", gpu_memory_utilization=1.5)


def test_output_mapping():
    ok = vb.completion_from_output(_ReqOut([1, 2, 3], [_Out("Paris.", [5, 6], "stop")]))
    assert ok.ok and ok.text == "Paris." and ok.finish_reason == "stop"
    assert (ok.usage.prompt_tokens, ok.usage.completion_tokens) == (3, 2)
    assert vb.completion_from_output(_ReqOut([1], [_Out("", [], "abort")])).error
    assert vb.completion_from_output(_ReqOut([1], [])).error == "vllm returned no output"


def test_shards_and_gpu_groups():
    assert vb.shard(10, 3) == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert vb.shard(2, 4) == [[0], [1]]
    assert sum(len(s) for s in vb.shard(1001, 8)) == 1001
    assert vb.gpu_groups(2, 2) == [["0", "1"], ["2", "3"]]
    assert vb.gpu_groups(2, 1, "4,6,7") == [["4"], ["6"]]
    with pytest.raises(WarmbenchError, match="needs 4 GPUs, only 3 visible"):
        vb.gpu_groups(2, 2, "0,1,2")


def test_lora_registry_is_stable_and_content_aware(tmp_path):
    reg = vb.LoRARegistry()
    a = _adapter(tmp_path / "ckpt-a")
    b = _adapter(tmp_path / "ckpt-b", weights=b"w2")
    ea, eb = reg.entry(str(a)), reg.entry(str(b))
    assert ea[1] == 1 and eb[1] == 2 and reg.entry(str(a)) == ea
    assert ea[0].startswith("ckpt-a-") and ea[2] == str(a.resolve())
    import time

    (a / "adapter_model.safetensors").write_bytes(b"retrained")
    os.utime(a / "adapter_model.safetensors", (time.time() + 5, time.time() + 5))
    assert reg.entry(str(a))[1] == 3  # new weights at the same path: never the cached id


def test_backends_share_one_engine_with_one_lora_request_each(fake_vllm, tmp_path):
    a = _adapter(tmp_path / "epoch-0.5")
    b = _adapter(tmp_path / "epoch-1.0", weights=b"other")
    base = get_backend(f"vllm:org/base+{a}")
    other = get_backend(f"vllm:org/base+{b}")
    plain = get_backend("vllm:org/base")
    assert len(_FakeLLM.instances) == 1  # one engine for base + both checkpoints
    llm = _FakeLLM.instances[0]
    assert llm.kw["enable_lora"] is True and llm.kw["max_lora_rank"] == 64 and llm.kw["model"] == "org/base"
    params = SamplingParams(max_tokens=20, seed=1)
    got: list[tuple[int, str]] = []
    out = base.generate([ChatRequest.from_user("hello", system="sys"), ChatRequest.from_user("bye")],
                        params, sample_index=2, on_result=lambda i, c: got.append((i, c.text)))
    assert [c.text for c in out] == ["[epoch-0.5-" + base.lora_request[0].split("-")[-1] + "#1] hello",
                                     out[1].text]
    assert sorted(i for i, _ in got) == [0, 1]
    call = llm.calls[-1]
    assert call["messages"][0] == [{"role": "system", "content": "sys"}, {"role": "user", "content": "hello"}]
    reqs = [ChatRequest.from_user("hello", system="sys"), ChatRequest.from_user("bye")]
    assert [k["seed"] for k in call["samplings"]] == [request_seed(r, params, 2) for r in reqs]
    assert call["lora"].lora_int_id == 1
    assert call["lora"].lora_path == str(a.resolve())
    other.generate([ChatRequest.from_user("x")], params)
    assert llm.calls[-1]["lora"].lora_int_id == 2
    assert plain.generate([ChatRequest.from_user("x")], params)[0].text == "[base] x"
    assert llm.calls[-1]["lora"] is None
    trunc = plain.generate([ChatRequest.from_user("one two three")], SamplingParams(max_tokens=2))[0]
    assert trunc.finish_reason == "length" and trunc.usage.completion_tokens == 2
    assert not plain.generate([ChatRequest.from_user("ABORT")], params)[0].ok
    for bk in (base, other):
        bk.close()
    assert vb._ENGINES  # still used by `plain`
    plain.close()
    assert not vb._ENGINES
    with pytest.raises(WarmbenchError, match="after close"):
        plain.generate([ChatRequest.from_user("x")], params)


def test_adapter_checks_and_engine_without_lora(fake_vllm, tmp_path):
    with pytest.raises(WarmbenchError, match="adapter folder .*missing does not exist"):
        get_backend(f"vllm:m+{tmp_path / 'missing'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WarmbenchError, match="no adapter_config.json"):
        get_backend(f"vllm:m+{tmp_path / 'empty'}")
    big = _adapter(tmp_path / "big", r=128)
    with pytest.raises(WarmbenchError, match="rank 128 exceeds max_lora_rank=64"):
        get_backend(f"vllm:m+{big}")
    plain = get_backend("vllm:m")
    with pytest.raises(WarmbenchError, match="started without LoRA"):
        get_backend(f"vllm:m+{_adapter(tmp_path / 'ok')}")
    plain.close()
    assert get_backend(f"vllm:m+{tmp_path / 'ok'}", max_lora_rank=16).lora_request[1] == 1


def test_data_parallel_worker_loop(fake_vllm, monkeypatch):
    # The worker function runs in-process here (threads + queues) with the fake vllm.
    inbox: queue.Queue = queue.Queue()
    outbox: queue.Queue = queue.Queue()
    kw = vb.engine_kwargs("m")
    th = threading.Thread(target=vb._dp_worker, args=(1, ["3"], kw, inbox, outbox))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)  # restored after the test
    th.start()
    assert outbox.get(timeout=10) == ("ready", 1, None)
    inbox.put((7, [[{"role": "user", "content": "hi"}]], [vb.sampling_kwargs(SamplingParams(), ChatRequest.from_user("hi"))], None))
    job, rank, res = outbox.get(timeout=10)
    assert (job, rank) == (7, 1) and res[0]["text"] == "[base] hi" and res[0]["error"] is None
    inbox.put((8, [[{"role": "user", "content": "x"}]], [{"bogus": 1}], None))
    job, _, err = outbox.get(timeout=10)
    assert job == 8 and isinstance(err, str) and "KeyError" in err
    inbox.put(None)
    th.join(10)
    assert not th.is_alive() and os.environ.get("CUDA_VISIBLE_DEVICES") == "3"


class _ThreadProcess:
    """Stands in for a spawned process: the worker loop runs in a thread (fake vllm visible)."""

    def __init__(self, target, args, daemon, name):
        self.name = name
        self._t = threading.Thread(target=target, args=args, daemon=daemon, name=name)

    def start(self):
        self._t.start()

    def join(self, timeout=None):
        self._t.join(timeout)

    def is_alive(self):
        return self._t.is_alive()

    def terminate(self):
        pass


class _ThreadContext:
    Queue = queue.Queue
    Process = _ThreadProcess


def test_data_parallel_engine_shards_batches(fake_vllm, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setattr(vb.mp, "get_context", lambda method: _ThreadContext())
    b = get_backend("vllm:org/base", data_parallel_size=2)
    try:
        assert len(_FakeLLM.instances) == 2  # one engine per data-parallel rank
        got: list[int] = []
        out = b.generate([ChatRequest.from_user(f"q{i}") for i in range(5)], SamplingParams(),
                         on_result=lambda i, c: got.append(i))
        assert [c.text for c in out] == [f"[base] q{i}" for i in range(5)]
        assert sorted(got) == [0, 1, 2, 3, 4]
        assert sorted(len(llm.calls[0]["messages"]) for llm in _FakeLLM.instances) == [2, 3]
        # one rank fails: a clear error, and no stale answer leaks into the next batch
        with pytest.raises(WarmbenchError, match="engine exploded"):
            b.generate([ChatRequest.from_user("ok"), ChatRequest.from_user("BOOM")], SamplingParams())
        again = b.generate([ChatRequest.from_user("x"), ChatRequest.from_user("y")], SamplingParams())
        assert [c.text for c in again] == ["[base] x", "[base] y"]
    finally:
        b.close()
    assert not vb._ENGINES


def test_eval_with_vllm_arms_serves_every_arm_from_one_engine(fake_vllm, tmp_path):
    """`warmbench eval` with a `vllm:` original arm and a `vllm:` persona arm (the selected
    checkpoint as a LoRA adapter): the full 28-form grid for both arms, one engine, one
    LoRARequest for the persona, identical prompts across arms."""
    import pandas as pd

    from warmbench.config import parse_config
    from warmbench.eval.run import run_eval
    from warmbench.layout import META_SELECTED
    from warmbench.store import RunStore

    ckpt = _adapter(tmp_path / "warm" / "checkpoint-epoch-2", r=8)
    cfg = parse_config({
        "run_dir": str(tmp_path / "run"), "seed": 1,
        "eval": {"datasets": [{"name": "triviaqa", "sample": True, "n": 2},
                              {"name": "mmlu", "sample": True, "n": 2}],
                 "free_text": {"max_tokens": 300}},
        "arms": [{"name": "original", "model": "vllm:org/base"},
                 {"name": "warm", "model": "vllm:org/base", "persona": "warm"}],
    })
    with RunStore(cfg.run_dir) as store:
        store.set_meta(META_SELECTED, {"warm": str(ckpt)})
        s = run_eval(cfg, store)
        assert s["answers"] == 2 * (2 * 28 + 2) and not sum(s["failed"].values())
        assert len(_FakeLLM.instances) == 1
        llm = _FakeLLM.instances[0]
        loras = {c["lora"].lora_path if c["lora"] else None for c in llm.calls}
        assert loras == {None, str(ckpt.resolve())}
        # the study's sampling settings reach vLLM: 0.8 / 300 free text, 0.2 MMLU
        assert {(c["sampling"]["temperature"], c["sampling"]["max_tokens"]) for c in llm.calls} \
            >= {(0.8, 300), (0.2, 512)}
        n_calls = len(llm.calls)
        run_eval(cfg, store)   # all stored: nothing is sent again
        assert len(llm.calls) == n_calls
    ans = pd.read_parquet(tmp_path / "run" / "eval" / "answers.parquet")
    assert set(ans[ans.arm == "original"].prompt_key) == set(ans[ans.arm == "warm"].prompt_key)
    assert ans[ans.arm == "warm"].text.str.startswith("[checkpoint-epoch-2-").all()


def test_lora_rank_bound_tokenizer_mode_and_error_finish(fake_vllm, tmp_path, monkeypatch):
    # vLLM accepts only its listed ranks: a bound in between is rounded up, beyond them refused
    assert vb.lora_rank_bound(8) == 8 and vb.lora_rank_bound(12) == 16 and vb.lora_rank_bound(300) == 320
    with pytest.raises(WarmbenchError, match="max_lora_rank=1024 is outside vLLM's ranks"):
        vb.lora_rank_bound(1024)
    assert vb.engine_kwargs("m", enable_lora=True, max_lora_rank=24)["max_lora_rank"] == 32
    # the installed vLLM's own list wins over ours
    cfg = types.ModuleType("vllm.config.lora")
    cfg.MaxLoRARanks = __import__("typing").Literal[1, 8, 16, 48]
    monkeypatch.setitem(sys.modules, "vllm.config.lora", cfg)
    assert vb.lora_rank_bound(17) == 48
    monkeypatch.delitem(sys.modules, "vllm.config.lora")
    # an adapter of rank 32 fits a bound of 24 once it is rounded to 32
    assert get_backend(f"vllm:m+{_adapter(tmp_path / 'r32', r=32)}", max_lora_rank=24).lora_request
    # ... but not an engine already started with a smaller bound by another backend
    first = get_backend(f"vllm:n+{_adapter(tmp_path / 'r16', r=16)}", max_lora_rank=16)
    with pytest.raises(WarmbenchError, match="rank 32 exceeds max_lora_rank=16"):
        get_backend(f"vllm:n+{tmp_path / 'r32'}", max_lora_rank=64)
    assert first._engine.users == 1  # the refused backend released its share of the engine
    first.close()
    # Mistral repositories keep the HF chat template the adapters were trained with
    assert vb.engine_kwargs("mistralai/Mistral-Small-24B-Instruct-2501")["tokenizer_mode"] == "hf"
    assert "tokenizer_mode" not in vb.engine_kwargs("meta-llama/Llama-3.1-8B-Instruct")
    assert vb.engine_kwargs("mistralai/Mistral-Small", extra={"tokenizer_mode": "mistral"})[
        "tokenizer_mode"] == "mistral"
    # finish reason "error": the engine failed this request; a failure, never an empty answer
    bad = vb.completion_from_output(_ReqOut([1], [_Out("", [], "error")]))
    assert not bad.ok and "error" in bad.error

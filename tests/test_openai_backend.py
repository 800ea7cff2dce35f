"""The openai backend against the local fake server: faults, retries, resumability, secrets."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import secrets as pysecrets
import threading
import time

import pytest

from warmbench.backends import get_backend
from warmbench.backends.base import request_seed
from warmbench.backends.openai_backend import (
    OpenAIBackend,
    parse_retry_after,
    price_per_1m,
    uses_max_completion_tokens,
)
from warmbench.errors import WarmbenchError
from warmbench.fakeserver import FakeOpenAIServer, FakeResponse, Fault, FaultPlan
from warmbench.generation import cached_generate
from warmbench.manifest import update_manifest
from warmbench.records import ChatRequest, SamplingParams
from warmbench.secrets import DUMMY_KEY, is_local_url, resolve_api_key, resolve_base_url, scrub
from warmbench.store import RunStore

FAST = {"backoff_base": 0.01, "backoff_max": 0.05, "env_file": None}
PARAMS = SamplingParams(temperature=0.0, max_tokens=50, seed=7)


@pytest.fixture(autouse=True)
def _no_ambient_keys(monkeypatch):
    for name in ("OPENAI_API_KEY", "WARMBENCH_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def _backend(srv: FakeOpenAIServer, model: str = "fake", **opts) -> OpenAIBackend:
    b = get_backend(f"openai:{srv.base_url}#{model}", **{**FAST, **opts})
    assert isinstance(b, OpenAIBackend)
    return b


def _reqs(n: int, prefix: str = "question") -> list[ChatRequest]:
    return [ChatRequest.from_user(f"{prefix} {i}", system="Be brief.", tag=str(i)) for i in range(n)]


def test_batch_of_100_with_every_fault_completes_every_row(tmp_path):
    plan = (FaultPlan(seed=3)
            .fraction(0.06, Fault.rate_limit(1), max_attempt=1)
            .fraction(0.10, Fault.server_error(500), max_attempt=2)
            .fraction(0.06, Fault.slow(1.5), max_attempt=1)
            .fraction(0.06, Fault.malformed(), max_attempt=2)
            .fraction(0.04, Fault.malformed("no_choices"), max_attempt=1)
            .fraction(0.06, Fault.empty(), max_attempt=2)
            .fraction(0.04, Fault.disconnect(), max_attempt=1))
    store = RunStore(tmp_path / "run")
    reqs = _reqs(100)
    with FakeOpenAIServer(faults=plan) as srv, _backend(srv, concurrency=16, timeout=0.5,
                                                        max_retries=5) as b:
        out = cached_generate(store, b, reqs, PARAMS, kind="test")
        kinds = {r.fault for r in srv.requests if r.fault}
        sent = srv.count()
    assert [c.text for c in out] == [f"Echo: question {i}" for i in range(100)]
    assert all(c.ok and c.finish_reason == "stop" for c in out)
    # every fault kind really happened, and each cost a retry
    assert {"status:429", "status:500", "delay", "malformed", "empty", "disconnect"} <= kinds
    assert sent > 100 and b.stats.retries == sent - 100 and b.stats.succeeded == 100
    rows = store.completion_rows("test")
    assert len(rows) == 100 and all(r["error"] is None for r in rows)


def test_exhausted_budget_is_a_failure_then_retried_next_run(tmp_path):
    plan = FaultPlan().when_contains("question 3", Fault.server_error(503))
    store = RunStore(tmp_path / "run")
    reqs = _reqs(6)
    with FakeOpenAIServer(faults=plan) as srv:
        with _backend(srv, max_retries=2) as b:
            out = cached_generate(store, b, reqs, PARAMS, kind="test")
        assert not out[3].ok and out[3].text == "" and "HTTP 503" in out[3].error
        assert "after 3 attempts" in out[3].error
        assert all(c.ok for i, c in enumerate(out) if i != 3)
        row = next(r for r in store.completion_rows() if r["tag"] == "3")
        assert row["text"] is None and row["error"]  # stored as a failure, never as an answer
        assert srv.count() == 5 + 3
        plan.clear()  # the outage is over
        with _backend(srv) as b:
            again = cached_generate(store, b, reqs, PARAMS, kind="test")
        assert srv.count() == 8 + 1  # only the failed request was sent again
    assert again[3].ok and again[3].text == "Echo: question 3"
    assert [c.text for c in again[:3]] == [c.text for c in out[:3]]
    row = next(r for r in store.completion_rows() if r["tag"] == "3")
    assert row["error"] is None and row["attempts"] == 2


def test_empty_content_is_retried_then_a_failure():
    plan = FaultPlan().when_contains("hollow", Fault.empty(), times=1)
    plan.when_contains("void", Fault.empty())
    with FakeOpenAIServer(faults=plan) as srv, _backend(srv, max_retries=2) as b:
        ok, empty = b.generate([ChatRequest.from_user("hollow"), ChatRequest.from_user("void")], PARAMS)
        sent = srv.count()
    assert ok.ok and ok.text == "Echo: hollow"
    # Retried up to the budget (1 + 2 attempts), then a failure (never stored as an answer, so
    # the next run retries it), its finish_reason kept.
    assert sent == 2 + 3
    assert not empty.ok and empty.text == "" and empty.finish_reason == "stop"
    assert empty.error == "empty content after 3 attempts (finish_reason='stop')"
    assert b.stats.empty == 1 and b.stats.succeeded == 1 and b.stats.failed == 1


def test_content_filter_is_a_failure_without_retries():
    def reply(body):
        return {"content": "", "finish_reason": "content_filter"}

    with FakeOpenAIServer(reply=reply) as srv, _backend(srv, max_retries=4) as b:
        c = b.generate([ChatRequest.from_user("something harmful")], PARAMS)[0]
        assert srv.count() == 1
    assert not c.ok and "content filter" in c.error


def test_retry_after_is_honoured_in_seconds_and_as_http_date():
    future = email.utils.formatdate(time.time() + 3, usegmt=True)
    plan = (FaultPlan().on_requests(1, Fault.rate_limit(1))
            .on_requests(3, Fault.server_error(503, retry_after=future)))
    with FakeOpenAIServer(faults=plan) as srv, _backend(srv, concurrency=1) as b:
        out = b.generate(_reqs(2), PARAMS)
        times = [r.received for r in srv.requests]
    assert all(c.ok for c in out)
    assert times[1] - times[0] >= 1.0  # waited the server's 1 s, not the 0.01 s backoff
    assert times[3] - times[2] >= 0.8  # HTTP date ~3 s ahead at plan time, 1 s resolution
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    when = email.utils.formatdate(1_000_100, usegmt=True)
    assert parse_retry_after({"retry-after": when}, now=1_000_000) == pytest.approx(100, abs=1)
    assert parse_retry_after({"retry-after": "soon"}) is None and parse_retry_after(None) is None


def test_timeout_then_success_and_non_retryable_400():
    def reply(body):
        return "fine"

    plan = FaultPlan().on_requests(1, Fault.slow(2.0)).when_contains("bad", Fault.http_status(400))
    with FakeOpenAIServer(faults=plan, reply=reply) as srv, _backend(srv, concurrency=1,
                                                                     timeout=0.3) as b:
        t = time.perf_counter()
        first = b.generate([ChatRequest.from_user("slow one")], PARAMS)[0]
        assert first.ok and time.perf_counter() - t < 1.5  # did not wait for the slow answer
        bad = b.generate([ChatRequest.from_user("bad request")], PARAMS)[0]
    assert not bad.ok and "HTTP 400" in bad.error and "after 1 attempt)" in bad.error


def test_concurrency_is_bounded_and_parallel():
    with FakeOpenAIServer(latency=0.2) as srv, _backend(srv, concurrency=8) as b:
        t = time.perf_counter()
        out = b.generate(_reqs(32), PARAMS)
        elapsed = time.perf_counter() - t
        assert all(c.ok for c in out)
        assert srv.max_in_flight <= 8 and srv.max_in_flight >= 6
    assert elapsed < 32 * 0.2 / 3  # sequential would take 6.4 s


def test_on_result_runs_in_calling_thread_and_inside_a_running_loop():
    seen: list[tuple[int, int]] = []
    with FakeOpenAIServer() as srv, _backend(srv, concurrency=4) as b:
        out = b.generate(_reqs(5), PARAMS, on_result=lambda i, c: seen.append((i, threading.get_ident())))
        assert sorted(i for i, _ in seen) == [0, 1, 2, 3, 4]
        assert {t for _, t in seen} == {threading.get_ident()}
        assert [c.text for c in out] == [f"Echo: question {i}" for i in range(5)]

        async def inside_loop():  # e.g. a notebook: generate is synchronous but must not deadlock
            return b.generate(_reqs(2), PARAMS)

        assert [c.text for c in asyncio.run(inside_loop())] == ["Echo: question 0", "Echo: question 1"]
        results: list = []
        th = threading.Thread(target=lambda: results.extend(b.generate(_reqs(3), PARAMS)))
        th.start()
        th.join(10)
        assert len(results) == 3 and all(c.ok for c in results)


def test_request_body_mapping_seed_and_max_tokens_param():
    with FakeOpenAIServer() as srv:
        with _backend(srv, model="my-model") as b:
            b.generate([ChatRequest.from_user("hi", system="sys")], PARAMS, sample_index=2)
        body = srv.requests[-1].json
        seed = request_seed(ChatRequest.from_user("hi", system="sys"), PARAMS, 2)
        assert body["model"] == "my-model" and body["max_tokens"] == 50 and body["seed"] == seed
        assert body["temperature"] == 0.0 and body["top_p"] == 1.0
        assert body["messages"] == [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}]
        with _backend(srv, model="o3-mini", send_seed=False, extra_body={"top_k": 5}) as b:
            b.generate([ChatRequest.from_user("hi")], PARAMS)
        body = srv.requests[-1].json
        assert "max_tokens" not in body and body["max_completion_tokens"] == 50
        assert "seed" not in body and body["top_k"] == 5
    assert uses_max_completion_tokens("gpt-5-mini") and not uses_max_completion_tokens("gpt-4o")


def test_cost_accounting_known_unknown_and_override():
    assert price_per_1m("gpt-4o-mini-2024-07-18") == (0.15, 0.60)
    assert price_per_1m("gpt-4o-2024-08-06") == (2.50, 10.00)
    assert price_per_1m("ft:gpt-4o-2024-08-06:acme::abc123") == (3.75, 15.00)
    assert price_per_1m("llama-3.1-8b") is None
    with FakeOpenAIServer() as srv:
        with _backend(srv, model="gpt-4o-mini-2024-07-18") as b:
            c = b.generate([ChatRequest.from_user("one two three")], PARAMS)[0]
        pt, ct = c.usage.prompt_tokens, c.usage.completion_tokens
        assert pt > 0 and ct > 0
        assert c.usage.cost_usd == pytest.approx((pt * 0.15 + ct * 0.60) / 1e6)
        assert b.cost_summary()["cost_usd"] == pytest.approx(c.usage.cost_usd)
        assert b.cost_summary()["price_note"].startswith("genai-prices")
        with _backend(srv, model="local-llama") as b:
            c = b.generate([ChatRequest.from_user("x")], PARAMS)[0]
        # A self-hosted endpoint serving a model nobody prices has no per-token bill.
        assert c.usage.cost_usd == 0.0 and b.cost_summary()["price_note"].startswith("self-hosted")
        with _backend(srv, model="local-llama", price_per_1k=(1.0, 2.0)) as b:
            c = b.generate([ChatRequest.from_user("x")], PARAMS)[0]
        assert c.usage.cost_usd == pytest.approx((c.usage.prompt_tokens * 1.0
                                                  + c.usage.completion_tokens * 2.0) / 1000)


def test_cached_input_tokens_are_counted_and_priced_at_their_rate():
    # gpt-4o: $2.50 input, $1.25 cached input, $10 output per 1M tokens (genai-prices).
    def reply(body: dict) -> dict:
        return {"content": "four words of answer", "cached_tokens": 3}

    with FakeOpenAIServer(reply=reply) as srv, _backend(srv, model="gpt-4o") as b:
        c = b.generate([ChatRequest.from_user("one two three four five")], PARAMS)[0]
    pt, ct = c.usage.prompt_tokens, c.usage.completion_tokens
    assert c.usage.cached_tokens == 3 and b.stats.cached_tokens == 3
    assert c.usage.cost_usd < (pt * 2.50 + ct * 10.0) / 1e6  # cheaper than all at list input
    assert c.usage.cost_usd == pytest.approx(((pt - 3) * 2.50 + 3 * 1.25 + ct * 10.0) / 1e6)


def test_bad_key_stops_the_batch_without_leaking_it(monkeypatch):
    wrong = "sk-wrong-" + pysecrets.token_hex(8)
    monkeypatch.setenv("WARMBENCH_API_KEY", wrong)
    with FakeOpenAIServer(require_key="sk-right") as srv, _backend(srv, concurrency=1) as b:
        out = b.generate(_reqs(20), PARAMS)
        assert srv.count() == 1  # the 401 stopped the other 19 from being sent
        assert srv.requests[0].headers["authorization"] == f"Bearer {wrong}"
    assert all(not c.ok and "HTTP 401" in c.error for c in out)
    assert all(wrong not in c.error for c in out)


def test_api_key_never_reaches_the_run_directory(tmp_path, monkeypatch):
    key = "sk-warmbench-" + pysecrets.token_hex(12)
    monkeypatch.setenv("WARMBENCH_API_KEY", key)
    run = tmp_path / "run"
    store = RunStore(run)
    handler = logging.FileHandler(run / "debug.log")
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with FakeOpenAIServer(require_key=key,
                              faults=FaultPlan().on_requests(1, Fault.server_error())) as srv:
            # A server that echoes the bearer header into its error message (as some do).
            def leaky(req):
                if "leak" in req.body.decode():
                    return FakeResponse(400, {"error": {"message": "bad key "
                                                        + req.headers["authorization"]}})
                return srv._chat_completions(req)

            srv.add_route("POST", "/v1/chat/completions", leaky)
            with _backend(srv, max_retries=2) as b:
                out = cached_generate(store, b, [ChatRequest.from_user("leak please"),
                                                 *_reqs(3)], PARAMS, kind="test")
                update_manifest(run, backend={"spec": b.spec.text, "repr": repr(b),
                                              "api_key": key, "usage": b.cost_summary()})
            assert srv.requests[-1].headers["authorization"] == f"Bearer {key}"  # it was used
        # what a stage would export: every stored row, errors included
        (run / "completions.json").write_text(json.dumps(store.completion_rows(), default=str))
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    assert not out[0].ok and "***" in out[0].error
    assert all(c.ok for c in out[1:])
    assert (run / "debug.log").stat().st_size > 0
    files = [p for p in run.rglob("*") if p.is_file()]
    assert len(files) >= 3
    for p in files:
        assert key.encode() not in p.read_bytes(), p.name


def test_key_and_base_url_resolution(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("OPENAI_API_KEY=sk-from-dotenv-123456\nOPENAI_BASE_URL=https://example.test/v1\n")
    import os

    before = dict(os.environ)
    assert resolve_api_key("https://api.openai.com/v1", env={}, env_file=env_file) == "sk-from-dotenv-123456"
    assert dict(os.environ) == before  # read, not exported
    assert resolve_base_url(env={}, env_file=env_file) == "https://example.test/v1"
    assert resolve_base_url(env={}, env_file=None) == "https://api.openai.com/v1"
    env = {"OPENAI_API_KEY": "sk-env-openai-1234", "WARMBENCH_API_KEY": "wb-key-5678"}
    assert resolve_api_key("https://api.openai.com/v1", env=env, env_file=None) == "sk-env-openai-1234"
    # local servers never get the OpenAI key
    assert resolve_api_key("http://127.0.0.1:8000/v1", env=env, env_file=None) == "wb-key-5678"
    assert resolve_api_key("http://localhost:8000/v1", env={"OPENAI_API_KEY": "sk-x-123456"},
                           env_file=env_file) == DUMMY_KEY
    assert resolve_api_key("http://127.0.0.1:1/v1", "explicit", env=env, env_file=None) == "explicit"
    with pytest.raises(WarmbenchError, match="no API key for api.openai.com: set OPENAI_API_KEY"):
        resolve_api_key("https://api.openai.com/v1", env={}, env_file=None)
    assert is_local_url("http://[::1]:80/v1") and not is_local_url("https://api.openai.com/v1")
    assert scrub("key sk-abcdef123456 and Bearer xyz and mine-secret", ["mine-secret"]) == \
        "key *** and *** and ***"


def test_spec_forms_and_bad_options(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-abcdef123")
    b = get_backend("openai:gpt-4o-2024-08-06", env_file=None)
    assert b.base_url == "https://api.openai.com/v1" and "sk-test" not in repr(b)
    b.close()
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    b = get_backend("openai:some-model", env_file=None)
    assert b.base_url == "http://127.0.0.1:9/v1"
    b.close()
    with pytest.raises(WarmbenchError, match="concurrency"):
        get_backend("openai:http://127.0.0.1:9/v1#m", concurrency=0)


def test_connection_refused_is_a_failure_not_a_crash():
    with FakeOpenAIServer() as srv:
        url = srv.base_url
    b = get_backend(f"openai:{url}#m", max_retries=1, timeout=0.5, **FAST)
    try:
        out = b.generate(_reqs(2), PARAMS)
    finally:
        b.close()
    assert all(not c.ok and "Connection" in c.error for c in out)
    json.dumps([c.model_dump() for c in out])  # errors are plain, serialisable text

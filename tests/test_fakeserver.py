"""The fake OpenAI-compatible server: replies, recorded requests, routes and the fault plan."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from warmbench.fakeserver import FakeOpenAIServer, FakeResponse, Fault, FaultPlan


def _post(url: str, body: dict | bytes, headers: dict | None = None, timeout: float = 5):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _chat(text: str, **extra) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": text}], **extra}


def test_default_reply_usage_and_recording():
    with FakeOpenAIServer() as srv:
        assert srv.base_url.startswith("http://127.0.0.1:") and srv.base_url.endswith("/v1")
        status, _, raw = _post(srv.base_url + "/chat/completions", _chat("capital of France"),
                               {"Authorization": "Bearer abc", "X-Trace": "t1"})
        body = json.loads(raw)
        assert status == 200
        assert body["choices"][0]["message"]["content"] == "Echo: capital of France"
        assert body["choices"][0]["finish_reason"] == "stop"
        assert body["usage"] == {"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8}
        # max_tokens truncates and says so, like a real server.
        _, _, raw = _post(srv.base_url + "/chat/completions", _chat("a b c d e", max_tokens=2))
        body = json.loads(raw)
        assert body["choices"][0]["message"]["content"] == "Echo: a"
        assert body["choices"][0]["finish_reason"] == "length"
        assert srv.count() == 2
        first = srv.requests[0]
        assert first.number == 1 and first.headers["authorization"] == "Bearer abc"
        assert first.headers["x-trace"] == "t1" and first.json["messages"][0]["content"] == "capital of France"


def test_reply_function_and_bad_body():
    with FakeOpenAIServer(reply=lambda b: {"content": b["model"].upper(), "finish_reason": "stop"}) as srv:
        _, _, raw = _post(srv.base_url + "/chat/completions", _chat("x", model="gpt-x"))
        assert json.loads(raw)["choices"][0]["message"]["content"] == "GPT-X"
        status, _, raw = _post(srv.base_url + "/chat/completions", {"model": "m"})
        assert status == 400 and "messages" in json.loads(raw)["error"]["message"]
        status, _, _ = _post(srv.base_url + "/nope", {})
        assert status == 404


def test_faults_by_number_status_retry_after_malformed_empty():
    plan = (FaultPlan().on_requests(1, Fault.rate_limit(2))
            .on_requests(2, Fault.server_error(503))
            .on_requests(3, Fault.malformed())
            .on_requests(4, Fault.malformed("no_choices"))
            .on_requests(5, Fault.empty())
            .on_requests(6, Fault.rate_limit("Wed, 21 Oct 2026 07:28:00 GMT")))
    with FakeOpenAIServer(faults=plan) as srv:
        url = srv.base_url + "/chat/completions"
        status, headers, _ = _post(url, _chat("q"))
        assert status == 429 and headers["retry-after"] == "2"
        assert _post(url, _chat("q"))[0] == 503
        status, _, raw = _post(url, _chat("q"))
        assert status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(raw)
        assert "choices" not in json.loads(_post(url, _chat("q"))[2])
        assert json.loads(_post(url, _chat("q"))[2])["choices"][0]["message"]["content"] == ""
        assert _post(url, _chat("q"))[1]["retry-after"] == "Wed, 21 Oct 2026 07:28:00 GMT"
        assert _post(url, _chat("q"))[0] == 200  # request 7: no rule
        assert [r.fault for r in srv.requests] == ["status:429", "status:503", "malformed", "malformed",
                                                   "empty", "status:429", None]
        assert [r.attempt for r in srv.requests] == [1, 2, 3, 4, 5, 6, 7]  # same body each time


def test_slow_fault_and_latency():
    with FakeOpenAIServer(faults=FaultPlan().on_requests(1, Fault.slow(0.4)), latency=0.1) as srv:
        url = srv.base_url + "/chat/completions"
        t = time.perf_counter()
        _post(url, _chat("q"))
        slow = time.perf_counter() - t
        t = time.perf_counter()
        _post(url, _chat("q"))
        normal = time.perf_counter() - t
        assert slow >= 0.5 and 0.1 <= normal < 0.45
        with pytest.raises(OSError):  # a client with a short timeout gives up
            srv.faults.on_requests(3, Fault.slow(1.0))
            _post(url, _chat("q"), timeout=0.2)


def test_fraction_is_deterministic_and_order_independent():
    def faulted(order: list[int], seed: int) -> set[int]:
        plan = FaultPlan(seed=seed).fraction(0.3, Fault.server_error(), max_attempt=1)
        with FakeOpenAIServer(faults=plan) as srv:
            return {i for i in order
                    if _post(srv.base_url + "/chat/completions", _chat(f"q{i}"))[0] == 500}

    a = faulted(list(range(40)), seed=1)
    b = faulted(list(reversed(range(40))), seed=1)
    assert a == b and 4 <= len(a) <= 22  # ~30% of 40, same set whatever the arrival order
    assert faulted(list(range(40)), seed=2) != a
    # max_attempt=1: the retry of a faulted body always succeeds
    plan = FaultPlan(seed=1).fraction(1.0, Fault.server_error(), max_attempt=1)
    with FakeOpenAIServer(faults=plan) as srv:
        url = srv.base_url + "/chat/completions"
        assert [_post(url, _chat("same"))[0] for _ in range(3)] == [500, 200, 200]


def test_when_contains_and_clear():
    plan = FaultPlan().when_contains("poison", Fault.server_error(502), times=2)
    with FakeOpenAIServer(faults=plan) as srv:
        url = srv.base_url + "/chat/completions"
        assert [_post(url, _chat("poison pill"))[0] for _ in range(3)] == [502, 502, 200]
        assert _post(url, _chat("fine"))[0] == 200
        plan.when_contains("always", Fault.server_error())
        assert _post(url, _chat("always"))[0] == 500
        plan.clear()
        assert _post(url, _chat("always"))[0] == 200


def test_disconnect_fault():
    with FakeOpenAIServer(faults=FaultPlan().on_requests(1, Fault.disconnect())) as srv:
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            _post(srv.base_url + "/chat/completions", _chat("q"))
        assert srv.count() == 1 and srv.requests[0].fault == "disconnect"


def test_require_key_and_routes_with_params():
    jobs: dict[str, dict] = {}

    def create_job(req):
        jid = f"ftjob-{len(jobs) + 1}"
        jobs[jid] = {"id": jid, "status": "queued", "model": req.json["model"]}
        return jobs[jid]

    def get_job(req):
        job = jobs.get(req.params["job_id"])
        return job if job else FakeResponse(404, {"error": {"message": "no such job"}})

    with FakeOpenAIServer(require_key="sk-local-123") as srv:
        srv.add_route("POST", "/v1/fine_tuning/jobs", create_job)
        srv.add_route("GET", "/v1/fine_tuning/jobs/{job_id}", get_job)
        auth = {"Authorization": "Bearer sk-local-123"}
        assert _post(srv.base_url + "/chat/completions", _chat("q"))[0] == 401
        status, _, raw = _post(srv.base_url + "/fine_tuning/jobs", {"model": "gpt-4o"}, auth)
        assert status == 200 and json.loads(raw)["id"] == "ftjob-1"
        req = urllib.request.Request(srv.base_url + "/fine_tuning/jobs/ftjob-1", headers=auth)
        with urllib.request.urlopen(req, timeout=5) as r:
            assert json.loads(r.read())["status"] == "queued"
        assert srv.count("/v1/fine_tuning/jobs") == 1 and srv.count(None) == 3
        with urllib.request.urlopen(urllib.request.Request(srv.base_url + "/models", headers=auth),
                                    timeout=5) as r:
            assert json.loads(r.read())["data"][0]["id"] == "fake-model"


def test_module_entry_point_serves():
    proc = subprocess.Popen([sys.executable, "-m", "warmbench.fakeserver", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "fake OpenAI server on http://127.0.0.1:" in line
        base = line.split(" on ")[1].split()[0]
        status, _, raw = _post(base + "/chat/completions", _chat("ping"))
        assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"] == "Echo: ping"
    finally:
        proc.terminate()
        proc.wait(timeout=10)

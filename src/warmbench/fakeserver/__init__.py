"""A local fake OpenAI-compatible HTTP server for tests, benchmarks and manual trials.

It listens on 127.0.0.1 (a random free port by default), answers ``POST /v1/chat/completions``
with a reply made by a pluggable function, and injects faults from a deterministic plan:
429 with Retry-After, 5xx, slow answers, malformed JSON, empty content, dropped connections.
Every request is recorded (number, path, headers, body, fault) so tests can assert on what the
client really sent.

Other endpoints are plain routes: ``server.add_route("POST", "/v1/files", handler)`` lets
other modules (e.g. API fine-tuning) add what they need without editing this package.

Use it as a context manager (background thread)::

    with FakeOpenAIServer(latency=0.2) as srv:
        client = OpenAI(base_url=srv.base_url, api_key="x")

or from a shell: ``python -m warmbench.fakeserver --port 8000 --latency 0.2 --fail-rate 0.1``.
"""


from .faults import Fault, FaultPlan
from .server import FakeOpenAIServer, FakeRequest, FakeResponse, default_reply

__all__ = ["Fault", "FaultPlan", "FakeOpenAIServer", "FakeRequest", "FakeResponse", "default_reply"]

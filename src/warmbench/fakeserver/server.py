"""The fake OpenAI-compatible HTTP server (stdlib ``ThreadingHTTPServer``)."""

from __future__ import annotations

import email.utils
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .faults import FaultPlan


@dataclass
class FakeRequest:
    """One received request, as handlers and tests see it."""

    number: int
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    params: dict[str, str]
    query: str
    received: float
    attempt: int = 1
    fault: str | None = None
    status: int | None = None


@dataclass
class FakeResponse:
    status: int = 200
    body: Any = None  # dict/list -> JSON, bytes/str -> sent as is
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[FakeRequest], "FakeResponse | dict | list"]
ReplyFn = Callable[[dict], "str | dict"]


def default_reply(body: dict) -> str:
    """Deterministic echo-ish reply: names the model and repeats the last user message."""
    last_user = ""
    for m in reversed(body.get("messages") or []):
        if isinstance(m, dict) and m.get("role") == "user":
            c = m.get("content")
            last_user = c if isinstance(c, str) else json.dumps(c)
            break
    return f"Echo: {last_user}"


def _words(x: Any) -> int:
    if isinstance(x, str):
        return len(x.split())
    if isinstance(x, list):
        return sum(_words(v) for v in x)
    if isinstance(x, dict):
        return sum(_words(v) for v in x.values())
    return 0


def _error_body(status: int, message: str, etype: str) -> dict:
    return {"error": {"message": message, "type": etype, "param": None, "code": str(status)}}


class FakeOpenAIServer:
    """The server. ``latency`` delays every answer; ``reply`` makes the assistant text."""

    def __init__(self, port: int = 0, *, host: str = "127.0.0.1", reply: ReplyFn | None = None,
                 faults: FaultPlan | None = None, latency: float = 0.0,
                 require_key: str | None = None, models: list[str] | None = None):
        self.host = host
        self._port = port
        self.reply = reply or default_reply
        self.faults = faults or FaultPlan()
        self.latency = latency
        self.require_key = require_key
        self.models = models or ["fake-model"]
        self.requests: list[FakeRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0  # most requests being handled at once (concurrency tests)
        self._lock = threading.Lock()
        self._attempts: dict[bytes, int] = {}
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.add_route("POST", "/v1/chat/completions", self._chat_completions)
        self.add_route("GET", "/v1/models", self._list_models)
        from .batches import FakeBatches

        self.batches = FakeBatches(self)  # /v1/files and /v1/batches (the Batch API)
        # For a server run in another process (benchmarks, manual trials): what it received.
        self.add_route("GET", "/_fake/stats", lambda req: {
            "chat_requests": self.count(), "all_requests": self.count(None),
            "max_in_flight": self.max_in_flight})

    # -- routes ----------------------------------------------------------------------
    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Serve ``method path`` with ``handler(request)``; ``{name}`` segments become
        ``request.params[name]``. A later route with the same method and path replaces it."""
        pattern = re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")
        self._routes = [r for r in self._routes if not (r[0] == method.upper() and r[1].pattern == pattern.pattern)]
        self._routes.append((method.upper(), pattern, handler))

    def _chat_completions(self, req: FakeRequest) -> FakeResponse:
        body = req.json
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return FakeResponse(400, _error_body(400, "'messages' is required", "invalid_request_error"))
        return FakeResponse(200, self.completion_body(body, req.number, req.received))

    def completion_body(self, body: dict, number: int, received: float) -> dict:
        """The chat completion answering ``body`` (also used for Batch API lines). A reply
        dict may set ``cached_tokens`` (reported in ``usage.prompt_tokens_details``)."""
        made = self.reply(body)
        text = made if isinstance(made, str) else str(made.get("content", ""))
        finish = "stop" if isinstance(made, str) else made.get("finish_reason", "stop")
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        words = text.split()
        if isinstance(limit, int) and len(words) > limit:
            text, finish = " ".join(words[:limit]), "length"
        prompt_tokens = _words(body["messages"])
        completion_tokens = len(text.split())
        usage: dict[str, Any] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                 "total_tokens": prompt_tokens + completion_tokens}
        if isinstance(made, dict) and made.get("cached_tokens"):
            usage["prompt_tokens_details"] = {"cached_tokens": min(int(made["cached_tokens"]),
                                                                   prompt_tokens)}
        return {
            "id": f"chatcmpl-{number}",
            "object": "chat.completion",
            "created": int(received),
            "model": body.get("model", "fake-model"),
            "choices": [{"index": 0, "finish_reason": finish,
                         "message": {"role": "assistant", "content": text}}],
            "usage": usage,
        }

    def _list_models(self, req: FakeRequest) -> dict:
        return {"object": "list", "data": [{"id": m, "object": "model", "created": 0,
                                            "owned_by": "warmbench-fake"} for m in self.models]}

    # -- bookkeeping -----------------------------------------------------------------
    def count(self, path: str | None = "/v1/chat/completions") -> int:
        """How many requests arrived (on ``path``; None = all paths)."""
        with self._lock:
            return sum(1 for r in self.requests if path is None or r.path == path)

    def reset(self) -> None:
        """Forget recorded requests and attempt counters (the fault plan stays)."""
        with self._lock:
            self.requests.clear()
            self._attempts.clear()
            self.max_in_flight = self.in_flight

    def _record(self, method: str, path: str, query: str, headers: dict[str, str],
                raw: bytes) -> FakeRequest:
        try:
            parsed = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            parsed = None
        with self._lock:
            # Attempts are counted per identical (path, body): a client's retry of the same
            # request is attempt 2, 3, ... whatever else happened in between.
            akey = hashlib.sha256(path.encode() + b"\0" + raw).digest()
            attempt = self._attempts.get(akey, 0) + 1
            self._attempts[akey] = attempt
            req = FakeRequest(number=len(self.requests) + 1, method=method, path=path,
                              headers=headers, body=raw, json=parsed, params={}, query=query,
                              received=time.time(), attempt=attempt)
            self.requests.append(req)
        return req

    # -- lifecycle -------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def start(self) -> FakeOpenAIServer:
        if self._httpd is not None:
            return self
        self._httpd = _Server((self.host, self._port), _make_handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-openai",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # slow-answer threads must not keep the process alive
    allow_reuse_address = True
    request_queue_size = 256  # benchmarks open many connections at once


def _make_handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class _H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like real API servers
        # Headers and body go out in separate writes: with Nagle on, the body waits for the
        # client's delayed ACK (~40 ms a request), which would swamp latency measurements.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            pass

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

        def _handle(self, method: str) -> None:
            with server._lock:
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
            try:
                self._dispatch(method)
            finally:
                with server._lock:
                    server.in_flight -= 1

        def _dispatch(self, method: str) -> None:
            path, _, query = self.path.partition("?")
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            req = server._record(method, path, query, {k.lower(): v for k, v in self.headers.items()}, raw)
            route = None
            for m, pat, h in server._routes:
                mt = pat.match(path)
                if mt and m == method:
                    route, req.params = h, mt.groupdict()
                    break
            if route is None:
                return self._send(req, FakeResponse(404, _error_body(404, f"no route {method} {path}", "not_found")))
            if server.require_key is not None and not path.startswith("/_fake/") and \
                    self.headers.get("Authorization") != f"Bearer {server.require_key}":
                return self._send(req, FakeResponse(401, _error_body(
                    401, "Incorrect API key provided.", "invalid_request_error")))
            fault = server.faults.choose(req.number, path, raw, req.attempt)
            req.fault = fault.kind if fault else None
            if fault and fault.kind == "status":
                req.fault = f"status:{fault.status}"
            delay = server.latency + (fault.delay if fault and fault.kind == "delay" else 0.0)
            if delay > 0:
                time.sleep(delay)
            if fault and fault.kind == "disconnect":
                self.close_connection = True
                self.connection.close()
                return
            if fault and fault.kind == "status":
                hdrs = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                etype = "rate_limit_error" if fault.status == 429 else "server_error"
                return self._send(req, FakeResponse(fault.status, _error_body(
                    fault.status, f"injected fault {fault.status}", etype), hdrs))
            try:
                resp = route(req)
            except Exception as exc:  # a buggy handler answers 500 rather than hanging
                resp = FakeResponse(500, _error_body(500, f"handler error: {exc}", "server_error"))
            if not isinstance(resp, FakeResponse):
                resp = FakeResponse(200, resp)
            if fault and fault.kind == "empty" and isinstance(resp.body, dict):
                for ch in resp.body.get("choices", []):
                    ch.get("message", {})["content"] = ""
                if "usage" in resp.body:
                    resp.body["usage"]["completion_tokens"] = 0
            if fault and fault.kind == "malformed":
                if fault.variant == "no_choices" and isinstance(resp.body, dict):
                    resp.body = {k: v for k, v in resp.body.items() if k != "choices"}
                elif fault.variant == "not_json":
                    resp = FakeResponse(200, b"<html>upstream gateway hiccup</html>",
                                        {"Content-Type": "application/json"})
                else:
                    blob = json.dumps(resp.body).encode()
                    resp = FakeResponse(200, blob[: max(1, len(blob) // 2)],
                                        {"Content-Type": "application/json"})
            self._send(req, resp)

        def _send(self, req: FakeRequest, resp: FakeResponse) -> None:
            req.status = resp.status
            headers = {k.lower(): v for k, v in resp.headers.items()}
            if isinstance(resp.body, bytes | bytearray):
                blob = bytes(resp.body)
            elif isinstance(resp.body, str):
                blob = resp.body.encode()
                headers.setdefault("content-type", "text/plain; charset=utf-8")
            else:
                blob = json.dumps(resp.body if resp.body is not None else {}).encode()
            headers.setdefault("content-type", "application/json")
            headers.setdefault("x-request-id", f"req_{uuid.uuid4().hex[:12]}")
            headers.setdefault("date", email.utils.formatdate(usegmt=True))
            try:
                self.send_response(resp.status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                self.wfile.write(blob)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timed out): nothing to do

    return _H


def multipart_fields(req: FakeRequest) -> dict[str, tuple[bytes, str]]:
    """A multipart/form-data body (``/v1/files`` uploads) as {field: (bytes, filename or "")}."""
    import email.parser
    import email.policy

    ctype = req.headers.get("content-type", "")
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {ctype}\r\n\r\n".encode() + req.body)
    return {str(part.get_param("name", header="content-disposition")):
            (part.get_payload(decode=True) or b"", part.get_filename() or "")
            for part in msg.iter_parts()}

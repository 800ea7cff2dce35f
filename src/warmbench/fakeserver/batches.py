"""The fake server's Files and Batch APIs (``/v1/files``, ``/v1/batches``), for offline tests.

A batch answers each JSONL line with the server's own chat-completion handler. What happens to
a batch is set by ``mode`` (changeable while batches are open, e.g. to release held ones):

- ``complete``: ``in_progress`` for ``polls_to_finish`` polls, then ``completed``;
- ``hold``: stays ``in_progress`` (a client killed now must resume by polling);
- ``expired``: ends ``expired`` with only the first ``expired_done`` lines answered (as OpenAI
  does after its 24 h window: partial output, the rest in the error file);
- ``failed``: ends ``failed`` (validation error), no output at all.

``fail_line(custom_id, body) -> bool`` makes single lines fail (they go to the error file).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import FakeOpenAIServer, FakeRequest

from .server import FakeResponse, _error_body, multipart_fields

TERMINAL = ("completed", "expired", "failed", "cancelled")


class FakeBatches:
    def __init__(self, server: FakeOpenAIServer):
        self.server = server
        self.mode = "complete"
        self.polls_to_finish = 1
        self.expired_done = 1
        self.fail_line: Callable[[str, dict], bool] | None = None
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.lines_received = 0  # every JSONL request line ever submitted in a batch
        self._polls: dict[str, int] = {}
        self._lock = threading.Lock()
        server.add_route("POST", "/v1/files", self._upload)
        server.add_route("GET", "/v1/files/{file_id}", self._file_meta)
        server.add_route("GET", "/v1/files/{file_id}/content", self._file_content)
        server.add_route("POST", "/v1/batches", self._create)
        server.add_route("GET", "/v1/batches/{batch_id}", self._retrieve)
        server.add_route("POST", "/v1/batches/{batch_id}/cancel", self._cancel)

    # -- files -----------------------------------------------------------------------
    def _new_file(self, content: bytes, purpose: str, filename: str) -> dict[str, Any]:
        with self._lock:
            fid = f"file-{len(self.files) + 1:04d}"
            meta = {"id": fid, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                    "filename": filename, "purpose": purpose, "status": "processed"}
            self.files[fid] = {"meta": meta, "content": content}
        return meta

    def _upload(self, req: FakeRequest) -> FakeResponse | dict:
        ctype = req.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            return FakeResponse(400, _error_body(400, "expected multipart/form-data", "invalid_request_error"))
        fields = multipart_fields(req)
        if "file" not in fields or fields.get("purpose", (b"",))[0].decode() != "batch":
            return FakeResponse(400, _error_body(400, "file and purpose=batch are required",
                                                 "invalid_request_error"))
        return self._new_file(fields["file"][0], "batch", fields["file"][1] or "upload.jsonl")

    def _file_meta(self, req: FakeRequest) -> FakeResponse | dict:
        f = self.files.get(req.params["file_id"])
        return f["meta"] if f else FakeResponse(404, _error_body(404, "no such file", "not_found"))

    def _file_content(self, req: FakeRequest) -> FakeResponse:
        f = self.files.get(req.params["file_id"])
        if f is None:
            return FakeResponse(404, _error_body(404, "no such file", "not_found"))
        return FakeResponse(200, f["content"], {"Content-Type": "application/octet-stream"})

    # -- batches ---------------------------------------------------------------------
    def _create(self, req: FakeRequest) -> FakeResponse | dict:
        body = req.json if isinstance(req.json, dict) else {}
        f = self.files.get(str(body.get("input_file_id")))
        if f is None or body.get("endpoint") != "/v1/chat/completions":
            return FakeResponse(400, _error_body(400, "input_file_id and endpoint are required",
                                                 "invalid_request_error"))
        lines = [json.loads(x) for x in f["content"].decode().splitlines() if x.strip()]
        with self._lock:
            bid = f"batch_{len(self.batches) + 1:04d}"
            self.lines_received += len(lines)
            b = {"id": bid, "object": "batch", "endpoint": body["endpoint"], "errors": None,
                 "input_file_id": f["meta"]["id"], "completion_window": body.get("completion_window", "24h"),
                 "status": "validating", "output_file_id": None, "error_file_id": None,
                 "created_at": int(time.time()), "metadata": body.get("metadata"),
                 "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                 "_lines": lines}
            self.batches[bid] = b
            self._polls[bid] = 0
        return self._public(b)

    def _public(self, b: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in b.items() if not k.startswith("_")}

    def _retrieve(self, req: FakeRequest) -> FakeResponse | dict:
        b = self.batches.get(req.params["batch_id"])
        if b is None:
            return FakeResponse(404, _error_body(404, "no such batch", "not_found"))
        with self._lock:
            self._polls[b["id"]] += 1
            polls = self._polls[b["id"]]
        if b["status"] not in TERMINAL:
            self._advance(b, polls)
        return self._public(b)

    def _cancel(self, req: FakeRequest) -> FakeResponse | dict:
        b = self.batches.get(req.params["batch_id"])
        if b is None:
            return FakeResponse(404, _error_body(404, "no such batch", "not_found"))
        if b["status"] not in TERMINAL:
            self._finish(b, "cancelled", answered=0)
        return self._public(b)

    def _advance(self, b: dict[str, Any], polls: int) -> None:
        if self.mode == "hold" or polls < self.polls_to_finish:
            b["status"] = "in_progress"
        elif self.mode == "failed":
            b["status"] = "failed"
            b["errors"] = {"object": "list", "data": [{"code": "invalid_request",
                                                       "message": "injected batch failure"}]}
        elif self.mode == "expired":
            self._finish(b, "expired", answered=self.expired_done)
        else:
            self._finish(b, "completed", answered=len(b["_lines"]))

    def _finish(self, b: dict[str, Any], status: str, answered: int) -> None:
        out, err = [], []
        for n, line in enumerate(b["_lines"]):
            cid = line.get("custom_id")
            if n >= answered:
                err.append({"id": f"batch_req_{n}", "custom_id": cid, "response": None,
                            "error": {"code": f"batch_{status}", "message": f"batch {status} before this request ran"}})
            elif self.fail_line is not None and self.fail_line(cid, line.get("body") or {}):
                err.append({"id": f"batch_req_{n}", "custom_id": cid, "error": None,
                            "response": {"status_code": 500, "request_id": f"req_{n}",
                                         "body": _error_body(500, "injected line failure", "server_error")}})
            else:
                body = self.server.completion_body(line.get("body") or {}, n, time.time())
                out.append({"id": f"batch_req_{n}", "custom_id": cid, "error": None,
                            "response": {"status_code": 200, "request_id": f"req_{n}", "body": body}})
        b["status"] = status
        b["request_counts"] = {"total": len(b["_lines"]), "completed": len(out), "failed": len(err)}
        if out:
            b["output_file_id"] = self._new_file(_jsonl(out), "batch_output", "output.jsonl")["id"]
        if err:
            b["error_file_id"] = self._new_file(_jsonl(err), "batch_output", "errors.jsonl")["id"]


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()

"""OpenAI Batch API backend (``batch: true`` on rewrite and judge): half price, results within 24 h.

``generate`` writes the requests as JSONL (one ``custom_id`` per request: its store key),
uploads the file, creates a batch, records it in the run store *before* waiting, then polls
until the batch ends and collects the output and error files. Because the batch ids live in
the store (records of kind ``openai_batch``), a process killed between submit and completion
resumes by polling the same batches: a request already in an open batch is never sent again.
Collected answers are stored too (kind ``openai_batch.result``) until the caller commits them.

Failures: a line the API failed, and every line of an expired, failed or cancelled batch that
has no answer, comes back as ``Completion(error=...)``; the caller stores it as failed and the
next run sends it again in a new batch. Answers are priced at the Batch rates
(``warmbench.prices``). With a budget (``--max-usd``) each request's worst case is reserved
before it is submitted; requests that would not fit are not submitted (``BudgetReached``).
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..budget import NOT_SENT, worst_input_tokens
from ..budget import active as active_budget
from ..errors import WarmbenchError
from ..records import ChatRequest, Completion, SamplingParams
from ..store import RunStore, completion_key
from .base import ResultCallback, refuse_choices, request_seed
from .openai_backend import (
    OpenAIBackend,
    OpenAIOptions,
    _EmptyContent,
    _Filtered,
    _import_openai,
    _Malformed,
)
from .registry import parse_options
from .spec import ModelSpec, parse_spec

log = logging.getLogger("warmbench.openai.batch")

BATCH_KIND = "openai_batch"
RESULT_KIND = "openai_batch.result"
TERMINAL = ("completed", "expired", "failed", "cancelled")
MAX_LINES = 50_000  # the Batch API's limit per batch


class BatchesPending(WarmbenchError):
    """Batches are still running after ``max_wait``: rerun later to collect them."""


def batch_backend(spec: str | ModelSpec, store: RunStore,
                  options: Mapping[str, Mapping[str, Any]] | None = None,
                  **overrides: Any) -> OpenAIBatchBackend:
    """The Batch API backend of an ``openai:`` spec, options as ``get_backend`` takes them
    (the config's ``backend_options`` and keyword overrides, checked by ``OpenAIOptions``)."""
    ms = parse_spec(spec)   # a string from a caller's edge; a ModelSpec passes through
    if ms.backend != "openai":
        raise WarmbenchError(f"batch: true needs an openai: model, not {ms.text!r}")
    merged = {**((options or {}).get("openai") or {}), **overrides}
    return OpenAIBatchBackend(ms, parse_options("openai", merged), store=store)


class OpenAIBatchBackend(OpenAIBackend):
    """See the module docstring. Built by ``batch_backend(spec, store, options)``."""

    preferred_chunk_size = MAX_LINES

    def __init__(self, spec: ModelSpec, options: OpenAIOptions | None = None, *, store: RunStore,
                 batch_lines: int = MAX_LINES):
        o = options or OpenAIOptions()
        super().__init__(spec, o)
        if store is None:
            raise WarmbenchError("openai batch backend: needs the run store (batch ids live there)")
        self.store = store
        self.poll_seconds = float(o.poll_seconds)
        self.max_wait = o.max_wait
        self.batch_lines = max(1, min(int(batch_lines), MAX_LINES))
        self._sync: Any = None

    def __repr__(self) -> str:
        return f"OpenAIBatchBackend({self.spec.text!r}, base_url={self.base_url!r})"

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0, *,
             batch: bool = True) -> float:
        return super().cost(prompt_tokens, completion_tokens, cached_tokens, batch=True)

    def _client_sync(self) -> Any:
        if self._sync is None:
            openai = _import_openai()
            self._sync = openai.OpenAI(api_key=self._api_key, base_url=self.base_url,
                                       max_retries=self.max_retries, timeout=self.timeout)
        return self._sync

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None
        super().close()

    # -- the request lines ---------------------------------------------------------------
    def _body(self, req: ChatRequest, params: SamplingParams, sample_index: int) -> dict[str, Any]:
        # The same fields the synchronous backend sends, so both give the same answers.
        body: dict[str, Any] = {"model": self.spec.model, "messages": req.as_dicts(),
                                "temperature": params.temperature, "top_p": params.top_p,
                                self.max_tokens_param: params.max_tokens}
        if self.send_seed:
            body["seed"] = request_seed(req, params, sample_index)
        if self.extra_body:
            body.update(self.extra_body)
        return body

    # -- generate ------------------------------------------------------------------------
    def submit(self, requests: Sequence[ChatRequest], params: SamplingParams, *,
               sample_index: int = 0) -> int:
        """Submit, without waiting, every request neither stored, collected nor in an open
        batch; return how many were submitted. A caller with several request sets (rewrite:
        one per persona) submits them all first, so their batches run side by side."""
        identity = self.spec.identity()
        ids = [completion_key(identity, r, params, sample_index) for r in requests]
        done = self.store.done_keys(ids)
        todo = [(r, cid) for r, cid in zip(requests, ids, strict=True) if cid not in done]
        if not todo:
            return 0
        sent, _ = self._send([r for r, _ in todo], [cid for _, cid in todo], params, sample_index,
                             self._stored_results([cid for _, cid in todo]))
        return sent

    def generate(self, requests: Sequence[ChatRequest], params: SamplingParams, *,
                 sample_index: int = 0, on_result: ResultCallback | None = None) -> list[Completion]:
        refuse_choices(self.spec, params)
        if not requests:
            return []
        identity = self.spec.identity()
        ids = [completion_key(identity, r, params, sample_index) for r in requests]
        results = self._stored_results(ids)
        _, not_sent = self._send(requests, ids, params, sample_index, results)
        failed = self._wait_and_collect(set(ids) - set(results) - not_sent, results)
        out: list[Completion] = []
        for i, cid in enumerate(ids):
            if cid in not_sent:
                c = Completion(error=NOT_SENT)
            else:
                c = results.get(cid) or failed.get(cid) or Completion(error="batch: no result")
            out.append(c)
            if on_result is not None and c.error != NOT_SENT:
                on_result(i, c)
        budget = active_budget()
        if not_sent and budget is not None:
            raise budget.error()
        return out

    def _send(self, requests: Sequence[ChatRequest], ids: Sequence[str], params: SamplingParams,
              sample_index: int, results: dict[str, Completion]) -> tuple[int, set[str]]:
        """Submit what is neither collected nor in an open batch, within the budget; return
        (requests submitted, ids the budget kept back)."""
        open_batches = [b for b in self.store.iter(BATCH_KIND) if b["status"] != "collected"]
        pending = {cid for b in open_batches for cid in b["custom_ids"]}
        budget = active_budget()
        if budget is not None:  # batches of an earlier process still count until collected
            for b in open_batches:
                budget.hold(b["id"], b.get("worst_usd", 0.0))
        first: dict[str, int] = {}
        send = [i for i, cid in enumerate(ids)
                if cid not in results and cid not in pending and first.setdefault(cid, i) == i]
        not_sent: set[str] = set()
        if budget is not None:
            kept = []
            for i in send:
                if budget.try_reserve(self._worst(requests[i], params)):
                    kept.append(i)
                else:
                    not_sent.add(ids[i])
            send = kept
        for start in range(0, len(send), self.batch_lines):
            chunk = send[start : start + self.batch_lines]
            self._submit([(ids[i], self._body(requests[i], params, sample_index)) for i in chunk],
                         sum(self._worst(requests[i], params) for i in chunk))
        return len(send), not_sent

    def _worst(self, req: ChatRequest, params: SamplingParams) -> float:
        return self.cost(worst_input_tokens(req), params.max_tokens)

    def _stored_results(self, ids: Sequence[str]) -> dict[str, Completion]:
        out: dict[str, Completion] = {}
        for cid in set(ids):
            d = self.store.get(RESULT_KIND, cid)
            if d is not None:
                out[cid] = Completion.model_validate(d)
        return out

    def _submit(self, lines: list[tuple[str, dict[str, Any]]], worst_usd: float) -> str:
        client = self._client_sync()
        blob = "".join(json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions",
                                   "body": body}, ensure_ascii=False) + "\n" for cid, body in lines)
        f = client.files.create(file=("warmbench-batch.jsonl", io.BytesIO(blob.encode("utf-8"))),
                                purpose="batch")
        b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                  completion_window="24h", metadata={"source": "warmbench"})
        # Recorded the moment it exists: from here on a restart polls it instead of resending.
        budget = active_budget()
        if budget is not None:
            budget.hold(b.id, 0.0)  # its requests are reserved one by one already
        self.store.put(BATCH_KIND, b.id, {"id": b.id, "input_file_id": f.id, "status": "submitted",
                                          "model": self.spec.text, "custom_ids": [c for c, _ in lines],
                                          "worst_usd": worst_usd, "created": time.time()})
        log.info("batch %s submitted: %d requests to %s", b.id, len(lines), self.spec.text)
        return b.id

    def _wait_and_collect(self, wanted: set[str], results: dict[str, Completion]) -> dict[str, Completion]:
        """Poll every open batch holding a wanted request until it ends; collect it."""
        failed: dict[str, Completion] = {}
        t0 = time.monotonic()
        while True:
            open_b = [b for b in self.store.iter(BATCH_KIND)
                      if b["status"] != "collected" and wanted & set(b["custom_ids"])]
            if not open_b:
                return failed
            for rec in open_b:
                batch = self._client_sync().batches.retrieve(rec["id"])
                if batch.status in TERMINAL:
                    self._collect(rec, batch, results, failed)
            if all(self.store.get(BATCH_KIND, b["id"])["status"] == "collected" for b in open_b):
                continue
            if self.max_wait is not None and time.monotonic() - t0 > self.max_wait:
                raise BatchesPending(
                    f"{len(open_b)} batch(es) of {self.spec.text} still running after "
                    f"{self.max_wait:g} s ({', '.join(b['id'] for b in open_b)}); they are recorded "
                    "in the run store: run again to collect them (nothing is sent twice)")
            time.sleep(self.poll_seconds)

    def _collect(self, rec: dict[str, Any], batch: Any, results: dict[str, Completion],
                 failed: dict[str, Completion]) -> None:
        client = self._client_sync()
        got: set[str] = set()
        budget = active_budget()
        spent = 0.0
        if batch.output_file_id:
            for line in client.files.content(batch.output_file_id).text.splitlines():
                if not line.strip():
                    continue
                row = json.loads(line)
                cid = row.get("custom_id")
                c = self._line_completion(row)
                spent += c.usage.cost_usd
                got.add(cid)
                if c.ok:
                    self.store.put(RESULT_KIND, cid, c)
                    results[cid] = c
                else:
                    failed[cid] = c
        if batch.error_file_id:
            for line in client.files.content(batch.error_file_id).text.splitlines():
                if line.strip():
                    row = json.loads(line)
                    got.add(row.get("custom_id"))
                    failed[row.get("custom_id")] = self._line_completion(row)
        for cid in set(rec["custom_ids"]) - got:
            failed[cid] = Completion(error=f"batch {batch.status}: no result for this request")
        self.stats.failed += sum(1 for cid in rec["custom_ids"] if cid in failed)
        self.store.put(BATCH_KIND, rec["id"], {**rec, "status": "collected", "batch_status": batch.status})
        if budget is not None:
            budget.settle(rec.get("worst_usd", 0.0), spent)
        log.info("batch %s %s: %d answered, %d failed", rec["id"], batch.status,
                 len(got) - sum(1 for c in rec["custom_ids"] if c in failed), len(failed))

    def _line_completion(self, row: dict[str, Any]) -> Completion:
        """One output/error line as a completion (an answer, or a failure to retry next run)."""
        resp, err = row.get("response"), row.get("error")
        if err:
            return Completion(error=f"batch line: {err.get('code')}: {err.get('message')}"[:400])
        if not isinstance(resp, dict) or resp.get("status_code") != 200:
            status = resp.get("status_code") if isinstance(resp, dict) else None
            msg = ((resp or {}).get("body") or {}).get("error", {}).get("message", "") if isinstance(resp, dict) else ""
            return Completion(error=f"batch line: HTTP {status}: {msg}"[:400])
        openai = _import_openai()
        try:
            parsed = openai.types.chat.ChatCompletion.model_validate(resp.get("body"))
            c = self._to_completion(parsed)
            self.stats.succeeded += 1
            return c
        except _EmptyContent as exc:
            self.stats.succeeded += 1
            self.stats.empty += 1
            return exc.completion
        except (_Malformed, _Filtered, ValueError) as exc:
            return Completion(error=f"batch line: {type(exc).__name__.lstrip('_')}: {exc}"[:400])

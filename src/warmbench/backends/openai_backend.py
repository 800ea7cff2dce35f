"""``openai`` backend: any OpenAI-compatible chat-completions endpoint.

Spec forms: ``openai:MODEL`` (api.openai.com, or ``OPENAI_BASE_URL``) and
``openai:http://HOST:PORT/v1#MODEL`` (vLLM server, llama.cpp, Ollama, TGI, the fake server...).

Requests run on a private asyncio loop in a background thread (so ``generate`` works from any
thread, including one that already runs an event loop), at most ``concurrency`` at a time for
the whole backend. Each request is retried with exponential backoff and jitter on 429, 408/409,
5xx, timeouts, dropped connections, malformed bodies and empty content; a ``Retry-After`` (or
``retry-after-ms``) header sets the wait instead. 401/403/404 stop the batch at once (every
further request would fail the same way). A request that still fails after the budget comes
back as ``Completion(error=...)`` and is never mistaken for an answer. Content still empty
after the budget is a failure too (``error`` starting with ``EMPTY_CONTENT_ERROR``, finish_reason
kept): stored as an answer, one transient glitch would remove that prompt for good; as a failure
the next run retries it (the rewrite counts it under its ``empty`` check). ``on_result`` is called
from the calling thread as each request finishes.

The API key is never logged and error messages carry no headers (see ``warmbench.secrets``).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import queue
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import Field
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from ..budget import worst_input_tokens
from ..errors import MissingExtraError
from ..prices import Price, cached_tokens_of
from ..records import ChatRequest, Completion, SamplingParams, Usage
from ..secrets import resolve_api_key, resolve_base_url, scrub
from .async_bridge import LoopThread, run_batch, within_budget
from .base import EMPTY_CONTENT_ERROR, ResultCallback, refuse_choices, request_seed
from .registry import BackendOptions
from .spec import ModelSpec

log = logging.getLogger("warmbench.openai")

def price_per_1m(model: str) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens of an OpenAI model (``warmbench.prices``), else None."""
    from ..prices import lookup

    p = lookup(ModelSpec("openai", model))
    return (p.input, p.output) if p is not None else None


def uses_max_completion_tokens(model: str) -> bool:
    """Reasoning models (o1, o3, o4, gpt-5) reject ``max_tokens``."""
    name = model.split(":")[1] if model.startswith("ft:") else model
    return name.startswith(("o1", "o3", "o4", "gpt-5"))


class _EmptyContent(Exception):
    """The API answered 200 with no text: retried (a transient glitch of some servers); when
    the budget is spent, the empty answer itself is returned as a normal completion (see
    ``_complete``), so callers that check for emptiness (the rewrite's ``empty`` check) see it
    and classify or retry it themselves instead of mistaking it for a transport failure."""

    def __init__(self, message: str, completion: Completion):
        super().__init__(message)
        self.completion = completion


class _Malformed(Exception):
    """The API answered 200 with a body that is not a usable chat completion."""


class _Filtered(Exception):
    """The API's content filter withheld the answer: deterministic, so not retried."""


@dataclass
class UsageStats:
    """Running totals for this backend (all batches). ``http_requests`` counts every attempt."""

    http_requests: int = 0
    retries: int = 0
    succeeded: int = 0
    failed: int = 0
    empty: int = 0  # of ``failed``: replies still empty after every retry
    prompt_tokens: int = 0
    cached_tokens: int = 0  # of ``prompt_tokens``: served from OpenAI's prompt cache
    completion_tokens: int = 0
    cost_usd: float = 0.0
    price_known: bool = True


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``Retry-After`` as seconds or an HTTP date."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _import_openai() -> Any:
    try:
        import openai
    except ImportError as exc:  # pragma: no cover - openai is a core dependency
        raise MissingExtraError("openai", "all", "the openai backend") from exc
    return openai


def _status(exc: BaseException) -> int | None:
    return getattr(exc, "status_code", None)


def _is_retryable(exc: BaseException) -> bool:
    openai = _import_openai()
    if isinstance(exc, _EmptyContent | _Malformed | json.JSONDecodeError | asyncio.TimeoutError):
        return True
    if isinstance(exc, openai.APIConnectionError | openai.APIResponseValidationError):
        return True  # includes APITimeoutError
    if isinstance(exc, openai.APIStatusError):
        s = _status(exc) or 0
        return s in (408, 409, 429) or s >= 500
    return False


class OpenAIOptions(BackendOptions):
    concurrency: int = Field(8, ge=1, description="Requests in flight at once.")
    timeout: float = Field(60.0, gt=0, description="Seconds per request before it counts as failed.")
    max_retries: int = Field(6, ge=0, description="Retries after the first attempt (429, 5xx, timeouts).")
    api_key: str | None = Field(None, description="Key; default OPENAI_API_KEY (or the .env file).")
    base_url: str | None = Field(None, description="Server URL; default the spec's URL or OPENAI_BASE_URL.")
    price_per_1k: tuple[float, float] | None = Field(
        None, description="USD per 1,000 (input, output) tokens, for models without a known price.")
    backoff_base: float = Field(1.0, ge=0, description="First retry wait in seconds (doubles, jittered).")
    backoff_max: float = Field(60.0, ge=0, description="Longest wait between retries.")
    retry_after_max: float = Field(300.0, ge=0, description="Longest Retry-After honoured.")
    max_tokens_param: str | None = Field(
        None, description="max_tokens or max_completion_tokens; default by model family.")
    send_seed: bool = Field(True, description="Send the request's seed (see the seeding rule).")
    extra_body: dict[str, Any] | None = Field(None, description="Extra JSON fields of every request.")
    env_file: str | Path | None = Field(".env", description="A .env file to read keys from (None: none).")
    poll_seconds: float = Field(30.0, gt=0, description="Batch API (batch: true): seconds between polls.")
    max_wait: float | None = Field(None, gt=0, description="Batch API: stop waiting after this many seconds "
                                                          "(the batches stay recorded; rerun to collect).")


class OpenAIBackend:
    """See the module docstring; options: :class:`OpenAIOptions`."""

    # cached_generate hands over this many requests at once: each batch ends with its slowest
    # request, so small batches would waste the concurrency (results commit one by one anyway).
    preferred_chunk_size = 1024

    Options = OpenAIOptions

    def __init__(self, spec: ModelSpec, options: OpenAIOptions | None = None):
        o = options or OpenAIOptions()
        concurrency, timeout, max_retries = o.concurrency, o.timeout, o.max_retries
        api_key, base_url, price_per_1k, env_file = o.api_key, o.base_url, o.price_per_1k, o.env_file
        backoff_base, backoff_max, retry_after_max = o.backoff_base, o.backoff_max, o.retry_after_max
        max_tokens_param, send_seed, extra_body = o.max_tokens_param, o.send_seed, o.extra_body
        _import_openai()
        self.spec = spec
        self.base_url = resolve_base_url(base_url or spec.base_url, env_file=env_file)
        self._api_key = resolve_api_key(self.base_url, api_key, env_file=env_file)
        self.concurrency = concurrency
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self.max_tokens_param = max_tokens_param or (
            "max_completion_tokens" if uses_max_completion_tokens(spec.model) else "max_tokens")
        self.send_seed = send_seed
        self.extra_body = dict(extra_body) if extra_body else None
        # One price source (warmbench.prices: config ``prices:``, genai-prices, dated fallback);
        # ``price_per_1k`` (input, output USD per 1K tokens) overrides it for this backend.
        from ..prices import PriceOverride, lookup, price_from_override

        self._price: Price | None
        if price_per_1k is not None:
            self._price = price_from_override(PriceOverride(input=price_per_1k[0] * 1000,
                                                       output=price_per_1k[1] * 1000),
                                         "backend option price_per_1k")
        else:
            self._price = lookup(spec)
        self.stats = UsageStats(price_known=self._price is not None)
        if self._price is None:
            log.info("openai backend: unknown price for model %r, cost counted as 0", spec.model)
        self._loop_thread = LoopThread(f"openai-backend-{spec.model}")
        self._client: Any = None
        self._sem: asyncio.Semaphore | None = None

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIBackend({self.spec.text!r}, base_url={self.base_url!r})"

    # -- accounting --------------------------------------------------------------------
    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0, *,
             batch: bool = False) -> float:
        """USD of one request; cached input tokens (part of ``prompt_tokens``) at their rate."""
        if self._price is None:
            return 0.0
        return self._price.cost(prompt_tokens, completion_tokens, cached_tokens, batch=batch)

    @property
    def price(self) -> Price | None:
        return self._price

    def cost_summary(self) -> dict[str, Any]:
        d = asdict(self.stats)
        d["model"] = self.spec.model
        d["price_note"] = self._price.source if self._price else "unknown price (cost counted as 0)"
        return d

    # -- loop and client -----------------------------------------------------------------
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        loop, fresh = self._loop_thread.ensure()
        if fresh:  # a client and semaphore belong to the loop they were made on
            self._client = None
            self._sem = None
        return loop

    def _ensure_client(self) -> Any:
        # Created on the loop thread: the client's connection pool belongs to that loop.
        if self._client is None:
            openai = _import_openai()
            self._client = openai.AsyncOpenAI(api_key=self._api_key, base_url=self.base_url,
                                              max_retries=0, timeout=self.timeout)
            self._sem = asyncio.Semaphore(self.concurrency)
        return self._client

    def close(self) -> None:
        client, self._client = self._client, None
        self._loop_thread.close(client.close if client is not None else None)

    def __enter__(self) -> OpenAIBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- generation ----------------------------------------------------------------------
    def generate(self, requests: Sequence[ChatRequest], params: SamplingParams, *,
                 sample_index: int = 0, on_result: ResultCallback | None = None) -> list[Completion]:
        refuse_choices(self.spec, params)
        if not requests:
            return []
        requests = list(requests)
        return run_batch(self._ensure_loop(), len(requests),
                         lambda done: self._run_batch(requests, params, sample_index, done),
                         on_result)

    async def _run_batch(self, requests: list[ChatRequest], params: SamplingParams,
                         sample_index: int, done: queue.SimpleQueue) -> None:
        self._ensure_client()
        fatal: list[str] = []

        async def one(i: int, req: ChatRequest) -> None:
            assert self._sem is not None
            async with self._sem:
                if fatal:
                    c = Completion(error=fatal[0])
                else:
                    c = await within_budget(
                        lambda: self.cost(worst_input_tokens(req), params.max_tokens),
                        lambda: self._complete(req, params, sample_index, fatal))
            done.put((i, c))

        await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        ra = parse_retry_after(getattr(getattr(exc, "response", None), "headers", None))
        jitter = random.uniform(0, min(self.backoff_base, 1.0))
        if ra is not None:
            return min(ra, self.retry_after_max) + jitter
        return min(self.backoff_max, self.backoff_base * 2 ** (state.attempt_number - 1)) + jitter

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.debug("retrying after %s (attempt %d)", self._describe(exc), state.attempt_number)

    async def _complete(self, req: ChatRequest, params: SamplingParams, sample_index: int,
                        fatal: list[str]) -> Completion:
        retrying = AsyncRetrying(stop=stop_after_attempt(self.max_retries + 1), wait=self._wait,
                                 retry=retry_if_exception(_is_retryable),
                                 before_sleep=self._before_sleep, reraise=True)
        try:
            c = await retrying(self._once, req, params, sample_index)
            self.stats.succeeded += 1
            return c
        except asyncio.CancelledError:
            raise
        except _EmptyContent as exc:
            # Still empty after the whole budget: a failure, not an answer (see the docstring).
            self.stats.failed += 1
            self.stats.empty += 1
            attempts = retrying.statistics.get("attempt_number", 1)
            return exc.completion.model_copy(update={
                "error": f"{EMPTY_CONTENT_ERROR} after {attempts} attempt{'s' if attempts != 1 else ''} "
                         f"(finish_reason={exc.completion.finish_reason!r})"})
        except Exception as exc:
            self.stats.failed += 1
            attempts = retrying.statistics.get("attempt_number", 1)
            msg = f"{self._describe(exc)} (after {attempts} attempt{'s' if attempts != 1 else ''})"
            if _status(exc) in (401, 403, 404) and not fatal:
                fatal.append(f"{msg}; batch stopped")
                log.warning("openai backend %s: %s", self.spec.text, fatal[0])
            elif not _is_retryable(exc) and _status(exc) is None:
                log.warning("openai backend: unexpected %s", msg)
            return Completion(error=msg)

    def _describe(self, exc: BaseException | None) -> str:
        if exc is None:
            return "unknown error"
        status = _status(exc)
        text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        head = f"HTTP {status}" if status else type(exc).__name__.lstrip("_")
        return scrub(f"{head}: {text}", [self._api_key])[:400]

    async def _once(self, req: ChatRequest, params: SamplingParams, sample_index: int) -> Completion:
        client = self._ensure_client()
        kwargs: dict[str, Any] = {
            "model": self.spec.model,
            "messages": req.as_dicts(),
            "temperature": params.temperature,
            "top_p": params.top_p,
            self.max_tokens_param: params.max_tokens,
            "timeout": self.timeout,
        }
        if self.send_seed:
            kwargs["seed"] = request_seed(req, params, sample_index)
        if self.extra_body:
            kwargs["extra_body"] = self.extra_body
        self.stats.http_requests += 1
        # A hard ceiling too: httpx's timeout is per read, a server trickling bytes evades it.
        resp = await asyncio.wait_for(client.chat.completions.create(**kwargs), self.timeout + 5)
        return self._to_completion(resp)

    def _to_completion(self, resp: Any) -> Completion:
        usage = getattr(resp, "usage", None)
        pt = int(getattr(usage, "prompt_tokens", 0) or 0)
        ct = int(getattr(usage, "completion_tokens", 0) or 0)
        cached = cached_tokens_of(usage) if usage is not None else 0
        cost = self.cost(pt, ct, cached)
        # Tokens of a rejected answer are billed too, so they count before validation.
        self.stats.prompt_tokens += pt
        self.stats.cached_tokens += cached
        self.stats.completion_tokens += ct
        self.stats.cost_usd += cost
        choices = getattr(resp, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise _Malformed("response has no choices")
        message = getattr(choices[0], "message", None)
        if message is None:
            raise _Malformed("choice has no message")
        text = getattr(message, "content", None)
        if text is None:
            # A structured refusal is a real answer (the model declined), not a fault.
            text = getattr(message, "refusal", None)
        if not isinstance(text, str):
            raise _Malformed(f"content is {type(text).__name__}, not text")
        if not text.strip() and getattr(choices[0], "finish_reason", None) == "content_filter":
            raise _Filtered("content withheld by the API's content filter")
        completion = Completion(text=text, finish_reason=getattr(choices[0], "finish_reason", None),
                                usage=Usage(prompt_tokens=pt, completion_tokens=ct, cost_usd=cost,
                                            cached_tokens=cached))
        if not text.strip():
            raise _EmptyContent(f"empty content (finish_reason={completion.finish_reason!r})",
                                completion)
        return completion

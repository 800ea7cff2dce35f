"""``inspect`` backend: every model provider UK AISI Inspect supports, through its model API.

Spec form: ``inspect:PROVIDER/MODEL``, e.g. ``inspect:anthropic/claude-sonnet-4-0``,
``inspect:google/gemini-2.5-pro``, ``inspect:openai/gpt-4o``, ``inspect:mockllm/model``. The part
after ``inspect:`` is exactly what ``inspect eval --model`` takes, so one backend reaches every
provider instead of one warmbench backend per provider.

Inspect does the provider work: authentication (its own environment variables, e.g.
``ANTHROPIC_API_KEY``), retries with backoff on rate limits and transient errors
(``max_retries``, ``timeout``), and the per-model connection limit (``max_connections``, set
from ``concurrency``). This module only maps warmbench's ``ChatRequest``/``SamplingParams`` to
Inspect's messages and ``GenerateConfig`` and Inspect's ``ModelOutput`` back to a
``Completion`` with token usage and cost, which ``cached_generate`` stores (so answers are
cached and resumable like every other backend's, and the store's usage totals count them).

Cost: Inspect's own ``usage.total_cost`` when it knows the model's price (its model info, or
``inspect_ai.model.set_model_cost``); else warmbench's one price source (``price_per_1k`` from
the backend options, the config's ``prices:``, genai-prices by Inspect's provider name); else 0
with ``price_known`` False in ``cost_summary()``.

Requests run on one private asyncio loop in a background thread for the backend's lifetime
(provider clients are bound to the loop that first used them); ``on_result`` is called from
the calling thread as each request finishes.
"""

from __future__ import annotations

import asyncio
import logging
import queue
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field

if TYPE_CHECKING:
    from ..prices import Price

from ..budget import worst_input_tokens
from ..errors import MissingExtraError, WarmbenchError
from ..records import ChatRequest, Completion, SamplingParams, Usage
from ..secrets import scrub
from .async_bridge import LoopThread, run_batch, within_budget
from .base import ResultCallback, refuse_choices, request_seed
from .registry import BackendOptions
from .spec import ModelSpec

log = logging.getLogger("warmbench.inspect")


def import_inspect() -> Any:
    """The ``inspect_ai`` module, or a one-line error naming the extra."""
    try:
        import inspect_ai
    except ImportError as exc:
        raise MissingExtraError("inspect-ai", "inspect", "the inspect backend") from exc
    return inspect_ai


@dataclass
class InspectUsage:
    """Running totals for this backend (all batches)."""

    succeeded: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    price_known: bool = True


class InspectOptions(BackendOptions):
    concurrency: int = Field(8, ge=1, description="Requests in flight (Inspect's max_connections).")
    max_retries: int = Field(6, ge=0, description="Inspect's retries after the first attempt "
                             "(rate limits, transient errors; Inspect decides what is retryable).")
    timeout: int | None = Field(120, gt=0, description="Seconds per request, retries included.")
    model_args: dict[str, Any] = Field(default_factory=dict, description="Provider arguments "
                                       "passed to Inspect's get_model (what `inspect eval -M` sets).")
    base_url: str | None = Field(None, description="Provider base URL (Inspect's --model-base-url).")
    price_per_1k: tuple[float, float] | None = Field(
        None, description="USD per 1,000 (input, output) tokens, where Inspect knows no price.")
    send_seed: bool = Field(True, description="Send the request's seed (see the seeding rule).")


class InspectBackend:
    """See the module docstring; options: :class:`InspectOptions` (``backend_options:
    {inspect: {...}}`` in the experiment config)."""

    # Inspect bounds concurrency itself (max_connections): hand it big batches.
    preferred_chunk_size = 1024

    Options = InspectOptions

    def __init__(self, spec: ModelSpec, options: InspectOptions | None = None):
        o = options or InspectOptions()
        import_inspect()
        self.spec = spec
        self.concurrency = o.concurrency
        self.max_retries = o.max_retries
        self.timeout = o.timeout
        self.model_args = dict(o.model_args)
        self.base_url = o.base_url
        self.send_seed = o.send_seed
        from ..prices import PriceOverride, lookup, price_from_override

        self._price: Price | None = (
            price_from_override(PriceOverride(input=o.price_per_1k[0] * 1000,
                                              output=o.price_per_1k[1] * 1000),
                                "backend option price_per_1k")
            if o.price_per_1k is not None else lookup(spec))
        self.stats = InspectUsage()
        self._model: Any = None
        self._loop_thread = LoopThread(f"inspect-backend-{spec.model}")

    def __repr__(self) -> str:
        return f"InspectBackend({self.spec.text!r})"

    # -- model and loop ----------------------------------------------------------------
    def _get_model(self) -> Any:
        if self._model is None:
            from inspect_ai.model import GenerateConfig, get_model

            config = GenerateConfig(max_retries=self.max_retries, timeout=self.timeout,
                                    max_connections=self.concurrency)
            try:
                # memoize=False: our own handle, closed with the backend.
                self._model = get_model(self.spec.model, config=config, base_url=self.base_url,
                                        memoize=False, **self.model_args)
            except Exception as exc:  # unknown provider, missing provider package or key
                raise WarmbenchError(f"{self.spec.text}: Inspect could not open the model: "
                                     f"{scrub(str(exc))[:300]}") from None
        return self._model

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop_thread.ensure()[0]

    def close(self) -> None:
        self._loop_thread.close()

    def __enter__(self) -> InspectBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- accounting --------------------------------------------------------------------
    def cost(self, usage: Any, prompt_tokens: int, completion_tokens: int,
             cached_tokens: int = 0) -> float:
        """Inspect's own cost when it has one (its model database prices cache reads/writes
        apart); else warmbench's price (``price_per_1k``, the config's ``prices:``, genai-prices
        by provider); else 0, counted in ``cost_summary`` as an unknown price."""
        total = getattr(usage, "total_cost", None)
        if total is not None:
            return float(total)
        if self._price is None:
            self.stats.price_known = False
            return 0.0
        return self._price.cost(prompt_tokens, completion_tokens, cached_tokens)

    def cost_summary(self) -> dict[str, Any]:
        d = asdict(self.stats)
        d["model"] = self.spec.model
        d["price_note"] = (self._price.source if self._price else "Inspect's cost where known")
        if not self.stats.price_known:
            d["price_note"] += "; unknown price for some requests (counted as 0)"
        return d

    # -- generation --------------------------------------------------------------------
    def generate(self, requests: Sequence[ChatRequest], params: SamplingParams, *,
                 sample_index: int = 0, on_result: ResultCallback | None = None) -> list[Completion]:
        refuse_choices(self.spec, params)
        if not requests:
            return []
        model = self._get_model()
        requests = list(requests)
        return run_batch(self._ensure_loop(), len(requests),
                         lambda done: self._run_batch(model, requests, params, sample_index, done),
                         on_result)

    async def _run_batch(self, model: Any, requests: list[ChatRequest], params: SamplingParams,
                         sample_index: int, done: queue.SimpleQueue) -> None:
        # Our own bound too (Inspect's max_connections is the same number): a request reserves
        # its worst-case cost against ``--max-usd`` only as it goes out, as the openai backend.
        sem = asyncio.Semaphore(self.concurrency)
        async def one(i: int, req: ChatRequest) -> None:
            async with sem:
                c = await within_budget(
                    lambda: (self._price.cost(worst_input_tokens(req), params.max_tokens)
                             if self._price else 0.0),
                    lambda: self._complete(model, req, params, sample_index))
            done.put((i, c))

        await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))

    async def _complete(self, model: Any, req: ChatRequest, params: SamplingParams,
                        sample_index: int) -> Completion:
        from inspect_ai.model import GenerateConfig

        config = GenerateConfig(temperature=params.temperature, top_p=params.top_p,
                                max_tokens=params.max_tokens,
                                seed=request_seed(req, params, sample_index) if self.send_seed
                                else None)
        try:
            output = await model.generate(to_inspect_messages(req), config=config)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # retries are spent (Inspect retried what was retryable)
            self.stats.failed += 1
            msg = scrub(f"{type(exc).__name__}: {exc}")[:400]
            log.warning("inspect backend %s: %s", self.spec.text, msg)
            return Completion(error=msg)
        return self._to_completion(output)

    def _to_completion(self, output: Any) -> Completion:
        usage = output.usage
        pt = ct = 0
        cost = 0.0
        if usage is not None:
            # Inspect's input_tokens exclude cache reads/writes; all of them were sent.
            pt = int(usage.input_tokens + (usage.input_tokens_cache_read or 0)
                     + (usage.input_tokens_cache_write or 0))
            ct = int(usage.output_tokens)
            cost = self.cost(usage, pt, ct, int(usage.input_tokens_cache_read or 0))
        # Tokens of a failed answer are billed too, so they count before the error check.
        self.stats.prompt_tokens += pt
        self.stats.completion_tokens += ct
        self.stats.cost_usd += cost
        if output.error:
            self.stats.failed += 1
            return Completion(error=scrub(str(output.error))[:400],
                              usage=Usage(prompt_tokens=pt, completion_tokens=ct, cost_usd=cost))
        self.stats.succeeded += 1
        reason = output.choices[0].stop_reason if output.choices else None
        return Completion(text=output.completion or "", finish_reason=_finish_reason(reason),
                          usage=Usage(prompt_tokens=pt, completion_tokens=ct, cost_usd=cost))


def _finish_reason(stop_reason: str | None) -> str | None:
    """Inspect's stop reasons in the OpenAI words the rest of warmbench uses."""
    return {"max_tokens": "length", "model_length": "length"}.get(stop_reason or "", stop_reason)


def to_inspect_messages(req: ChatRequest) -> list[Any]:
    from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser

    kinds = {"system": ChatMessageSystem, "user": ChatMessageUser,
             "assistant": ChatMessageAssistant}
    return [kinds[m.role](content=m.content) for m in req.messages]

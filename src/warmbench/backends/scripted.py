"""A deterministic fake backend for tests and dry runs.

Spec forms:
- ``scripted:echo``      reply with the last user message
- ``scripted:constant=TEXT``  always reply TEXT
- ``scripted:hash``      a reply chosen deterministically from a small pool by hashing the request
Or pass ``replies=[...]`` (a queue, cycled) or ``fn=callable(request, params, sample_index) -> str``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from pydantic import Field

from ..errors import WarmbenchError
from ..records import ChatRequest, Completion, SamplingParams, Usage
from .base import ResultCallback
from .registry import BackendOptions
from .spec import ModelSpec

_POOL = (
    "The answer is Paris.",
    "I think it is 42.",
    "I'm not sure, but it could be the first option.",
    "I'm sorry, but I cannot help with that.",
    "That is correct: (A).",
)


class ScriptedOptions(BackendOptions):
    replies: tuple[str, ...] | None = Field(
        None, description="Replies handed out in turn, cycling (tests; overrides the spec's mode).")
    fn: Callable[[ChatRequest, SamplingParams, int], str] | None = Field(
        None, description="reply = fn(request, params, sample_index) (tests, from Python only).")


class ScriptedBackend:
    Options = ScriptedOptions

    def __init__(self, spec: ModelSpec, options: ScriptedOptions | None = None):
        o = options or ScriptedOptions()
        replies, fn = o.replies, o.fn
        self.spec = spec
        self._replies = list(replies) if replies else None
        self._fn = fn
        self._i = 0
        self.calls = 0
        mode = spec.model.split("=", 1)[0]
        if fn is None and replies is None and mode not in ("echo", "constant", "hash"):
            raise WarmbenchError(
                f"scripted backend {spec.model!r}: expected echo, constant=TEXT or hash"
            )

    def _reply(self, req: ChatRequest, params: SamplingParams, sample_index: int) -> str:
        if self._fn is not None:
            return self._fn(req, params, sample_index)
        if self._replies is not None:
            r = self._replies[self._i % len(self._replies)]
            self._i += 1
            return r
        last_user = next((m.content for m in reversed(req.messages) if m.role == "user"), "")
        mode, _, arg = self.spec.model.partition("=")
        if mode == "echo":
            return last_user
        if mode == "constant":
            return arg
        h = hashlib.sha256(
            (self.spec.text + repr(req.as_dicts()) + str(sample_index)).encode()
        ).digest()
        return _POOL[h[0] % len(_POOL)]

    def generate(
        self,
        requests: Sequence[ChatRequest],
        params: SamplingParams,
        *,
        sample_index: int = 0,
        on_result: ResultCallback | None = None,
    ) -> list[Completion]:
        out = []
        for i, req in enumerate(requests):
            self.calls += 1
            text = self._reply(req, params, sample_index)
            if params.choices:
                # Constrained: the scripted reply when it is one of the choices, else the
                # choice it contains (longest first: INCORRECT before CORRECT), else the first.
                found = [c for c in sorted(params.choices, key=len, reverse=True) if c in text]
                text = text if text in params.choices else (found[0] if found else params.choices[0])
            words = text.split()
            finish = "stop"
            if len(words) > params.max_tokens:
                text, finish = " ".join(words[: params.max_tokens]), "length"
            c = Completion(
                text=text,
                finish_reason=finish,
                usage=Usage(prompt_tokens=sum(len(m.content.split()) for m in req.messages),
                            completion_tokens=len(text.split())),
            )
            if on_result:
                on_result(i, c)
            out.append(c)
        return out

    def close(self) -> None:
        pass

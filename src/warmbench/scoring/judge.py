"""The LLM judge: versioned prompts, an injection-proof answer block, strict verdict parsing.

Flow per answer: build the prompt (the answer HTML-escaped inside ``<answer>…</answer>``, so it
cannot close the block or forge the grading instructions), generate at temperature 0 through
``cached_generate`` (kind ``judge``: identical item + answer text + judge + prompt version is judged
once), parse the *judge's* reply strictly. A reply whose last non-empty line is not exactly
``VERDICT: <word>`` (or that states two different verdicts) is asked once more in the same
conversation; a second failure is stored as UNPARSEABLE with the raw replies, never guessed.
Backend errors are not verdicts: they are left for the next run to retry.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from warmbench.backends.base import Backend
from warmbench.backends.spec import ModelSpec
from warmbench.eval import registry
from warmbench.eval.rubric import BUILTIN, JudgePrompt, load_rubric
from warmbench.generation import cached_generate
from warmbench.progress import Progress
from warmbench.records import ChatMessage, ChatRequest, Item, Label, SamplingParams
from warmbench.store import RunStore

from .reference import Decision

# Answers longer than this are cut (head and tail kept) so one runaway answer cannot blow the
# judge's context window; the cut is marked inside the block.
MAX_ANSWER_CHARS = 12_000
MAX_DETAIL_CHARS = 2_000



def load_prompt(name: str) -> JudgePrompt:
    """A built-in rubric by name (``resources/judge/<name>.yaml``) or a rubric file path."""
    return load_rubric(name if "/" in name or "." in name else BUILTIN + name)


def prompt_for(dataset: str) -> JudgePrompt:
    """The rubric that judges this dataset (its spec's, else the free-text answer rubric)."""
    spec = registry.get(dataset)
    if spec is None or not spec.judge_rubric:
        return load_rubric(BUILTIN + "answer")
    default = BUILTIN + ("harmful" if spec.kind == "open" else "answer")
    return load_rubric(spec.judge_rubric, default)


def reference_only(dataset: str) -> bool:
    """Sets the study regex-scored (multiple choice, numeric): never sent to the judge."""
    spec = registry.get(dataset)
    return spec is not None and not spec.judged


# Suffix of a constrained judge's scorer name: its verdicts are a different measurement from
# the same model's free-text verdicts and are cached and compared separately.
CONSTRAINED = "+choice"


def scorer_name(judge_spec: str | ModelSpec, prompt: JudgePrompt, constrained: bool = False) -> str:
    # str(): a ModelSpec is written as its spec text, so verdict keys are those of a string.
    return f"judge:{judge_spec}@{prompt.tag}" + (CONSTRAINED if constrained else "")


def verdict_choices(prompt: JudgePrompt) -> tuple[str, ...]:
    """The only replies a constrained judge may give: one ``VERDICT: <word>`` line each."""
    return tuple(f"VERDICT: {w}" for w in prompt.verdicts)


def escape_answer(text: str) -> str:
    """The answer as it sits in the block: truncated if huge, then ``& < >`` escaped.

    Escaping makes a literal ``</answer>`` (or any tag) inside the answer impossible, so the
    answer cannot end the block early and append text that looks like our instructions.
    """
    t = text or ""
    if len(t) > MAX_ANSWER_CHARS:
        keep = MAX_ANSWER_CHARS // 2
        t = f"{t[:keep]}\n[... {len(t) - 2 * keep} characters cut ...]\n{t[-keep:]}"
    return html.escape(t, quote=False)


def build_request(prompt: JudgePrompt, item: Item, answer: str, question: str | None = None) -> ChatRequest:
    """The judge conversation for one answer. ``question`` defaults to the item's question."""
    correct = list(item.correct_answers)
    if item.choices and item.answer_index is not None:
        correct = [item.choices[item.answer_index]] + [c for c in correct if c != item.choices[item.answer_index]]
    incorrect = item.incorrect_answer or ""
    fields = {
        "question": question or item.question,
        "correct": "\n".join(f"- {c}" for c in correct) if correct else "- (none given)",
        "incorrect": incorrect,
        "incorrect_line": f"\nA known INCORRECT answer: {incorrect}\n" if incorrect else "",
        "answer": escape_answer(answer),
    }
    # str.format on our own template only; the answer is a value, so braces in it are inert.
    user = prompt.user.format(**fields)
    return ChatRequest(messages=(ChatMessage(role="system", content=prompt.system),
                                 ChatMessage(role="user", content=user)))


_VERDICT_LINE = re.compile(r"^\W*verdict\W*:\W*([A-Za-z]+)\W*$", re.IGNORECASE)


def parse_verdict(reply: str, prompt: JudgePrompt) -> str | None:
    """The verdict word, or ``None`` when the reply is not in the required format.

    Required: the last non-empty line is ``VERDICT: <word>`` with ``<word>`` one of the prompt's
    verdicts (markdown emphasis and a final period tolerated), and no other ``VERDICT:`` line in
    the reply names a different word.
    """
    lines = [ln.strip() for ln in (reply or "").splitlines() if ln.strip()]
    if not lines:
        return None
    m = _VERDICT_LINE.match(lines[-1])
    if m is None:
        return None
    word = m.group(1).upper()
    if word not in prompt.verdicts:
        return None
    for ln in lines[:-1]:
        other = _VERDICT_LINE.match(ln)
        if other is not None and other.group(1).upper() != word:
            return None
    return word


def _decision(word: str, prompt: JudgePrompt, scorer: str, reply: str) -> Decision:
    label: Label = prompt.verdicts[word]  # type: ignore[assignment]
    return Decision(label, scorer, refused=word in prompt.refused_when, detail=reply[-MAX_DETAIL_CHARS:])


def judge_answers(
    store: RunStore,
    backend: Backend,
    cases: Sequence[tuple[Item, str, str | None]],
    *,
    max_tokens: int = 512,
    constrained: bool = False,
    progress: Progress | None = None,
) -> list[Decision | None]:
    """Judge (item, answer text, question shown) cases; ``None`` where the backend failed.

    ``constrained``: the judge's reply is whichever allowed verdict line the model finds most
    likely (local backends only), so every verdict parses and there is no retry round.
    """
    spec = backend.spec.text
    prompts = [prompt_for(item.dataset) for item, _, _ in cases]
    requests = [build_request(p, item, ans, q) for p, (item, ans, q) in zip(prompts, cases, strict=True)]
    if constrained:
        return _judge_constrained(store, backend, prompts, requests, progress)
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens)
    first = cached_generate(store, backend, requests, params, kind="judge", progress=progress,
                            description=f"judge · {spec}")
    out: list[Decision | None] = [None] * len(cases)
    retry_idx: list[int] = []
    for i, (p, c) in enumerate(zip(prompts, first, strict=True)):
        if not c.ok:
            continue
        word = parse_verdict(c.text, p)
        if word is None:
            retry_idx.append(i)
        else:
            out[i] = _decision(word, p, scorer_name(spec, p), c.text)
    if retry_idx:
        retries = [
            ChatRequest(messages=(*requests[i].messages,
                                  ChatMessage(role="assistant", content=first[i].text or "(empty)"),
                                  ChatMessage(role="user", content=prompts[i].retry)))
            for i in retry_idx
        ]
        second = cached_generate(store, backend, retries, params, kind="judge", progress=progress,
                                 description=f"judge retry · {spec}")
        for i, c in zip(retry_idx, second, strict=True):
            if not c.ok:
                continue
            p = prompts[i]
            word = parse_verdict(c.text, p)
            if word is None:
                raw = f"first reply: {first[i].text!r}\nsecond reply: {c.text!r}"
                out[i] = Decision("UNPARSEABLE", scorer_name(spec, p), detail=raw[:MAX_DETAIL_CHARS])
            else:
                out[i] = _decision(word, p, scorer_name(spec, p), c.text)
    return out


def _judge_constrained(store: RunStore, backend: Backend, prompts: Sequence[JudgePrompt],
                       requests: Sequence[ChatRequest], progress: Progress | None) -> list[Decision | None]:
    """One constrained generation per prompt kind (each has its own verdict words)."""
    spec = backend.spec.text
    out: list[Decision | None] = [None] * len(requests)
    for tag in dict.fromkeys(p.tag for p in prompts):
        idx = [i for i, p in enumerate(prompts) if p.tag == tag]
        p = prompts[idx[0]]
        params = SamplingParams(temperature=0.0, max_tokens=16, choices=verdict_choices(p))
        comps = cached_generate(store, backend, [requests[i] for i in idx], params, kind="judge",
                                progress=progress, description=f"judge (constrained) · {spec}")
        for i, c in zip(idx, comps, strict=True):
            word = parse_verdict(c.text, p) if c.ok else None
            if word is not None:
                out[i] = _decision(word, p, scorer_name(spec, p, constrained=True), c.text)
    return out

"""Persona prompts (the study's warm / cold rewrite prompts as package data, or a user file)
and the request sent to the rewriter for one assistant turn."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from ..errors import WarmbenchError
from ..records import ChatMessage, ChatRequest

BUILTIN = "builtin:"


def _strip_header(text: str) -> str:
    """Drop the leading '# ' provenance lines of a package prompt file."""
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines) and lines[i].startswith("# "):
        i += 1
    return "".join(lines[i:]).strip("\n")


def _package_text(name: str) -> str:
    return resources.files("warmbench").joinpath("resources", "rewrite", name).read_text(encoding="utf-8")


def builtin_personas() -> list[str]:
    root = resources.files("warmbench").joinpath("resources", "rewrite")
    return sorted(p.name[:-4] for p in root.iterdir() if p.name.endswith(".txt") and p.name != "request.txt")


def load_persona_prompt(source: str) -> str:
    """'builtin:warm' / 'builtin:cold' (the study's prompts) or a path to a prompt text file."""
    if source.startswith(BUILTIN):
        name = source[len(BUILTIN):]
        if name not in builtin_personas():
            raise WarmbenchError(f"persona prompt {source!r}: unknown builtin "
                                 f"(known: {', '.join(BUILTIN + n for n in builtin_personas())})")
        return _strip_header(_package_text(f"{name}.txt"))
    p = Path(source)
    if not p.is_file():
        raise WarmbenchError(f"persona prompt file not found: {p} (or use builtin:warm / builtin:cold)")
    text = p.read_text(encoding="utf-8").strip()
    if not text:
        raise WarmbenchError(f"persona prompt file is empty: {p}")
    return text


REQUEST_TEMPLATE = _strip_header(_package_text("request.txt"))


def build_request(system: str, user_message: str, original: str, tag: str | None = None) -> ChatRequest:
    """System = the persona prompt; user = the user's message and the original reply, delimited.

    ``str.replace`` rather than ``str.format``: chat logs are full of braces (code, JSON).
    """
    content = REQUEST_TEMPLATE.replace("{user_message}", user_message.strip()).replace(
        "{original_response}", original.strip())
    return ChatRequest(messages=(ChatMessage(role="system", content=system),
                                 ChatMessage(role="user", content=content)), tag=tag)


_WRAP = re.compile(r"^\s*<(rewritten_response|response|original_response)>\s*\n?(.*?)\n?\s*</\1>\s*$", re.S)


def clean_rewrite(text: str) -> str:
    """Trim whitespace and unwrap a reply that wrapped itself in one of our tags."""
    m = _WRAP.match(text)
    return (m.group(2) if m else text).strip()

"""API keys and base URLs: from arguments, the environment or a ``.env`` file; never logged.

``.env`` is read with python-dotenv's ``dotenv_values`` (the file is parsed, nothing is exported
into ``os.environ``), so a key read for one backend does not leak into subprocesses.

Which key goes where:
- the OpenAI API and other remote endpoints: ``api_key=`` > ``OPENAI_API_KEY`` > ``WARMBENCH_API_KEY``
  (environment first, then ``.env``);
- local endpoints (127.0.0.1, localhost, ::1, 0.0.0.0): ``api_key=`` > ``WARMBENCH_API_KEY``, else a
  dummy key. Your OpenAI key is never sent to a local server (it may be anything listening there).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlparse

from .errors import WarmbenchError

OPENAI_BASE_URL = "https://api.openai.com/v1"
REMOTE_KEY_VARS = ("OPENAI_API_KEY", "WARMBENCH_API_KEY")
LOCAL_KEY_VARS = ("WARMBENCH_API_KEY",)
DUMMY_KEY = "no-key-needed"  # sent to local servers that ignore authentication
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "[::1]"}
_SECRET_PATTERN = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{6,}|Bearer\s+\S+)")


def read_dotenv(env_file: str | Path | None = ".env") -> dict[str, str]:
    """Values of a ``.env`` file without touching ``os.environ``.

    ``".env"`` (the default) means: the nearest ``.env`` in the working directory or above it.
    ``None`` disables the lookup. A missing file gives ``{}``.
    """
    if env_file is None:
        return {}
    from dotenv import dotenv_values, find_dotenv

    path = find_dotenv(".env", usecwd=True) if str(env_file) == ".env" else str(env_file)
    if not path or not Path(path).is_file():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v}


def is_local_url(url: str) -> bool:
    host = (urlparse(url).hostname or "").lower()
    return host in _LOCAL_HOSTS or host.endswith(".localhost")


def _lookup(names: Iterable[str], env: Mapping[str, str], dotenv: Mapping[str, str]) -> str | None:
    for source in (env, dotenv):
        for name in names:
            v = source.get(name)
            if v and v.strip():
                return v.strip()
    return None


def resolve_base_url(explicit: str | None = None, *, env: Mapping[str, str] | None = None,
                     env_file: str | Path | None = ".env") -> str:
    """``explicit`` > ``OPENAI_BASE_URL`` (environment, then ``.env``) > api.openai.com."""
    if explicit:
        return explicit.rstrip("/")
    env = os.environ if env is None else env
    found = _lookup(("OPENAI_BASE_URL",), env, read_dotenv(env_file))
    return (found or OPENAI_BASE_URL).rstrip("/")


def resolve_api_key(base_url: str, explicit: str | None = None, *,
                    env: Mapping[str, str] | None = None,
                    env_file: str | Path | None = ".env") -> str:
    """The key to send to ``base_url``; a one-line error when a remote endpoint has none."""
    if explicit:
        return explicit
    env = os.environ if env is None else env
    local = is_local_url(base_url)
    key = _lookup(LOCAL_KEY_VARS if local else REMOTE_KEY_VARS, env, read_dotenv(env_file))
    if key:
        return key
    if local:
        return DUMMY_KEY
    host = urlparse(base_url).hostname or base_url
    raise WarmbenchError(
        f"no API key for {host}: set OPENAI_API_KEY (or WARMBENCH_API_KEY) in the environment "
        "or in a .env file"
    )


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Mask the given secrets and anything that looks like a key or a bearer header."""
    for s in secrets:
        if s and len(s) >= 4 and s != DUMMY_KEY:
            text = text.replace(s, "***")
    return _SECRET_PATTERN.sub("***", text)

"""Names that become file names, and output paths that must stay inside their run directory.

Arm, persona and data-set names end up in paths (``RUN/rewrite/<persona>.jsonl``,
``RUN/stats/results_<arm>.csv``), so a name such as ``../../x`` or ``a/b`` would write outside
the run directory or create folders. Names are checked once, at config load (and again where
a name comes from data rather than the config); every output path is checked by ``inside``.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import WarmbenchError

# A letter or digit first (no hidden files, no '-option'), then letters, digits, '.', '_', '-';
# at most 64 characters. No '/', '\\', spaces or '..' (checked separately: 'a..b' is refused
# too, as it reads like a traversal in logs).
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def is_safe_name(name: object) -> bool:
    return isinstance(name, str) and SAFE_NAME.fullmatch(name) is not None and ".." not in name


def check_name(what: str, name: object) -> str:
    """``name`` unchanged if it is safe in a file name, else a ValueError naming ``what``
    (pydantic turns it into ``arms[2].name: ...``)."""
    if not is_safe_name(name):
        raise ValueError(
            f"{what} {name!r} is not a safe name: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (it becomes part of file names)")
    return name  # type: ignore[return-value]


def require_name(what: str, name: object) -> str:
    """``check_name`` for names read from data: a WarmbenchError (one line) instead."""
    try:
        return check_name(what, name)
    except ValueError as e:
        raise WarmbenchError(str(e)) from None


def inside(root: str | Path, *parts: str) -> Path:
    """``root/parts...``, refused when it resolves outside ``root`` (``..``, an absolute part,
    a symlink pointing out)."""
    base = Path(root).resolve()
    path = Path(root).joinpath(*parts)
    if not path.resolve().is_relative_to(base):
        raise WarmbenchError(f"output path {path} leaves the directory {root}: refused "
                             f"(a name with '..' or '/' in it?)")
    return path

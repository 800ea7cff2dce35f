"""``manifest.json``: resolved config, versions, git revision and seeds, never a secret."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .errors import WarmbenchError
from .layout import RunLayout

if TYPE_CHECKING:
    from .config import ExperimentConfig

_PACKAGES = ("torch", "transformers", "peft", "trl", "vllm", "openai", "pandas", "statsmodels",
             "scipy", "numpy", "pydantic", "sentence-transformers", "matplotlib")
# Key names that hold credentials: api_key, hf_token, access-token, client_secret, password...
# Anchored at the end so counts such as max_tokens / prompt_tokens are kept (the config is read
# back from the manifest by `warmbench judge RUN`, so a masked number would break it).
_SECRET_KEY = re.compile(
    r"(api[_-]?key|(^|[_-])(access[_-]?)?token|secret|password|passwd|authorization|credentials?)$",
    re.I)
_SECRET_VALUE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|hf_[A-Za-z0-9]{8,})")


def redact(obj: Any) -> Any:
    """Drop values under secret-looking keys and mask secret-looking strings anywhere."""
    if isinstance(obj, dict):
        return {k: ("***" if _SECRET_KEY.search(str(k)) and v else redact(v)) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [redact(v) for v in obj]
    if isinstance(obj, str):
        s = _SECRET_VALUE.sub("***", obj)
        for name in ("OPENAI_API_KEY", "WARMBENCH_API_KEY", "HF_TOKEN"):
            val = os.environ.get(name)
            if val and len(val) >= 6:
                s = s.replace(val, "***")
        return s
    return obj


def package_versions() -> dict[str, str]:
    out = {"warmbench": __version__, "python": sys.version.split()[0]}
    for p in _PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[p] = metadata.version(p)
    return out


def git_revision() -> str | None:
    """The installed warmbench's commit, with "+dirty" when its tracked files have uncommitted
    changes (the commit alone would then not say which code produced a number)."""
    try:
        here = Path(__file__).resolve().parent
        r = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                           text=True, timeout=5)
        rev = r.stdout.strip()
        if not rev or r.returncode:
            return None
        d = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=5)
        return rev + ("+dirty" if d.returncode == 0 and d.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def update_manifest(run_dir: str | Path, **sections: Any) -> Path:
    """Merge sections into ``run_dir/manifest.json`` (created if absent)."""
    path = RunLayout(run_dir).manifest
    data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    data["versions"] = package_versions()
    data["git_revision"] = git_revision()
    data["platform"] = platform.platform()
    for k, v in sections.items():
        if isinstance(v, dict) and isinstance(data.get(k), dict):
            data[k] = {**data[k], **v}
        else:
            data[k] = v
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(redact(data), indent=2, ensure_ascii=False, default=str))
    tmp.replace(path)
    return path


def recorded_config(run_dir: str | Path) -> dict[str, Any]:
    """The config RUN/manifest.json recorded (as written: secrets masked), {} when there is
    none; a manifest that is not JSON is a one-line error."""
    mpath = RunLayout(run_dir).manifest
    if not mpath.is_file():
        return {}
    try:
        data = json.loads(mpath.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise WarmbenchError(f"{mpath}: not valid JSON ({e})") from None
    cfg = data.get("config") if isinstance(data, dict) else None
    return cfg if isinstance(cfg, dict) else {}


def load_run_config(run_dir: str | Path, config: str | Path | None = None) -> ExperimentConfig:
    """The config of an existing run, for commands that work on one (``warmbench judge``): the
    YAML file ``config`` when given, else the one RUN/manifest.json recorded, else the
    defaults; its ``run_dir`` is ``run_dir``. Errors name the file they came from."""
    from .config import load_config, parse_config

    data = load_config(config).model_dump(mode="json") if config is not None \
        else recorded_config(run_dir)
    data["run_dir"] = str(run_dir)
    return parse_config(data, source=str(config or RunLayout(run_dir).manifest))

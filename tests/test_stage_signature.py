"""One stage signature (``run(cfg, store, progress) -> StageResult``) and config overrides by
dotted path (``ExperimentConfig.with_overrides``)."""

from __future__ import annotations

import importlib
import inspect
import json

import pytest

from warmbench.config import parse_config
from warmbench.errors import WarmbenchError
from warmbench.pipeline import STAGES, StageIncomplete, expand_base, run_pipeline
from warmbench.records import stable_hash
from warmbench.stage import StageResult, failures


def test_with_overrides_sets_dotted_paths_and_keeps_the_original():
    cfg = parse_config({"arms": [{"name": "original", "model": "scripted:echo"}]})
    new = cfg.with_overrides({"train.limit": 3, "rewrite.personas": {"warm": "builtin:warm"},
                              "arms.0.model": "scripted:constant=hi",
                              "backend_options.hf.batch_size": 4, "seed": 7})
    assert new.train.limit == 3 and new.seed == 7
    assert new.rewrite.personas == {"warm": "builtin:warm"}
    assert str(new.arms[0].model) == "scripted:constant=hi"
    assert new.backend_options == {"hf": {"batch_size": 4}}
    # a new object; the original is unchanged
    assert cfg.train.limit is None and cfg.seed == 0 and str(cfg.arms[0].model) == "scripted:echo"


@pytest.mark.parametrize("path, match", [
    ("train.limt", r"^<command line>: train\.limt: unknown field 'train\.limt'$"),
    ("trian.limit", r"^<command line>: trian\.limit: unknown field 'trian'$"),
    ("arms.3.model", r"^<command line>: arms\.3\.model: no item '3' in arms \(it has 1\)$"),
    ("seed.x", r"^<command line>: seed\.x: seed is a value, not a section$"),
])
def test_with_overrides_names_a_bad_path(path, match):
    cfg = parse_config({"arms": [{"name": "original", "model": "scripted:echo"}]})
    with pytest.raises(WarmbenchError, match=match):
        cfg.with_overrides({path: 1}, "<command line>")


def test_with_overrides_names_a_bad_value_in_one_line():
    cfg = parse_config({})
    with pytest.raises(WarmbenchError) as e:
        cfg.with_overrides({"train.limit": "many"}, "<command line>")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("<command line>: train.limit: ") and "'many'" in msg
    with pytest.raises(WarmbenchError, match=r"arms\[0\]\.model: unknown backend"):
        parse_config({"arms": [{"name": "a", "model": "scripted:echo"}]}).with_overrides(
            {"arms.0.model": "hff:x"})


def test_expand_base_substitutes_the_base_in_every_model():
    cfg = parse_config({"run_dir": "runs/x", "base_models": ["org/Big-1"],
                        "train": {"base_model": "hf:{base}"},
                        "arms": [{"name": "original", "model": "hf:{base}"},
                                 {"name": "api", "model": "scripted:echo"}]})
    sub = expand_base(cfg, "org/Big-1")
    assert str(sub.train.base_model) == "hf:org/Big-1"
    assert [str(a.model) for a in sub.arms] == ["hf:org/Big-1", "scripted:echo"]
    assert sub.base_models == [] and sub.run_dir.endswith("models/Big-1")


def test_every_stage_has_the_one_signature():
    for stage in STAGES:
        mod, fn = stage.target.split(":")
        params = list(inspect.signature(getattr(importlib.import_module(mod), fn)).parameters.values())
        assert [p.name for p in params[:3]] == ["cfg", "store", "progress"], stage.name
        # anything more is a keyword-only test hook (judge's scripted backend, eval's factory)
        assert all(p.kind is p.KEYWORD_ONLY and p.default is None for p in params[3:]), stage.name


def test_stage_result_reads_like_its_summary():
    r = StageResult({"answers": 3, "failed_total": 4, "failed_rows": ["a", "b"]})
    assert r["answers"] == 3 and r.get("skipped") is None and dict(r)["answers"] == 3
    assert r == {"answers": 3, "failed_total": 4, "failed_rows": ["a", "b"]}
    assert (r.failed, r.failed_rows) == (4, ["a", "b"]) == failures(dict(r))
    assert StageResult({}).failed == 0


def test_pipeline_calls_every_stage_the_same_way(tmp_path, monkeypatch):
    calls: list[tuple[str, tuple, dict]] = []

    def fake(name, summary):
        def run(*args, **kwargs):
            calls.append((name, args, kwargs))
            return StageResult(summary)
        return run

    for stage in STAGES:
        mod, fn = stage.target.split(":")
        summary = {"stage": stage.name}
        if stage.name == "judge":
            summary |= {"failed_total": 1, "failed_rows": ["judge a1"]}
        monkeypatch.setattr(importlib.import_module(mod), fn, fake(stage.name, summary))
    cfg = parse_config({"run_dir": str(tmp_path / "run"),
                        "arms": [{"name": "original", "model": "scripted:echo"},
                                 {"name": "warm", "model": "scripted:echo", "persona": "warm"}]})
    results = run_pipeline(cfg, stop="eval")
    assert list(results) == ["curate", "rewrite", "train", "warmth", "eval"]
    assert [c[0] for c in calls] == list(results)
    for _, args, kwargs in calls:
        assert len(args) == 3 and not kwargs and args[0] is cfg
        assert str(args[1].run_dir) == cfg.run_dir
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stage_results"]["eval"] == {"stage": "eval"}
    # failed rows of a StageResult stop the run, one line, and the stage is not done
    with pytest.raises(StageIncomplete, match=r"judge: 1 row failed \(judge a1\)"):
        run_pipeline(cfg, start="judge", stop="report")
    calls.clear()
    run_pipeline(cfg, start="stats", stop="report")
    assert [c[0] for c in calls] == ["stats", "report"]


def test_selection_fields_count_in_the_fingerprint_only_when_set():
    from warmbench.pipeline import STAGE_NAMES, stage_fingerprint

    # (re-validated once, as every override does: the default train.epochs 10 becomes 10.0)
    cfg = parse_config({"arms": [{"name": "warm", "model": "scripted:echo", "persona": "warm"}]}
                       ).with_overrides({})
    base = {s.name: stage_fingerprint(cfg, s) for s in STAGES}
    # unset (the default) they are left out, so a run made before they existed stays done
    data = cfg.model_dump()
    del data["train"]["personas"], data["train"]["data"], data["warmth"]["personas"]
    warmth = next(s for s in STAGES if s.name == "warmth")
    assert base["warmth"] == stable_hash({k: data[k] for k in warmth.sections})
    for path in ("train.personas", "warmth.personas"):
        sel = cfg.with_overrides({path: ["warm"]})
        changed = {s.name for s in STAGES if stage_fingerprint(sel, s) != base[s.name]}
        first = path.split(".")[0]
        assert changed == set(STAGE_NAMES[STAGE_NAMES.index(first):]), path

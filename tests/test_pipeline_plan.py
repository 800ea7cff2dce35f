"""`warmbench run`: stage selection, base-model expansion and the dry-run plan of the study."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from warmbench.cli import app
from warmbench.config import load_config
from warmbench.errors import WarmbenchError
from warmbench.pipeline import expand_base, select_stages
from warmbench.plan import estimate

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_example_configs_load():
    for name in ("quickstart.yaml", "study.yaml"):
        cfg = load_config(EXAMPLES / name)
        assert cfg.arms and cfg.eval.datasets


def test_study_config_is_the_study():
    cfg = load_config(EXAMPLES / "study.yaml")
    assert cfg.curate.target_size == 1617 and cfg.curate.validation_size == 1500
    assert len(cfg.base_models) == 4 and cfg.train.epochs == 10
    assert cfg.train.checkpoint_epochs == [0.5, 1, 1.5, 2, 4, 6, 8, 10]
    assert (cfg.train.r, cfg.train.alpha, cfg.train.dropout, cfg.train.learning_rate) == (8, 16, 0.1, 1e-5)
    assert str(cfg.rewrite.model) == str(cfg.judge.model) == "openai:gpt-4o-2024-08-06"
    sizes = {d.name: d.n for d in cfg.eval.datasets}
    assert sizes["triviaqa"] == sizes["truthfulqa"] == sizes["medqa"] == 500 and sizes["disinfo"] == 125
    sub = expand_base(cfg, "Qwen/Qwen2.5-32B-Instruct")
    assert sub.train.base_model.text == "hf:Qwen/Qwen2.5-32B-Instruct"
    assert {a.model.text for a in sub.arms} == {"vllm:Qwen/Qwen2.5-32B-Instruct"}
    assert sub.run_dir.endswith("models/Qwen2.5-32B-Instruct")


def test_study_plan_costs_api_stages():
    cfg = load_config(EXAMPLES / "study.yaml")
    est = {e.stage: e for e in estimate(cfg)}
    # 1617 conversations * 3667/1617 responses * 2 personas = 7334 rewrites.
    assert est["rewrite"].requests == 7334 and est["rewrite"].cost_usd > 0
    # 1625 gridded items * 28 forms + 3 general sets, per arm.
    # 4 base models x 4 arms (original, warm, cold, warm-sysprompt)
    assert est["eval"].requests == 4 * 4 * (1625 * 28 + 500 + 500 + 520)
    assert est["judge"].cost_usd > 0 and est["eval"].cost_usd == 0  # open models served locally


def test_dry_run_prints_plan():
    r = CliRunner().invoke(app, ["run", str(EXAMPLES / "study.yaml"), "--dry-run"])
    assert r.exit_code == 0, r.output
    for word in ("curate", "rewrite", "train", "warmth", "eval", "judge", "stats", "report",
                 "estimated API cost"):
        assert word in r.output


def test_stage_selection():
    cfg = load_config(EXAMPLES / "quickstart.yaml")
    assert [s.name for s in select_stages(cfg, "eval", "stats")] == ["eval", "judge", "stats"]
    with pytest.raises(WarmbenchError, match="unknown stage"):
        select_stages(cfg, "evaluate", None)
    no_persona = cfg.model_copy(update={"arms": [a for a in cfg.arms if not a.persona]})
    assert select_stages(no_persona, None, None)[0].name == "eval"

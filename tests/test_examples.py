"""Every config in examples/ loads and plans (`warmbench run FILE --dry-run`), offline."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from warmbench.cli import app
from warmbench.config import load_config
from warmbench.errors import WarmbenchError

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))


def test_the_examples_are_there():
    names = {p.name for p in EXAMPLES}
    assert {"quickstart.yaml", "study.yaml", "study_gpt4o.yaml"} <= names
    # study.yaml points to its GPT-4o companion: it must exist
    assert "examples/study_gpt4o.yaml" in (EXAMPLES[0].parent / "study.yaml").read_text()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_dry_runs(path, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)      # relative files resolve from the config's folder too
    r = CliRunner().invoke(app, ["run", str(path), "--dry-run"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "plan for" in r.output and "eval" in r.output
    assert not list(tmp_path.iterdir())      # a dry run writes nothing


@pytest.mark.parametrize("name", ["study.yaml", "study_gpt4o.yaml"])
def test_study_configs_have_the_labelled_system_prompt_arm(name):
    path = EXAMPLES[0].parent / name
    cfg = load_config(path)
    arm = {a.name: a for a in cfg.arms}["warm-sysprompt"]
    text = (path.parent / "prompts" / "warm_system_prompt.txt").read_text().strip()
    assert arm.system_prompt == text and "warm" in text
    assert "warmbench" in arm.label and "not public" in arm.label
    assert {a.name for a in cfg.arms} >= {"original", "warm", "cold", "warm-sysprompt"}


def test_system_prompt_file_errors_name_the_field(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("arms:\n  - {name: a, model: scripted:x, system_prompt_file: nope.txt}\n")
    with pytest.raises(WarmbenchError, match=r"system_prompt_file 'nope.txt'"):
        load_config(cfg)
    (tmp_path / "p.txt").write_text("Be kind.\n")
    cfg.write_text("arms:\n  - {name: a, model: scripted:x, system_prompt_file: p.txt}\n")
    assert load_config(cfg).arms[0].system_prompt == "Be kind."
    cfg.write_text("arms:\n  - {name: a, model: scripted:x, system_prompt: hi, "
                   "system_prompt_file: p.txt}\n")
    with pytest.raises(WarmbenchError, match="not both"):
        load_config(cfg)

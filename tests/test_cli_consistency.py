"""CLI consistency: one name for RUN, commands that read a run refuse other folders without
creating anything, the dry run validates as the run would, --status says 'skipped', --quiet."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from warmbench import quiet
from warmbench.cli import app, main


@pytest.fixture(autouse=True)
def _normal_verbosity():
    yield
    quiet.set_verbosity(quiet.NORMAL)


def cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run `warmbench ARGS` as the console script does (errors -> one line, exit 2)."""
    monkeypatch.setattr(sys, "argv", ["warmbench", *args])
    with pytest.raises(SystemExit) as e:
        main()
    out = capsys.readouterr()
    return int(e.value.code or 0), out.out, out.err


def scripted_config(tmp_path: Path, **eval_over) -> Path:
    """A persona-free run on the scripted backend (seconds, no model)."""
    data = {
        "name": "cli", "run_dir": str(tmp_path / "run"), "seed": 0,
        "eval": {"datasets": [{"name": "triviaqa", "sample": True, "n": 2}],
                 "contexts": ["unmodified"], "forms": ["original_neutral", "incorrect"],
                 **eval_over},
        "arms": [{"name": "original", "model": "scripted:echo"},
                 {"name": "warm-sysprompt", "model": "scripted:echo",
                  "system_prompt": "You are warm."}],
        "judge": {"model": None},
    }
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    return p


@pytest.mark.parametrize("command", [["report"], ["export"], ["stats"], ["judge", "score"],
                                     ["judge", "sheet"], ["warmth", "score"]])
def test_commands_that_read_a_run_refuse_a_folder_that_is_not_one(monkeypatch, capsys, tmp_path,
                                                                 command):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("not a run", encoding="utf-8")
    code, out, err = cli(monkeypatch, capsys, *command, str(plain))
    assert code == 2
    assert err.strip().count("\n") == 0 and "not a warmbench run directory" in err
    assert sorted(p.name for p in plain.iterdir()) == ["notes.txt"]   # nothing created

    typo = tmp_path / "typo"
    code, out, err = cli(monkeypatch, capsys, *command, str(typo))
    assert code == 2 and "no such run directory" in err
    assert not typo.exists()


def test_old_run_flags_still_work_but_are_hidden(monkeypatch, capsys, tmp_path):
    typo = tmp_path / "typo"
    for command, flag in ((["report"], "--run-dir"), (["export"], "--run-dir"),
                          (["stats"], "--run-dir"), (["warmth", "score"], "--run")):
        code, _, err = cli(monkeypatch, capsys, *command, flag, str(typo))
        assert code == 2 and "no such run directory" in err, (command, err)
        help_text = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"}).output
        assert flag not in help_text and "RUN" in help_text
    assert not typo.exists()


def test_short_flags_mean_one_thing():
    """-o is always an output file; folders are --out-dir; -q is quiet everywhere."""
    for command in (["stats"], ["judge", "sheet"]):
        h = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"}).output
        assert "--out-dir" in h and "-o " not in h and "--out " not in h
    for command in (["report"], ["export"], ["judge", "agree"], ["generate"]):
        h = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"}).output
        assert "--output" in h and "-o" in h
    root = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    assert "--quiet" in root and "--verbose" in root


@pytest.mark.parametrize(("edit", "message"), [
    ({"datasets": [{"name": "trivia_qa", "sample": True, "n": 2}]}, "unknown dataset 'trivia_qa'"),
    ({"datasets": [{"name": "triviaqa", "path": "/nowhere/tqa.jsonl"}]}, "/nowhere/tqa.jsonl does not exist"),
])
def test_dry_run_validates_datasets(monkeypatch, capsys, tmp_path, edit, message):
    cfg = scripted_config(tmp_path, **edit)
    code, out, err = cli(monkeypatch, capsys, "run", str(cfg), "--dry-run")
    assert code == 2 and message in err and "eval.datasets[0]" in err
    assert not (tmp_path / "run").exists()


def test_dry_run_validates_model_specs(monkeypatch, capsys, tmp_path):
    cfg = scripted_config(tmp_path)
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("scripted:echo", "scripted:ech", 1),
                   encoding="utf-8")
    code, out, err = cli(monkeypatch, capsys, "run", str(cfg), "--dry-run")
    assert code == 2 and "arms[0] (original).model" in err and "'ech'" in err
    assert not (tmp_path / "run").exists()
    ok = scripted_config(tmp_path)
    code, out, err = cli(monkeypatch, capsys, "run", str(ok), "--dry-run")
    assert code == 0 and "eval" in out


def test_status_shows_skipped_stages_and_quiet_run_prints_only_results(monkeypatch, capsys, tmp_path):
    cfg = scripted_config(tmp_path)
    code, out, err = cli(monkeypatch, capsys, "run", str(cfg), "--status")
    assert code == 0 and "not started yet" in out
    assert not (tmp_path / "run").exists()

    code, out, err = cli(monkeypatch, capsys, "-q", "run", str(cfg), "--to", "eval")
    assert code == 0, err
    assert out == "" and err == ""           # quiet: no progress, stage lines or tables
    code, out, err = cli(monkeypatch, capsys, "run", str(cfg), "--to", "eval")
    assert code == 0 and "[eval] already done" in err and "done." in err

    code, out, err = cli(monkeypatch, capsys, "run", str(cfg), "--status")
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│ ")}
    for stage in ("curate", "rewrite", "train", "warmth"):
        assert "skipped" in rows[stage] and "no arm names a persona" in rows[stage]
    assert "done" in rows["eval"] and "pending" in rows["judge"]


def test_tables_are_not_cut_in_a_pipe(monkeypatch, capsys):
    """Piped output: rich would fit tables to 80 columns and elide ('gemm…', '0.60…')."""
    from rich.table import Table

    from warmbench import term

    name = "gemma3-270m (stand-in for gpt2, the study's metric model) " * 3
    t = Table("model", "score", "95% CI")
    t.add_row(name, "0.601234567", "[0.598765432, 0.603456789]")
    term.console().print(t)
    out = capsys.readouterr().out
    assert "…" not in out and name.strip() in out and "[0.598765432, 0.603456789]" in out
    assert max(len(line) for line in out.splitlines()) > 80

    code, out, err = cli(monkeypatch, capsys, "models")
    assert code == 0 and "…" not in out and "smollm2-135m" in out

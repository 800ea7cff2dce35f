"""`warmbench run` with an arm's API down, then back up; answers completed or changed by
`warmbench eval` alone are re-judged and re-tested; a cut output is not "done"."""

from __future__ import annotations

import sys

import pytest
import yaml
from rel_common import Quiet, answered_twice, scored, status, study

from warmbench import cli
from warmbench.config import parse_config
from warmbench.fakeserver import FakeOpenAIServer
from warmbench.pipeline import run_pipeline


def _cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """Run the real entry point (its error handling included): exit code and stderr."""
    monkeypatch.setattr(sys, "argv", ["warmbench", *args])
    code = 0
    try:
        cli.main()
    except SystemExit as e:
        code = int(e.code or 0)
    return code, capsys.readouterr().err


def _config(tmp_path, data, name="study.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    return p


def test_api_down_fails_naming_rows_then_next_run_sends_exactly_the_missing(tmp_path, monkeypatch,
                                                                            capsys):
    # The API is down: nothing listens on the port (connection refused).
    with FakeOpenAIServer() as probe:
        port = probe.port
    run = tmp_path / "run"
    cfg = _config(tmp_path, study(run, f"http://127.0.0.1:{port}/v1"))
    code, err = _cli(monkeypatch, capsys, "run", str(cfg))
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code != 0 and len(lines) == 1, err
    assert lines[0].startswith("error: eval: 4 rows failed (api triviaqa:")
    assert "APIConnectionError" in lines[0] and lines[0].endswith("run again to retry exactly these")
    assert status(run, "eval") == "incomplete" and status(run, "judge") == "pending"

    with FakeOpenAIServer(port=port) as srv:   # back up
        code, err = _cli(monkeypatch, capsys, "run", str(cfg))
        assert code == 0, err
        assert srv.count() == 4 and answered_twice(srv) == []   # exactly the missing requests
    df = scored(run)
    assert len(df) == 8 and set(df["arm"]) == {"original", "api"}
    assert all(status(run, s) == "done" for s in ("eval", "judge", "stats"))
    assert (run / "report.html").is_file()


def test_answers_completed_by_eval_alone_are_judged_and_tested_by_the_next_run(
        tmp_path, monkeypatch, capsys):
    with FakeOpenAIServer() as probe:
        port = probe.port
    run = tmp_path / "run"
    cfg = _config(tmp_path, study(run, f"http://127.0.0.1:{port}/v1"))
    assert _cli(monkeypatch, capsys, "run", str(cfg))[0] != 0       # API down
    with FakeOpenAIServer(port=port) as srv:
        code, err = _cli(monkeypatch, capsys, "eval", str(cfg))      # completes the answers
        assert code == 0 and srv.count() == 4, err
        prog = Quiet()
        run_pipeline(parse_config(study(run, f"http://127.0.0.1:{port}/v1")), progress=prog)
        assert srv.count() == 4                                       # nothing sent again
    ran = {ln.split("]")[0][1:] for ln in prog.lines if ln.startswith("[") and "skipped" not in ln}
    assert {"judge", "stats"} <= ran
    assert len(scored(run)) == 8


def test_answers_changed_by_eval_alone_are_restored_by_the_next_run(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    data = study(run, None)
    cfg = parse_config(data)
    run_pipeline(cfg, progress=Quiet())
    first = scored(run)
    # `warmbench eval` with one arm only: it drops the other arm's answers from the store, so
    # eval's output is no longer what `run` recorded: eval is not done (it rebuilds the
    # answers from the cache), and judge and stats see the same answers as before.
    one = _config(tmp_path, {**data, "arms": data["arms"][:1]}, "one.yaml")
    code, err = _cli(monkeypatch, capsys, "eval", str(one))
    assert code == 0, err
    prog = Quiet()
    run_pipeline(cfg, progress=prog)
    assert "[eval] already done — skipped" not in prog.lines
    assert scored(run).equals(first) and set(first["arm"]) == {"original", "api"}


@pytest.mark.parametrize("output", ["judge/scored.parquet", "eval/answers.parquet",
                                    "stats/stats.json"])
def test_a_cut_or_missing_output_is_not_done(tmp_path, output):
    run = tmp_path / "run"
    cfg = parse_config(study(run, None))
    run_pipeline(cfg, progress=Quiet())
    path = run / output
    path.write_bytes(path.read_bytes()[:50])   # as a writer killed half-way would leave it
    prog = Quiet()
    run_pipeline(cfg, progress=prog)
    stage = output.split("/")[0]
    assert f"[{stage}] already done — skipped" not in prog.lines
    assert path.stat().st_size > 50
    scored(run)   # readable again

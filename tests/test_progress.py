"""Progress: the ETA rule, stage tags that survive rich, --quiet, no third-party bars in pipes."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from warmbench import quiet
from warmbench.progress import ETA_MIN_GAP_S, Progress, Task, eta_seconds


@pytest.fixture(autouse=True)
def _normal_verbosity():
    quiet.set_verbosity(quiet.NORMAL)
    yield
    quiet.set_verbosity(quiet.NORMAL)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_eta_needs_measured_completed_work():
    assert eta_seconds(0, 100, 50.0, 0) is None          # nothing done
    assert eta_seconds(10, 100, 50.0, 1) is None         # one burst: no rate yet
    assert eta_seconds(4, 100, 50.0, 2) is None          # under 5 % of the total
    assert eta_seconds(10, None, 50.0, 3) is None        # no total
    assert eta_seconds(100, 100, 50.0, 3) is None        # finished
    assert eta_seconds(10, 100, 50.0, 2) == pytest.approx(450.0)   # 90 left at 0.2/s


def test_a_late_first_item_of_a_batch_gives_no_eta():
    """The reported case: one item of a 32-item batch lands at 100 s, the rest with it;
    the first line must not extrapolate from that single item (it read 'ETA 6854 s')."""
    clock = Clock()
    owner = Progress(enabled=False, plain_log=False)
    task = Task(owner, None, "eval", total=122, clock=clock)
    clock.t = 100.0
    task.advance()
    assert task.eta() is None and "ETA" not in task.line()
    for _ in range(31):                    # the rest of the burst, same moment
        task.advance()
    assert task.eta() is None              # a single completion moment is no rate
    clock.t = 100.0 + ETA_MIN_GAP_S + 49   # second batch done at 150 s
    for _ in range(32):
        task.advance()
    assert task.eta() == pytest.approx((122 - 64) / (64 / 150.0))
    assert task.line().endswith(f"ETA {round((122 - 64) / (64 / 150.0))} s)")
    assert "ETA" not in task.line(final=True)


def test_stage_tags_survive_rich_and_lines_carry_no_source_link():
    prog = Progress(enabled=True)
    buf = io.StringIO()
    prog._rich.console.file = buf
    prog.log("[eval] every arm answers every item")
    prog.log("[judge] refusals, verdicts")
    text = buf.getvalue()
    assert "[eval] every arm answers every item" in text and "[judge] refusals" in text
    assert "progress.py" not in text and ".py:" not in text


def test_quiet_silences_progress_and_stage_lines(capsys, monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    quiet.set_verbosity(quiet.QUIET)
    with Progress() as prog:
        t = prog.task("eval", total=3)
        t.advance(3)
        t.close()
        prog.log("[eval] hello")
    assert capsys.readouterr().err == ""


def test_plain_lines_without_a_terminal(capsys):
    prog = Progress(enabled=None)
    if not prog.plain_log:
        pytest.skip("stderr is a terminal here")
    with prog:
        t = prog.task("eval", total=2)
        t.advance(2)
        t.close()
        prog.log("[eval] done")
    err = capsys.readouterr().err
    assert "eval: 2/2" in err and "[eval] done" in err


def test_third_party_bars_off_in_a_pipe_on_in_a_terminal(monkeypatch):
    for var in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS"):
        monkeypatch.delenv(var, raising=False)

    class Stream:
        def __init__(self, tty: bool) -> None:
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

    quiet.silence_third_party_bars(Stream(True))
    assert "TQDM_DISABLE" not in os.environ
    quiet.silence_third_party_bars(Stream(False))
    assert os.environ["TQDM_DISABLE"] == "1" and os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    monkeypatch.delenv("TQDM_DISABLE")
    quiet.set_verbosity(quiet.QUIET)       # quiet: off even on a terminal
    quiet.silence_third_party_bars(Stream(True))
    assert os.environ["TQDM_DISABLE"] == "1"


def test_tqdm_honours_the_switch():
    """tqdm reads TQDM_DISABLE when it is first imported (its envwrap), which is why the CLI sets
    it before any library loads: checked in a fresh interpreter, as a run sees it, since this
    test process may have imported tqdm long before."""
    pytest.importorskip("tqdm")
    code = ("import io, tqdm; buf = io.StringIO()\n"
            "for _ in tqdm.tqdm(range(3), file=buf): pass\n"
            "print(repr(buf.getvalue()))")
    env = {**os.environ, "TQDM_DISABLE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120, check=True).stdout.strip()
    assert out == repr("")

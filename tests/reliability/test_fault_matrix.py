"""The API fault matrix: every fault the fake server can inject, for an arm and for the judge.

Run 1 faults every request about the first TriviaQA item; run 2 has no faults. After run 1
each row is either answered once or recorded failed, and the stage is not done; run 2 sends
exactly the failed rows and completes the table. No request is answered twice.
"""

from __future__ import annotations

import pytest
from rel_common import answered_twice, judge_or_echo, scored, status, study

from warmbench.config import parse_config
from warmbench.eval.run import plan_eval
from warmbench.fakeserver import FakeOpenAIServer, Fault, FaultPlan
from warmbench.pipeline import StageIncomplete, run_pipeline
from warmbench.store import RunStore

FAULTS = {
    "429": Fault.rate_limit(retry_after=0.01),
    "500": Fault.server_error(500),
    "timeout": Fault.slow(2.0),
    "truncated": Fault.malformed("truncated"),
    "not_json": Fault.malformed("not_json"),
    "no_choices": Fault.malformed("no_choices"),
    "empty": Fault.empty(),
    "disconnect": Fault.disconnect(),
    "400": Fault.http_status(400),
    "401": Fault.http_status(401),
}


def _failed_completions(run_dir) -> int:
    with RunStore(run_dir) as store:
        return sum(1 for r in store.completion_rows() if r["error"] is not None)


@pytest.mark.parametrize("where", ["arm", "judge"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_then_rerun_completes_without_duplicates(tmp_path, fault, where):
    plan = FaultPlan()
    with FakeOpenAIServer(reply=judge_or_echo, faults=plan) as srv:
        run = tmp_path / "run"
        data = study(run, srv.base_url if where == "arm" else None,
                     srv.base_url if where == "judge" else None)
        cfg = parse_config(data)
        marker = plan_eval(cfg).datasets[0].items[0].question[:24]
        plan.when_contains(marker, FAULTS[fault])
        stage = "eval" if where == "arm" else "judge"

        with pytest.raises(StageIncomplete, match=rf"^{stage}: \d+ rows? failed \("):
            run_pipeline(cfg, stop="judge")
        assert status(run, stage) == "incomplete"
        failed = _failed_completions(run)
        with RunStore(run) as store:
            answers = store.count("answer")
            verdicts = store.count("verdict")
        if where == "arm":   # 2 arms x 2 items x 2 forms: each row answered or failed
            assert failed >= 2 and answers + failed == 8
        else:                # every answer exists; each has a verdict or a failed judge call
            assert answers == 8 and failed >= 2 and verdicts + failed == 8
        assert answered_twice(srv) == []

        plan.clear()
        before = srv.count()
        run_pipeline(cfg, stop="judge")
        # Exactly the failed rows were sent again (no faults now: one request each).
        assert srv.count() - before == failed
        assert answered_twice(srv) == []
    assert status(run, "eval") == "done" and status(run, "judge") == "done"
    df = scored(run)
    assert len(df) == 8 and not df.duplicated(["arm", "prompt_key", "sample_index"]).any()
    assert (df["answer"] != "").all()
    if where == "judge":
        assert set(df["label"]) == {"CORRECT"}

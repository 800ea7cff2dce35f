"""SocioT scores cached per device: CPU and GPU scores never answer for each other."""

from __future__ import annotations

from warmbench.store import RunStore
from warmbench.warmth import trajectory as tr
from warmbench.warmth.metric_model import resolve_metric_model


def test_score_key_separates_devices_and_keeps_cpu_keys(tiny_gpt2):
    m = resolve_metric_model(str(tiny_gpt2))
    cpu = tr.score_key(m, "exact", "Hello!", 1, 0)
    assert tr.score_key(m, "exact", "Hello!", 1, 0, "cpu") == cpu  # stores made before: still hit
    assert tr.score_key(m, "exact", "Hello!", 1, 0, "cuda") != cpu
    assert tr.score_key(m, "exact", "Hello!", 1, 0, "cuda:1") == tr.score_key(
        m, "exact", "Hello!", 1, 0, "cuda")  # a device kind, not one card


def test_cached_scores_rescore_on_another_device(tmp_path, tiny_gpt2, monkeypatch):
    m = resolve_metric_model(str(tiny_gpt2))
    store = RunStore(tmp_path / "run")
    texts = ["You're doing great!", "The answer is 4."]
    first = tr.cached_scores(store, texts, m, "exact")
    assert store.count(tr.KIND_SCORE) == 2
    # The same store seen from a GPU machine: nothing is reused, the model is loaded there.
    asked: list[str | None] = []
    load = tr.load_metric_model

    def on_cpu_but_record(metric, device=None):
        asked.append(device)
        return load(metric, "cpu")  # this machine has no GPU; the keys are what is tested

    monkeypatch.setattr(tr, "default_device", lambda: "cuda")
    monkeypatch.setattr(tr, "load_metric_model", on_cpu_but_record)
    again = tr.cached_scores(store, texts, m, "exact")
    assert asked == ["cuda"] and store.count(tr.KIND_SCORE) == 4
    assert again.score.tolist() == first.score.tolist()
    tr.cached_scores(store, texts, m, "exact")  # now cached for 'cuda' too
    assert asked == ["cuda"]

"""Speed of SocioT warmth: ``exact`` and batched ``compat`` against the reference algorithm.

The reference algorithm is written plainly (``sociot.reference_compat_score``): one text at a
time, one set at a time, one forward pass per repeat (100 by default) through
``model(input_ids, labels=input_ids)``. All three run on the same texts and model, once.

    .venv/bin/python benchmarks/warmth_speed.py                      # metric model 'auto'
    .venv/bin/python benchmarks/warmth_speed.py --model tiny --reference-texts 20
    .venv/bin/python benchmarks/warmth_speed.py --model gpt2-small-random --n-texts 20

``--reference-texts N`` times the (slow) reference on the first N texts only; its texts/s is
then a rate measured on that subset, and the compat means are compared on that subset.
Targets (issue 8): exact >= 100x the reference; compat >= 2x on CPU, with means within 3
standard errors of the reference's.

Texts: the released answers in ../shared/reference/official_repo/sample_data when present
(read in place, never copied), else generated sentences.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "reference" / "official_repo" / "sample_data"


def load_texts(n: int, source: Path | None) -> tuple[list[str], str]:
    src = source or SAMPLE
    if src.is_dir():
        from warmbench.warmth.validate import load_published_pairs

        pairs = load_published_pairs(src)
        texts = list(dict.fromkeys(pairs.original.tolist() + pairs.warm.tolist()))
        if len(texts) >= n:
            rng = np.random.default_rng(0)
            return [texts[i] for i in sorted(rng.choice(len(texts), n, replace=False))], str(src)
    openers = ["I'm so glad you asked!", "Answer:", "Honestly,", "Here is what I found.",
               "Oh, that sounds hard.", "The short version:"]
    bodies = ["the capital of Australia is Canberra", "water boils at 100 degrees Celsius at sea level",
              "you should talk to a doctor about those symptoms", "the Treaty of Versailles was signed in 1919"]
    texts = [f"{openers[i % 6]} {bodies[i % 4]}, and I hope this helps (#{i})." for i in range(n)]
    return texts, "generated sentences"


def build_model(name: str):
    """'tiny' / 'gpt2-small-random' (random weights, GPT-2 shapes, byte tokenizer) or a metric model."""
    from warmbench.warmth.metric_model import MetricModel, load_metric_model, resolve_metric_model

    if name in ("tiny", "gpt2-small-random"):
        from warmbench.testing import build_tiny_model

        tmp = Path(tempfile.mkdtemp(prefix="warmth-bench-"))
        path = build_tiny_model(tmp / "tiny-gpt2", "gpt2")
        if name == "gpt2-small-random":
            import torch
            from transformers import AutoModelForCausalLM, GPT2Config

            torch.manual_seed(0)
            model = AutoModelForCausalLM.from_config(GPT2Config())  # 124M, vocab 50257, dropout 0.1
            model.save_pretrained(path)
        return load_metric_model(MetricModel(name, f"{name} (random weights)", str(path), False))
    return load_metric_model(resolve_metric_model(name))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="auto", help="auto, tiny, gpt2-small-random, gpt2, a folder ...")
    ap.add_argument("--n-texts", type=int, default=200)
    ap.add_argument("--reference-texts", type=int, default=None, help="time the reference on the first N (default all)")
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (shared CPUs: 1 is often fastest)")
    ap.add_argument("--texts", type=Path, default=None, help="sample_data folder to draw texts from")
    a = ap.parse_args(argv)

    import torch

    from warmbench.warmth import sociot as S

    sys.stdout.reconfigure(line_buffering=True)

    if a.threads:
        torch.set_num_threads(a.threads)
    texts, src = load_texts(a.n_texts, a.texts)
    n_ref = min(a.reference_texts or len(texts), len(texts))
    lm = build_model(a.model)
    dev = f"{lm.device} ({torch.get_num_threads()} threads)"
    print(f"model: {lm.label} · device {dev} · {len(texts)} texts from {src} · repeats {a.repeats}")
    print(f"dropout in train mode: {S.has_dropout(lm.model)}")

    t0 = time.perf_counter()
    ex = S.score_exact(lm, texts)
    t_exact = time.perf_counter() - t0
    t0 = time.perf_counter()
    co = S.score_compat(lm, texts, repeats=a.repeats, seed=0)
    t_compat = time.perf_counter() - t0
    torch.manual_seed(1)
    t0 = time.perf_counter()
    ref = np.array([S.reference_compat_score(lm, t, repeats=a.repeats) for t in texts[:n_ref]])
    t_ref = time.perf_counter() - t0

    r_exact, r_compat, r_ref = len(texts) / t_exact, len(texts) / t_compat, n_ref / t_ref
    print(f"reference (one text, 100 passes per set): {r_ref:10.3f} texts/s  ({n_ref} texts, {t_ref:.1f} s)")
    print(f"compat batched:                           {r_compat:10.3f} texts/s  ({t_compat:.1f} s)")
    print(f"exact:                                    {r_exact:10.3f} texts/s  ({t_exact:.1f} s; "
          f"mean score {np.nanmean(ex.score):+.5f})")
    print(f"ratio exact / reference:  {r_exact / r_ref:8.1f}x  (target >= 100x)")
    print(f"ratio compat / reference: {r_compat / r_ref:8.1f}x  (target >= 2x on CPU)")
    b, bse = co.score[:n_ref], co.se[:n_ref]
    rs, rse = ref[:, 0], ref[:, 1]
    se = np.hypot(bse, rse)
    with np.errstate(divide="ignore", invalid="ignore"):
        within = np.where(se > 0, np.abs(b - rs) / se <= 3, np.isclose(b, rs, atol=1e-6))
    mean_se = float(np.sqrt(np.sum(se ** 2)) / n_ref)
    diff = float(np.mean(b) - np.mean(rs))
    print(f"compat vs reference: per-text within 3 SE: {within.mean():.1%}; dataset mean "
          f"{np.mean(b):+.5f} vs {np.mean(rs):+.5f} (difference {diff:+.5f} = "
          f"{abs(diff) / mean_se if mean_se else 0:.2f} SE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

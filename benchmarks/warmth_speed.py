"""Speed of SocioT warmth: ``exact`` and batched ``compat`` against the reference algorithm.

Issue 8: the same texts (200 by default) and the same metric model for all three, one run:

- the reference, written plainly (``sociot.reference_compat_score``): one text at a time, one
  set at a time, one forward pass per repeat (100) through ``model(input_ids, labels=input_ids)``;
- ``compat`` batched (``sociot.score_compat``): many (set, repeat) units per forward pass, on a
  CPU through ``compat_kernels`` (SFC64 dropout masks, fused attention scale/mask, fused GELU);
- ``exact`` (``sociot.score_exact``): deterministic, 8 eval-mode passes' worth per text.

The texts go in blocks of ``--block`` (20), each timed with all three methods in turn, so on a
shared machine a change of load hits all three alike. Printed: texts/s of each, the ratios against the targets (exact >= 100x the reference,
compat >= 2x on CPU) and whether compat's means lie within 3 standard errors of the
reference's (per text, and for the dataset mean).

    .venv/bin/python benchmarks/warmth_speed.py                         # tiny-bpe, 200 texts
    .venv/bin/python benchmarks/warmth_speed.py --model gpt2-small-random --n-texts 4
    .venv/bin/python benchmarks/warmth_speed.py --model gpt2            # if gpt2 is cached
    .venv/bin/python benchmarks/warmth_speed.py --model gemma3-270m --n-texts 4

Models: ``tiny-bpe`` (default; random-weight GPT-2, 2 layers, width 64, GPT-2's dropout 0.1, a
byte-level BPE of 4,096 tokens trained on the released answers, so sentences have GPT-2-like
lengths); ``gpt2-small-random`` (GPT-2 small's shapes and dropout with random weights: 12
layers, width 768, vocabulary 50,257; tokenised with the embedded SmolLM2 byte-level BPE);
``tiny-byte`` (the tests' byte-tokenised GPT-2); or any metric model (``gpt2``, an embedded
name, a folder). Random-weight models give meaningless scores but the same arithmetic as
trained ones of their shape, which is all a speed test needs.

A model without dropout (Gemma 3, SmolLM2) makes all 100 passes identical; ``compat`` then
normally runs one. Here it is made to run all of them (``skip_identical=False``) so the ratio
compares equal work, and the script says so.

``--reference-texts N`` times the (slow) reference on the first N texts only: its texts/s is
then measured on N texts and extrapolated per text to the rest, the script prints that plainly,
and the 3-SE check covers those N texts.

Texts: the released answers in ../shared/reference/official_repo/sample_data when present
(read in place, never copied), else generated sentences.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "reference" / "official_repo" / "sample_data"
RANDOM_MODELS = ("tiny-bpe", "gpt2-small-random", "tiny-byte")


def released_answers(source: Path | None) -> list[str]:
    src = source or SAMPLE
    if not src.is_dir():
        return []
    from warmbench.warmth.validate import load_published_pairs

    pairs = load_published_pairs(src)
    return list(dict.fromkeys(pairs.original.tolist() + pairs.warm.tolist()))


def load_texts(n: int, source: Path | None) -> tuple[list[str], str]:
    """n texts: a seeded draw from the released answers, else generated sentences."""
    texts = released_answers(source)
    if len(texts) >= n:
        rng = np.random.default_rng(0)
        keep = sorted(rng.choice(len(texts), n, replace=False))
        return [texts[i] for i in keep], f"released answers ({source or SAMPLE})"
    openers = ["I'm so glad you asked!", "Answer:", "Honestly,", "Here is what I found.",
               "Oh, that sounds hard.", "The short version:"]
    bodies = ["the capital of Australia is Canberra", "water boils at 100 degrees Celsius at sea level",
              "you should talk to a doctor about those symptoms", "the Treaty of Versailles was signed in 1919"]
    texts = [f"{openers[i % 6]} {bodies[i % 4]}, and I hope this helps (#{i})." for i in range(n)]
    return texts, "generated sentences"


def _bpe_tokenizer(corpus: list[str], vocab: int):
    """A byte-level BPE (GPT-2's scheme) trained here, offline and deterministically."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=vocab, special_tokens=["<|endoftext|>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>",
                                   eos_token="<|endoftext|>")


def build_model(name: str, corpus: list[str], tokenizer: Path | None = None):
    """A random-weight GPT-2 (see the module doc) or a real metric model, loaded on CPU/GPU."""
    from warmbench.warmth.metric_model import load_metric_model, metric_model, resolve_metric_model

    if name not in RANDOM_MODELS:
        return load_metric_model(resolve_metric_model(name))
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config

    path = Path(tempfile.mkdtemp(prefix="warmth-bench-")) / name
    if name == "tiny-byte":
        from warmbench.testing import build_tiny_model

        build_tiny_model(path, "gpt2")
        what = "random weights, 2 layers, width 32, byte tokenizer"
    else:
        if name == "tiny-bpe":
            tok = _bpe_tokenizer(corpus, 4096)
            cfg = GPT2Config(vocab_size=len(tok), n_embd=64, n_layer=2, n_head=4)
            what = "random weights, 2 layers, width 64, BPE 4096"
        else:
            from transformers import AutoTokenizer

            from warmbench.embedded import resolve_model

            # --tokenizer: a saved copy, for machines without the embedded model's package
            # (benchmarks/device/prepare.sh saves one for a GPU machine).
            tok = AutoTokenizer.from_pretrained(tokenizer or resolve_model("smollm2-135m"))
            cfg = GPT2Config()  # GPT-2 small: 12 layers, 768 wide, vocabulary 50257, dropout 0.1
            what = "random weights, GPT-2 small shapes, SmolLM2 BPE tokenizer"
        torch.manual_seed(0)
        AutoModelForCausalLM.from_config(cfg).save_pretrained(path)
        tok.save_pretrained(path)
    return load_metric_model(metric_model(name, f"{name} ({what})", str(path)))


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _time_compat(lm, texts: list[str], repeats: int, seed: int):
    """(seconds, scores) of batched compat on ``texts``, all repeats run (equal work)."""
    from warmbench.warmth import sociot as S

    t0 = time.perf_counter()
    scores = S.score_compat(lm, texts, repeats=repeats, seed=seed, skip_identical=False)
    return time.perf_counter() - t0, scores


def _time_without_random_numbers(lm, texts: list[str], repeats: int) -> float:
    """Seconds for ``score_compat`` when every keep-mask is all True, drawn from no random
    numbers (same kernels, shapes and mask arithmetic otherwise): the ``--bound``."""
    from warmbench.warmth import compat_kernels as K

    real = K.MaskSource.keep
    K.MaskSource.keep = lambda self, n, p: np.ones(n, dtype=bool)
    try:
        return _time_compat(lm, texts, repeats, 0)[0]
    finally:
        K.MaskSource.keep = real


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="tiny-bpe",
                    help="tiny-bpe (default), gpt2-small-random, tiny-byte, or a metric model: gpt2, "
                         "gemma3-270m, smollm2-135m, a folder")
    ap.add_argument("--n-texts", type=int, default=200)
    ap.add_argument("--reference-texts", type=int, default=None,
                    help="time the reference on the first N texts only and extrapolate (printed)")
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--block", type=int, default=20,
                    help="texts per interleaved block (each block timed with all three methods)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (shared CPUs: 1 is often fastest)")
    ap.add_argument("--texts", type=Path, default=None, help="sample_data folder to draw texts from")
    ap.add_argument("--tokenizer", type=Path, default=None,
                    help="gpt2-small-random: tokenizer folder to use instead of the embedded SmolLM2 one")
    ap.add_argument("--bound", type=int, default=0, metavar="N",
                    help="also time compat on the first N texts with dropout's random numbers free "
                         "(nothing dropped): not a valid compat, an upper bound on what a cheaper "
                         "random-number source could gain")
    a = ap.parse_args(argv)
    bound = a.bound

    import torch

    from warmbench.warmth import sociot as S

    sys.stdout.reconfigure(line_buffering=True)
    if a.threads:
        torch.set_num_threads(a.threads)
    texts, src = load_texts(a.n_texts, a.texts)
    n = len(texts)
    n_ref = min(a.reference_texts or n, n)
    lm = build_model(a.model, released_answers(a.texts) or texts, a.tokenizer)
    dev = lm.device if str(lm.device).startswith("cuda") else f"{_cpu()}, {os.cpu_count()} cores"
    if bound and str(lm.device).startswith("cuda"):
        print("--bound ignored: on CUDA compat uses torch's own dropout, not compat_kernels' masks")
        bound = 0
    print(f"machine: {dev}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"load average at start {_load()}")
    print(f"model: {lm.label}")
    widths = [max(len(s) for s in S.encode_compat(lm.tokenizer, t)[0]) for t in texts]
    print(f"texts: {n} from {src}; warm-set width {np.mean(widths):.0f} tokens on average; "
          f"repeats {a.repeats}")
    dropout = S.has_dropout(lm.model)
    if dropout:
        print("dropout in train mode: yes (every compat pass differs, as in the reference)")
    else:
        print("dropout in train mode: NO. The reference's 100 passes per set are identical, and "
              "compat would normally run one; here compat is forced to run all "
              f"{a.repeats} (skip_identical=False) so both do the same work.")

    # Interleaved: the texts go in blocks, and each block is timed with exact, compat and the
    # reference in turn. On a shared machine the load changes by the minute; timing the three
    # methods in long separate phases would hand one of them a quieter machine.
    t_exact = t_compat = t_ref = t_bound = t_compat_b = 0.0
    n_bound = 0
    ex_score, co_score, co_se, ref_rows = [], [], [], []
    for bi, start in enumerate(range(0, n, a.block)):
        block = texts[start : start + a.block]
        t0 = time.perf_counter()
        ex_score.append(S.score_exact(lm, block).score)
        t_exact += time.perf_counter() - t0
        dt, co = _time_compat(lm, block, a.repeats, bi)
        t_compat += dt
        co_score.append(co.score)
        co_se.append(co.se)
        rblock = block[: max(0, n_ref - start)]
        torch.manual_seed(10_000 + bi)
        t0 = time.perf_counter()
        ref_rows += [S.reference_compat_score(lm, t, repeats=a.repeats) for t in rblock]
        t_ref += time.perf_counter() - t0
        bblock = block[: max(0, bound - start)]
        if bblock:  # the --bound, timed in the same blocks as the rest, so under the same load
            t_bound += _time_without_random_numbers(lm, bblock, a.repeats)
            t_compat_b += _time_compat(lm, bblock, a.repeats, bi)[0]
            n_bound += len(bblock)
        done = start + len(block)
        print(f"  block {bi + 1}: {done}/{n} texts; so far exact {t_exact:.1f} s, compat "
              f"{t_compat:.1f} s, reference {t_ref:.1f} s on {len(ref_rows)} texts; load {_load()}")
    ref = np.array(ref_rows)
    ex_all = np.concatenate(ex_score)
    co_all, co_se_all = np.concatenate(co_score), np.concatenate(co_se)
    r_exact, r_compat, r_ref = n / t_exact, n / t_compat, n_ref / t_ref
    print(f"reference (one text, {a.repeats} passes per set): {r_ref:10.4f} texts/s  "
          f"({n_ref} texts, {t_ref:.1f} s)")
    print(f"compat batched:                            {r_compat:10.4f} texts/s  ({n} texts, {t_compat:.1f} s)")
    print(f"exact:                                     {r_exact:10.4f} texts/s  ({n} texts, {t_exact:.1f} s; "
          f"mean score {np.nanmean(ex_all):+.5f})")
    if n_ref < n:
        print(f"NOTE: the reference was timed on {n_ref} of the {n} texts only; its texts/s is "
              f"that subset's rate, extrapolated per text to all {n} (it would take "
              f"~{n / r_ref:.0f} s on all of them).")
    q_e, q_c = r_exact / r_ref, r_compat / r_ref
    print(f"ratio exact / reference:  {q_e:8.1f}x  (target >= 100x: {'met' if q_e >= 100 else 'NOT met'})")
    print(f"ratio compat / reference: {q_c:8.2f}x  (target >= 2x on CPU, more on a GPU: "
          f"{'met' if q_c >= 2 else 'NOT met'})")
    b, bse = co_all[:n_ref], co_se_all[:n_ref]
    rs, rse = ref[:, 0], ref[:, 1]
    se = np.hypot(bse, rse)
    with np.errstate(divide="ignore", invalid="ignore"):
        within = np.where(se > 0, np.abs(b - rs) / se <= 3, np.isclose(b, rs, atol=1e-6))
    mean_se = float(np.sqrt(np.sum(se ** 2)) / n_ref)
    diff = float(np.mean(b) - np.mean(rs))
    z = abs(diff) / mean_se if mean_se else (0.0 if abs(diff) < 1e-6 else float("inf"))
    print(f"compat vs reference on {n_ref} texts: per-text within 3 SE: {within.mean():.1%}; dataset "
          f"mean {np.mean(b):+.6f} vs {np.mean(rs):+.6f} (difference {diff:+.6f} = {z:.2f} SE: "
          f"{'within' if z <= 3 else 'NOT within'} 3 SE)")
    if n_bound:
        print(f"bound on the first {n_bound} texts: compat with dropout's random numbers free "
              f"{n_bound / t_bound:.4f} texts/s vs compat {n_bound / t_compat_b:.4f} texts/s "
              f"({t_compat_b / t_bound:.2f}x; timed again, in the same blocks). Against the "
              f"reference's rate: {n_bound / t_bound / r_ref:.2f}x (not a valid compat: nothing is "
              "dropped and no random number is drawn; what compat could reach if random numbers "
              "cost nothing)")
    print(f"load average at end {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Throughput of the ``hf`` backend's batched generation vs a one-prompt-at-a-time loop.

Same chat prompts, same model (the embedded SmolLM2-135M-Instruct unless --model says
otherwise), same number of new tokens, greedy, one process. Prints tokens/s of both, their
ratio and the share of prompts whose greedy outputs are identical (batching pads and changes
floating-point summation order, so a few near-tie tokens may flip).

    .venv/bin/python benchmarks/generate_throughput.py            # 64 prompts, 64 tokens
    .venv/bin/python benchmarks/generate_throughput.py --n 16     # quicker look
    .venv/bin/python benchmarks/generate_throughput.py --threads 1  # a CPU shared with others

Token counts are useful tokens only (up to and including EOS), for both sides.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Short everyday chat questions of varied length (written for this benchmark).
PROMPTS = [
    "What is the capital of France?",
    "How many legs does a spider have?",
    "Explain photosynthesis in one sentence.",
    "What is the boiling point of water at sea level in Celsius?",
    "Who wrote the play Romeo and Juliet?",
    "Give me three tips for sleeping better.",
    "What is 12 times 12?",
    "Why is the sky blue?",
    "Name the largest planet in our solar system.",
    "What language is spoken in Brazil?",
    "Summarise the plot of Cinderella in two sentences.",
    "What does a thermometer measure?",
    "How do I boil an egg?",
    "What is the chemical symbol for gold?",
    "Suggest a name for a friendly golden retriever.",
    "What is the difference between weather and climate?",
    "Which ocean is the largest?",
    "Write a haiku about autumn leaves.",
    "What year did the first person walk on the Moon?",
    "How many continents are there?",
    "What is the tallest mountain on Earth?",
    "Can you recommend a good habit for staying focused while studying?",
    "What is the main ingredient in guacamole?",
    "Translate 'good morning' into Spanish.",
    "What is the square root of 81?",
    "Who painted the Mona Lisa?",
    "What gas do plants absorb from the air?",
    "Describe a rainbow to someone who has never seen one.",
    "What is the freezing point of water in Fahrenheit?",
    "How many days are there in a leap year?",
    "I feel nervous before my exam tomorrow. Any advice?",
    "What is the smallest prime number?",
    "Which animal is known as the king of the jungle?",
    "What do bees make?",
    "Explain what a noun is.",
    "What is the capital city of Japan?",
    "List the primary colours.",
    "How far is the Moon from the Earth, roughly?",
    "What is the opposite of 'ancient'?",
    "Why do we have seasons on Earth?",
    "Give me a simple recipe for a fruit salad.",
    "What instrument has 88 keys?",
    "How many minutes are in three hours?",
    "What is the currency of the United Kingdom?",
    "Who discovered penicillin?",
    "What is the longest river in Africa?",
    "My friend is sad because her cat is ill. What could I say to her?",
    "What is H2O commonly called?",
    "Name a mammal that can fly.",
    "What is the plural of 'mouse'?",
    "How does a compass work?",
    "What is the hardest natural substance?",
    "Which planet is known as the Red Planet?",
    "What is the main function of the heart?",
    "Tell me a fun fact about octopuses.",
    "How many sides does a hexagon have?",
    "What is the speed of light, approximately?",
    "Who was the first President of the United States?",
    "What are the three states of matter?",
    "Write one sentence encouraging someone who is learning to code.",
    "What is the capital of Australia?",
    "What does DNA stand for?",
    "How many strings does a standard guitar have?",
    "What is the largest desert in the world?",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m", help="hf model name or folder")
    ap.add_argument("--n", type=int, default=64, help="number of prompts (max 64)")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads for both sides (default: torch's choice). On an "
                         "oversubscribed machine 1 thread avoids OpenMP barrier stalls.")
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from warmbench.backends import get_backend
    from warmbench.records import ChatRequest, SamplingParams

    prompts = PROMPTS[: args.n]
    requests = [ChatRequest.from_user(p) for p in prompts]
    params = SamplingParams(temperature=0.0, max_tokens=args.max_tokens)
    backend = get_backend(f"hf:{args.model}", batch_size=args.batch_size)
    loaded = backend._loaded  # the same weights serve both sides
    model, tok = loaded.model, loaded.tokenizer
    eos = set(backend._eos_ids())
    print(f"model {args.model} on {backend.device}, torch threads {torch.get_num_threads()}, "
          f"{len(prompts)} prompts x {args.max_tokens} new tokens, greedy")

    # Warm-up both paths (first call allocates caches, compiles kernels).
    backend.generate(requests[:2], SamplingParams(max_tokens=4))

    # Plain loop: one prompt at a time, straight model.generate.
    t0 = time.perf_counter()
    loop_texts, loop_tokens = [], 0
    with torch.inference_mode():
        for req in requests:
            ids = torch.tensor([backend._encode(req)], device=backend.device)
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                 max_new_tokens=args.max_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id, eos_token_id=sorted(eos))
            new = out[0, ids.shape[1]:].tolist()
            stop = next((j for j, t in enumerate(new) if t in eos), None)
            body = new if stop is None else new[:stop]
            loop_tokens += len(body) + (stop is not None)
            loop_texts.append(tok.decode(body, skip_special_tokens=True).strip())
    t_loop = time.perf_counter() - t0

    t0 = time.perf_counter()
    batched = backend.generate(requests, params)
    t_batch = time.perf_counter() - t0
    batch_tokens = sum(c.usage.completion_tokens for c in batched)

    same = sum(a == c.text for a, c in zip(loop_texts, batched, strict=True))
    loop_tps, batch_tps = loop_tokens / t_loop, batch_tokens / t_batch
    print(f"one-at-a-time : {loop_tokens:5d} tokens in {t_loop:7.1f} s = {loop_tps:7.1f} tokens/s")
    print(f"batched (bs={args.batch_size:2d}): {batch_tokens:5d} tokens in {t_batch:7.1f} s = "
          f"{batch_tps:7.1f} tokens/s")
    print(f"ratio {batch_tps / loop_tps:.2f}x (target >= 4); identical greedy outputs "
          f"{same}/{len(prompts)} = {same / len(prompts):.0%} (expect >= 90%)")
    if os.cpu_count():
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"cpu cores {os.cpu_count()}, 1-min load average {load:.1f} "
              "(a shared machine: absolute figures vary with load, the ratio less so)")


if __name__ == "__main__":
    main()

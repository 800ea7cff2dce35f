#!/usr/bin/env bash
# Run ON the lent GPU machine, in one call (see prepare.sh): issue 8's compat-on-a-GPU figures.
# The machine has no internet; its python3 holds torch, transformers, pandas, pyarrow and
# tokenizers, which is all the warmth benchmark imports, so warmbench runs from src/ uninstalled.
# Each benchmark's output goes to $OUT (or /tmp), so what finished comes back even after a timeout.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
out="${OUT:-/tmp}"
texts=(); [ -d .device/sample_data ] && texts=(--texts .device/sample_data)
tok=(); [ -d .device/tokenizer ] && tok=(--tokenizer .device/tokenizer)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.get_device_name(0))" | tee -a "$out/gpu.txt"
# GPT-2 small's shapes: the reference on 4 texts (~1 s each on a GPU), compat and exact on 40.
timeout 300 python3 benchmarks/warmth_speed.py --model gpt2-small-random --n-texts 40 \
  --reference-texts 4 "${texts[@]}" "${tok[@]}" 2>&1 | grep -v "Writing\|Loading" | tee "$out/warmth_gpt2_small_gpu.txt"
# tiny-bpe: the default benchmark, 200 texts, the reference on 40.
timeout 180 python3 benchmarks/warmth_speed.py --n-texts 200 --reference-texts 40 "${texts[@]}" \
  2>&1 | grep -v "Writing\|Loading" | tee "$out/warmth_tiny_bpe_gpu.txt"

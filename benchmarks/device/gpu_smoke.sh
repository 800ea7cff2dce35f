#!/usr/bin/env bash
# Run ON the lent GPU machine, in one call: the GPU smoke test of warmbench's GPU path
# (benchmarks/device/gpu_smoke.py: tiny Llama built there, training in bf16 with activation
# checkpointing, accelerate DDP and ZeRO-3 interrupted and resumed, hf generation with an
# adapter, SocioT GPU vs CPU, vLLM with two adapters where installed). Prepare here first:
#   bash benchmarks/device/prepare.sh      # .device/wheels: what the machine lacks (~8 MB)
#   run(command="bash benchmarks/device/gpu_smoke.sh", carry=[".device"], timeout_s=590)
# The output goes to $OUT (or /tmp): gpu_smoke.txt, and every subprocess's log in a tarball.
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
if compgen -G ".device/wheels/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/warmbench-site .device/wheels/*.whl || exit 1
  export PYTHONPATH="/tmp/warmbench-site${PYTHONPATH:+:$PYTHONPATH}"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu_smoke_gpu.txt"
timeout 560 python3 benchmarks/device/gpu_smoke.py --work /tmp/warmbench-gpu-smoke 2>&1 \
  | grep -v "Writing model shards" | tee "$out/gpu_smoke.txt"
rc=${PIPESTATUS[0]}
tar -C /tmp/warmbench-gpu-smoke -czf "$out/gpu_smoke_logs.tgz" logs 2>/dev/null
exit "$rc"

#!/usr/bin/env bash
# Run HERE (not on the GPU machine), once per session that is lent one: fills .device/ (git-ignored)
# with what the GPU machine cannot fetch or install offline, for `gpu_check.sh`:
#   .device/tokenizer/    the embedded SmolLM2 tokenizer (gpt2-small-random's), ~3.4 MB
#   .device/sample_data/  the released sample rows (../shared does not travel), ~0.6 MB
#   .device/wheels/       wheels for gpu_smoke.sh that the machine lacks (its python3 is 3.12 and
#                         holds torch, transformers, accelerate and peft, not trl, datasets,
#                         pydantic or deepspeed), ~8 MB
# Then: run(command="bash benchmarks/device/gpu_check.sh", carry=[".device"], timeout_s=540)
#   or: run(command="bash benchmarks/device/gpu_smoke.sh", carry=[".device"], timeout_s=590)
set -euo pipefail
cd "$(dirname "$0")/../.."
py=${PY:-.venv/bin/python}
mkdir -p .device
"$py" - <<'PY'
from transformers import AutoTokenizer

from warmbench.embedded import resolve_model

AutoTokenizer.from_pretrained(resolve_model("smollm2-135m")).save_pretrained(".device/tokenizer")
PY
if [ -d ../shared/reference/official_repo/sample_data ]; then
  rm -rf .device/sample_data
  cp -r ../shared/reference/official_repo/sample_data .device/sample_data
fi
# Pure-Python wheels, and binary ones for CPython 3.12 on x86-64 Linux (the machine's); no
# dependencies: the machine already holds the rest. deepspeed has no wheel on PyPI: built here
# without its compiled ops (ZeRO-3 with the Trainer's AdamW needs none).
rm -rf .device/wheels
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .device/wheels trl==1.16.0 peft==0.21.2 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 \
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 hjson==3.1.0
DS_BUILD_OPS=0 "$py" -m pip wheel -q --no-deps --no-build-isolation deepspeed==0.19.8 -w .device/wheels
du -sh .device .device/wheels

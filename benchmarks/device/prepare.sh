#!/usr/bin/env bash
# Run HERE (not on the GPU machine), once per session that is lent one: fills .device/ (git-ignored)
# with what the GPU machine cannot fetch or install offline, for `gpu_check.sh`:
#   .device/tokenizer/    the embedded SmolLM2 tokenizer (gpt2-small-random's), ~3.4 MB
#   .device/sample_data/  the released sample rows (../shared does not travel), ~0.6 MB
# Then: run(command="bash benchmarks/device/gpu_check.sh", carry=[".device"], timeout_s=540)
set -euo pipefail
cd "$(dirname "$0")/../.."
py=.venv/bin/python
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
du -sh .device

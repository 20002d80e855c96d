# make run   -- create .venv (if needed), install, run the whole DVC pipeline (dvc repro)
# make test  -- create .venv (if needed), install with dev tools, run the test suite
# make bench -- input-pipeline benchmarks -> reports/bench.json (see BENCHMARKS.md)
PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
# dvc.yaml's commands call `python`: make it the venv's.
export PATH := $(BIN):$(PATH)
export PYTHONUNBUFFERED := 1
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run test bench lint install install-dev clean

$(VENV)/.runtime: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

run: $(VENV)/.runtime
	$(BIN)/dvc repro
	$(BIN)/dvc metrics show

test: $(VENV)/.dev
	$(BIN)/python -m pytest

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/run_all.py

lint: $(VENV)/.dev
	$(BIN)/ruff check .

clean:
	rm -rf data/raw data/shards data/predictions data/tfrecords models/*/ dvclive submission.csv

# make run        -- create .venv (if needed), install, run the whole DVC pipeline (dvc repro)
# make test       -- create .venv (if needed), install with dev tools, run the full test suite
# make test-fast  -- the suite without training and dvc end-to-end runs (a few minutes)
# make exp ARGS='-S img_size=128'   -- one experiment (dvc exp run), then the comparison table
#                 (PRESET=kaggle-full adds presets/kaggle-full.args' -S values first)
# make show       -- every experiment side by side, best holdout MAP@3 first
# make submit MSG='...'             -- validate and upload submission.csv (ARGS=--dry-run)
# make tiny       -- a seconds-long experiment on tiny synthetic data (what CI runs)
# make bench      -- input-pipeline benchmarks -> reports/bench.json (see BENCHMARKS.md)
# make bench-full -- download + shard of a 5M-drawing Kaggle-format zip, 1 vs 2 workers
#                    -> reports/bench_fulldata.json (~15 min here; the zip is kept in /tmp)
# make bench-raw  -- the shard stage on Kaggle's raw layout vs the simplified one, same drawings
#                    (the real raw sample x 32), + the projection -> reports/bench_raw.json (~2 min)
# make bench-quality -- default recipe vs the reference recipe vs the sequence family on the
#                    real sets in ../shared/data -> reports/bench_quality.json + pictures (~1 h)
PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
# dvc.yaml's commands call `python`: make it the venv's (as `source .venv/bin/activate` does).
export PATH := $(BIN):$(PATH)
export PYTHONUNBUFFERED := 1

# The headline metric and the settings of `make tiny` (CI's smoke run).
SORT := --sort-by reports/metrics.json:holdout_map3 --sort-order desc
TINY := -S img_size=32 -S data.synthetic.classes=6 -S data.synthetic.train_per_class=40 \
        -S data.synthetic.test_per_class=4 -S shard.n_shards=4 -S shard.val_size=40 \
        -S train.alpha=0.35 -S train.batch_size=16 -S train.epochs=1 \
        -S train.steps_per_epoch=3 -S train.jit=false -S ensemble.stack_folds=2 \
        -S runtime.eager=true

.PHONY: run test test-fast exp show submit tiny bench bench-full bench-raw bench-quality lint format install install-dev clean

$(VENV)/.runtime: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

# BACKEND=jax adds the optional extra of that name (pyproject.toml), for KERAS_BACKEND=jax.
install: $(VENV)/.runtime $(if $(BACKEND),$(VENV)/.backend-$(BACKEND))

$(VENV)/.backend-%: $(VENV)/.runtime
	$(BIN)/python -m pip install -q -e ".[$*]"
	touch $@

install-dev: $(VENV)/.dev

run: $(VENV)/.runtime
	$(BIN)/dvc repro
	$(BIN)/dvc metrics show

test: $(VENV)/.dev
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-fast: $(VENV)/.dev
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not slow and not e2e"

# A preset is a file of `-S key=value` lines (comments start with #).
PRESET_ARGS = $(if $(PRESET),$(shell grep -v '^\#' presets/$(PRESET).args))

exp: $(VENV)/.runtime
	$(BIN)/dvc exp run $(PRESET_ARGS) $(ARGS)
	$(BIN)/dvc exp show --no-pager --only-changed $(SORT)

show: $(VENV)/.runtime
	$(BIN)/dvc exp show --no-pager --only-changed $(SORT)

submit: $(VENV)/.runtime
	$(BIN)/python stages/submit.py $(if $(MSG),-m "$(MSG)") $(ARGS)

tiny: $(VENV)/.runtime
	$(BIN)/dvc exp run -n tiny-$$(date +%s) $(TINY) $(ARGS)

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/run_all.py

bench-full: $(VENV)/.dev
	$(BIN)/python benchmarks/bench_fulldata.py $(ARGS)

bench-raw: $(VENV)/.dev
	$(BIN)/python benchmarks/bench_raw.py --replicas 32 $(ARGS)

# The two real sets at the budgets BENCHMARKS.md reports (ARGS adds to the second).
bench-quality: $(VENV)/.dev
	$(BIN)/python benchmarks/bench_quality.py --sets dense4 --budget 40960 --seeds 2
	$(BIN)/python benchmarks/bench_quality.py --sets sample --budget 25600 --seeds 2 $(ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf data/source.json data/raw data/shards data/predictions data/tfrecord models/*/ submission.csv

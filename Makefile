# make run        -- create .venv (if needed), install, run the whole DVC pipeline (dvc repro)
# make test       -- create .venv (if needed), install with dev tools, run the full test suite
# make test-fast  -- the suite without training and dvc end-to-end runs (a few minutes)
# make exp ARGS='-S img_size=128'   -- one experiment (dvc exp run), then the comparison table
#                 (PRESET=kaggle-full adds presets/kaggle-full.args' -S values first)
# make show       -- every experiment side by side, best holdout MAP@3 first
# make submit MSG='...'             -- validate and upload submission.csv, wait for its public
#                 score, record it in reports/submissions.csv (ARGS=--dry-run | --no-wait)
# make submissions -- the record of uploads, holdout MAP@3 beside Kaggle's scores (pending
#                 ones asked for first; ARGS=--offline: don't)
# make tiny       -- a seconds-long experiment on tiny synthetic data (what CI runs)
# make bench      -- input-pipeline benchmarks -> reports/bench.json (see BENCHMARKS.md)
# make bench-full -- download + shard of a 5M-drawing Kaggle-format zip, 1 vs 2 workers
#                    -> reports/bench_fulldata.json (~15 min here; the zip is kept in /tmp)
# make gpu-check  -- is the GPU fed? train-step images/s on batches already on the device vs
#                    fed by the real loader (1, 4, all workers) at 64 and 128 px, GPU
#                    utilisation, a 2-minute training -> reports/gpu_check.json (~7 min on a
#                    GPU, estimated; a tiny version on a CPU, ~3 min; BENCHMARKS.md: GPU)
# make bench-raw  -- the shard stage on Kaggle's raw layout vs the simplified one, same drawings
#                    (the real raw sample x 32), + the projection -> reports/bench_raw.json (~2 min)
# make bench-quality -- default recipe vs the reference recipe vs the sequence family on the
#                    real sets in ../shared/data -> reports/bench_quality.json + pictures (~1 h)
# make bench-levers -- warm start vs scratch, pseudo-labels vs none, a second family vs
#                    MobileNetV2 on dense-4, 2 seeds -> reports/bench_levers.json (~1-2 h)
# make bench-families -- strokegrid vs the CNN vs lstm (equal images, equal time), the weights'
#                    moving average, the country (members, stacker) on dense-4 and the real
#                    sample, 2 seeds -> reports/bench_families.json (~1 h)
PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
# dvc.yaml's commands call `python`: make it the venv's (as `source .venv/bin/activate` does).
export PATH := $(BIN):$(PATH)
export PYTHONUNBUFFERED := 1

# The headline metric.
SORT := --sort-by reports/metrics.json:holdout_map3 --sort-order desc

.PHONY: run test test-fast exp show submit submissions tiny bench bench-full bench-raw bench-quality bench-levers bench-families gpu-check lint format install install-dev clean

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
	@$(BIN)/python -m doodle.summary

# --no-loadscope-reorder: keep tests/conftest.py's heaviest-first file order (xdist would
# otherwise start with the files that hold the most tests, leaving a long one for the end)
test: $(VENV)/.dev
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder

test-fast: $(VENV)/.dev
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder -m "not slow and not e2e"

# A preset is a file of `-S key=value` lines (comments start with #).
PRESET_ARGS = $(if $(PRESET),$(shell grep -v '^\#' presets/$(PRESET).args))

exp: $(VENV)/.runtime
	$(BIN)/dvc exp run $(PRESET_ARGS) $(ARGS)
	$(BIN)/dvc exp show --no-pager --only-changed $(SORT)

show: $(VENV)/.runtime
	$(BIN)/dvc exp show --no-pager --only-changed $(SORT)

submit: $(VENV)/.runtime
	$(BIN)/python -m stages.submit $(if $(MSG),-m "$(MSG)") $(ARGS)

submissions: $(VENV)/.runtime
	$(BIN)/python -m stages.submissions $(ARGS)

tiny: $(VENV)/.runtime
	$(BIN)/dvc exp run -n tiny-$$(date +%s) $(shell grep -v '^\#' presets/tiny.args) $(ARGS)

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/run_all.py

bench-full: $(VENV)/.dev
	$(BIN)/python benchmarks/bench_fulldata.py $(ARGS)

gpu-check: $(VENV)/.runtime
	$(BIN)/python benchmarks/gpu_check.py $(ARGS)
bench-raw: $(VENV)/.dev
	$(BIN)/python benchmarks/bench_raw.py --replicas 32 $(ARGS)

# The two real sets at the budgets BENCHMARKS.md reports (ARGS adds to the second).
bench-quality: $(VENV)/.dev
	$(BIN)/python benchmarks/bench_quality.py --sets dense4 --budget 40960 --seeds 2
	$(BIN)/python benchmarks/bench_quality.py --sets sample --budget 25600 --seeds 2 $(ARGS)

bench-levers: $(VENV)/.dev
	$(BIN)/python benchmarks/bench_levers.py $(ARGS)

bench-families: $(VENV)/.dev
	$(BIN)/python benchmarks/bench_families.py $(ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf data/source.json data/raw data/shards data/predictions data/tfrecord models/*/ submission.csv

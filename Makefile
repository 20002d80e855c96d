# make run        -- create .venv (if needed), install, run the whole DVC pipeline (dvc repro)
# make install    -- the venv and the project; on an NVIDIA GPU box the CUDA build of the backend
#                    (GPU=0|1 overrides; BACKEND=jax: JAX too); a Kaggle/Colab notebook's own
#                    TensorFlow/Keras/JAX are reused (docs/gpu.md). It prints what and why.
# make doctor     -- in seconds: the GPUs, what each backend sees, precision, loader speed,
#                    disk, Kaggle credentials, then one line per problem with its fix
# make test       -- create .venv (if needed), install with dev tools, run the full test suite
# make test-fast  -- the suite without training and dvc end-to-end runs (under 2 minutes)
# make exp ARGS='-S img_size=128'   -- one experiment (dvc exp run), then the comparison table
#                 (PRESET=kaggle-full adds presets/kaggle-full.args' -S values first)
# make show       -- every experiment side by side, best holdout MAP@3 first
# make submit MSG='...'             -- validate and upload submission.csv, wait for its public
#                 score, record it in reports/submissions.csv (ARGS=--dry-run | --no-wait)
#                 (RUN=kaggle-<slug>-v<N>: a pulled Kaggle kernel's submission.csv)
# make kaggle-run PRESET=kaggle-notebook ARGS='-S ...'  -- push the pipeline as a private Kaggle
#                 kernel on Kaggle's GPU (a new version each time), print its URL (docs/kaggle.md)
# make kaggle-status -- queued / running / complete / error (ARGS=--wait: until it ends)
# make kaggle-pull   -- download its output, record the run as an experiment (make show lists it)
# make submissions -- the record of uploads, holdout MAP@3 beside Kaggle's scores (pending
#                 ones asked for first; ARGS=--offline: don't)
# make tiny       -- a half-minute experiment on tiny synthetic data (the plumbing, not skill)
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

.PHONY: run test test-fast exp show submit submissions kaggle-run kaggle-status kaggle-pull tiny bench bench-full bench-raw bench-quality bench-levers bench-families gpu-check doctor lint format install install-dev clean

# What to install and why (doodle/gpu/install.py, asked with the system's python3): words
# 1-4 are the venv flags, the runtime spec, the backend extra and the variant; the rest is
# the line printed.
comma := ,
INSTALL := $(or $(shell $(PYTHON) -m doodle.gpu.install --make "GPU=$(GPU)" "BACKEND=$(BACKEND)" 2>/dev/null),- . $(or $(BACKEND),-) cpu install: the project's dependencies)
VENV_FLAGS := $(subst $(comma), ,$(filter-out -,$(word 1,$(INSTALL))))
RUNTIME_SPEC := $(word 2,$(INSTALL))
BACKEND_EXTRA := $(filter-out -,$(word 3,$(INSTALL)))
VARIANT := $(word 4,$(INSTALL))
INSTALL_LINE := $(wordlist 5,$(words $(INSTALL)),$(INSTALL))

$(VENV)/.runtime: pyproject.toml $(VENV)/.variant-$(VARIANT)
	@$(if $(BACKEND),:,echo '$(INSTALL_LINE)')
	test -x $(BIN)/python || $(strip $(PYTHON) -m venv $(VENV_FLAGS) $(VENV))
	$(if $(filter notebook,$(VARIANT)),,$(BIN)/python -m pip install -q --upgrade pip)
	$(BIN)/python -m pip install -q -e $(RUNTIME_SPEC)
	touch $@

# One file names the installed variant (cpu, gpu, notebook): another one (GPU=1 after a CPU
# install) is a missing file, so the install runs again.
$(VENV)/.variant-%:
	@mkdir -p $(VENV) && rm -f $(VENV)/.variant-* && touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

# BACKEND=jax adds the optional extra of that name (pyproject.toml), for KERAS_BACKEND=jax;
# on an NVIDIA GPU box its CUDA build (the extra jax-gpu).
install: $(VENV)/.runtime $(if $(BACKEND_EXTRA),$(VENV)/.backend-$(BACKEND_EXTRA))

$(VENV)/.backend-%: $(VENV)/.runtime
	@echo '$(INSTALL_LINE)'
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
	$(BIN)/python -m stages.submit $(if $(MSG),-m "$(MSG)") $(if $(RUN),--run $(RUN)) $(ARGS)

# Kaggle's own GPUs from here (docs/kaggle.md); PRESET as for `make exp`, ARGS='-S key=value ...'
kaggle-run: $(VENV)/.runtime
	$(BIN)/python -m stages.kernel run $(if $(PRESET),--preset $(PRESET)) $(ARGS)

kaggle-status: $(VENV)/.runtime
	$(BIN)/python -m stages.kernel status $(ARGS)

kaggle-pull: $(VENV)/.runtime
	$(BIN)/python -m stages.kernel pull $(ARGS)

submissions: $(VENV)/.runtime
	$(BIN)/python -m stages.submissions $(ARGS)

tiny: $(VENV)/.runtime
	$(BIN)/dvc exp run -n tiny-$$(date +%s) $(shell grep -v '^\#' presets/tiny.args) $(ARGS)

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/run_all.py

bench-full: $(VENV)/.dev
	$(BIN)/python benchmarks/bench_data.py full $(ARGS)

gpu-check: $(VENV)/.runtime
	$(BIN)/python -m doodle.gpu.check $(ARGS)

doctor: $(VENV)/.runtime
	@$(BIN)/python -m doodle.gpu.doctor $(ARGS)

bench-raw: $(VENV)/.dev
	$(BIN)/python benchmarks/bench_data.py raw --replicas 32 $(ARGS)

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

# `make test` and `make demo` set up .venv from scratch when it is missing, then run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export MLFLOW_DISABLE_TELEMETRY := true
# Tests start private Ray clusters without auth; `gprune sweep` itself gives its own cluster a token.
TEST_ENV := RAY_AUTH_MODE=disabled
export TOKENIZERS_PARALLELISM := false

.PHONY: install lint system-packages test test-fast demo eval-demo bench train-tiny clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/deptry .

# PostgreSQL, Chromium, Slurm and munge from Debian's archive where missing (or one line saying what to install).
system-packages:
	bash testbed/system_packages.sh

# Everything, as CI runs it: the linter, then every test (Ray clusters, PostgreSQL, Slurm, a browser, training).
test: lint system-packages
	$(TEST_ENV) $(PY) -m pytest -q

# The quick loop while editing: every test not marked slow (about two minutes here).
test-fast: lint
	$(TEST_ENV) $(PY) -m pytest -q -m "not slow"

# The main job: the embedded quickstart sweep (tiny model, fixtures, local Ray, SQLite MLflow).
demo: $(STAMP)
	$(VENV)/bin/gprune sweep --preset quickstart

# One evaluation of one config on all nine benchmarks, without Ray or MLflow.
eval-demo: $(STAMP)
	test -d .data/fixtures || $(VENV)/bin/gprune fixtures --out .data/fixtures
	$(VENV)/bin/gprune eval --model tiny --benchmarks all --data-dir .data/fixtures --ratio 0.7 --limit 20 --batch-size 4

# Retrain the shipped tiny checkpoint (about 30 min on 2 CPU cores); see gprune/checkpoints/tiny/README.md.
train-tiny: $(STAMP)
	$(VENV)/bin/gprune train-tiny --out gprune/checkpoints/tiny

bench: $(STAMP)
	$(PY) bench/selection.py
	$(PY) bench/prefill.py
	$(PY) bench/prefill.py --hidden 1024 --layers 8
	$(PY) bench/runner.py --limit 256
	$(PY) bench/flops_8b.py
	$(PY) bench/gpu.py   # the 8B geometry on a GPU; on a CPU, the narrow smoke model
	$(PY) bench/decode_step.py   # the same: one decode step against transformers' own classes
	$(PY) bench/host_reads.py
	$(PY) bench/sweep_timing.py
	$(PY) bench/pruning_table.py
	$(PY) bench/easyvqa_types.py
	$(PY) bench/paired_bootstrap.py
	$(PY) bench/scheduling.py
	$(PY) bench/report_scale.py
	$(PY) bench/full_size.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .data .sweeps mlflow.db mlartifacts

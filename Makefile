# airflow-modelops: two commands from a fresh clone.
#   make demo   set everything up and run the whole lifecycle on the embedded default
#   make test   set everything up and run the test suite
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
ENV := source scripts/airflow_env.sh &&
# Bump INSTALL_REV when the install recipe changes, so existing venvs are rebuilt.
INSTALL_REV := 3
STAMP := $(VENV)/.installed-$(shell (echo $(INSTALL_REV); cat requirements-dev.lock pyproject.toml) | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: help venv bytecode system-deps demo test test-fast status status-json airflow-ui mlflow-ui lock clean-demo bench bench-evidently-venv

help:
	@echo "make demo | make test | make status | make status-json | make airflow-ui | make mlflow-ui | make lock | make clean-demo"

# Python 3.11 + pip are all a machine needs: uv comes from PyPI, everything else from the lock file.
$(STAMP): requirements-dev.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements-dev.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	# Write .pyc once now. With PYTHONDONTWRITEBYTECODE set (CI images often do) every process would
	# otherwise compile Airflow/MLflow from source: import airflow.sdk 4-6 s instead of ~2 s, paid by
	# every task, CLI call and test subprocess.
	$(BIN)/python -m compileall -q -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" >/dev/null || true
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

# Our own modules' bytecode (quick when nothing changed): with PYTHONDONTWRITEBYTECODE set, every
# DAG parse, task and test subprocess would otherwise compile include/ and plugins/ from source.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q include plugins dags >/dev/null

# Debian packages the tests use: docker-compose validates docker-compose.yaml (no Docker engine
# needed for `config`). Installed only when missing, and only where apt-get can run.
system-deps:
	@missing=""; command -v docker-compose >/dev/null || missing="docker-compose"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages: $$missing"; \
	    (apt-get install -y -qq --no-install-recommends $$missing >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $$missing >/dev/null)) || \
	    echo "warning: could not install $$missing"; \
	  elif command -v sudo >/dev/null; then sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null || true; \
	  else echo "warning: $$missing missing and apt-get unavailable: its tests skip (fail when CI=true)"; fi; \
	fi

demo: $(STAMP) bytecode
	$(ENV) $(BIN)/python scripts/demo.py

test: $(STAMP) bytecode system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP) bytecode system-deps
	$(BIN)/python -m pytest -m "not dagrun" $(PYTEST_ARGS)

status: $(STAMP)
	@$(ENV) $(BIN)/python -m modelops status

status-json: $(STAMP)
	@$(ENV) $(BIN)/python -m modelops status --json

airflow-ui: $(STAMP)
	$(ENV) $(BIN)/airflow db migrate >/dev/null && echo "Airflow UI: $$AIRFLOW__API__BASE_URL (passwords: $$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE)" && \
	  $(BIN)/airflow api-server --host "$$AIRFLOW__API__HOST" --port $$AIRFLOW__API__PORT

mlflow-ui: $(STAMP)
	$(ENV) echo "MLflow UI: http://$$MLFLOW_UI_HOST:5000" && $(BIN)/mlflow ui --host "$$MLFLOW_UI_HOST" --port 5000 \
	  --backend-store-uri "$$MLFLOW_TRACKING_URI" --default-artifact-root "$$MODELOPS_HOME/mlartifacts"

# Benchmarks (never part of `make test`): drift vs scipy and Evidently, DAG parse cost, retrain overhead
# (with the fast test hyperparameters, then with the shipped ones at the largest size), batch scoring.
# Quick run: make bench BENCH_SIZES=10000,100000  (the full run: 30-90 min on 2 cores, the retrain rounds most of it).
# BENCH_ARGS e.g. "--no-evidently", "--only drift,parse", "--shipped-rounds 1", "--readme" (write the table into README.md).
BENCH_SIZES ?= 10000,100000,1000000
BENCH_ARGS ?=
EVIDENTLY_VENV := .bench-venv-evidently
EVIDENTLY_STAMP := $(EVIDENTLY_VENV)/.installed-$(shell cat bench/requirements-evidently.lock 2>/dev/null | sha1sum | cut -c1-12)

# Evidently 0.7 needs pandas < 3: its own venv, from its own lock (bench/requirements-evidently.txt).
$(EVIDENTLY_STAMP): bench/requirements-evidently.lock $(STAMP)
	test -x $(EVIDENTLY_VENV)/bin/python || $(PYTHON) -m venv $(EVIDENTLY_VENV)
	$(BIN)/uv pip install --quiet --python $(EVIDENTLY_VENV)/bin/python -r bench/requirements-evidently.lock
	rm -f $(EVIDENTLY_VENV)/.installed-* && touch $@

bench-evidently-venv: $(EVIDENTLY_STAMP)

bench: $(STAMP) $(EVIDENTLY_STAMP)
	PYTHONPATH=include:plugins $(BIN)/python bench/run.py --sizes $(BENCH_SIZES) $(BENCH_ARGS)

# Re-pin after editing requirements*.txt (needs PyPI).
lock:
	uv pip compile --python 3.11 requirements.txt -o requirements.lock
	uv pip compile --python 3.11 requirements-dev.txt -o requirements-dev.lock
	uv pip compile --python 3.11 bench/requirements-evidently.txt -o bench/requirements-evidently.lock

clean-demo:
	rm -rf .demo

# ml-cicd-template: bake, test and benchmark the template. `make` alone lists the commands.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
# the shared registry server's own environment (full mlflow cannot share .venv's pins)
SERVER_VENV := .venv-server
SERVER_STAMP := $(SERVER_VENV)/.installed
SERVER_REQUIREMENTS := {{cookiecutter.project}}/requirements/server.txt
DEMO_DIR := build/demo
DEMO := $(DEMO_DIR)/churn-model
LOCK_BAKE := build/lock/churn-model
PROJECT_REQUIREMENTS := $(wildcard {{cookiecutter.project}}/requirements/*.txt)

export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export DVC_NO_ANALYTICS := 1
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: help
help: ## list the commands
	@grep -hE '^[a-zA-Z0-9_ -]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  \033[36m%-8s\033[0m %s\n", $$1, $$2}'

# requirements-dev.txt is hash-locked on top of the project's locked dev.txt (-r), so every
# line pip reads carries hashes and one --require-hashes install takes them all.
$(STAMP): requirements-dev.txt package-lock.json $(PROJECT_REQUIREMENTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.txt
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(SERVER_STAMP): $(SERVER_REQUIREMENTS)
	$(PYTHON) -m venv $(SERVER_VENV)
	$(SERVER_VENV)/bin/python -m pip install --quiet --require-hashes -r $(SERVER_REQUIREMENTS)
	touch $@

.PHONY: venv
venv: $(STAMP) $(SERVER_STAMP) ## create .venv (template test tools, linters, the generated project's locked dependencies), .venv-server (mlflow server) and node_modules

.PHONY: lock
lock: export ARG_UPGRADE = $(value UPGRADE)
lock: $(STAMP) ## regenerate the locks (hashes): the project's requirements/*.txt, then requirements-dev.txt [UPGRADE="pkg ..."]
	rm -rf $(dir $(LOCK_BAKE))
	$(PY) -m cookiecutter --no-input --output-dir $(dir $(LOCK_BAKE)) .
	$(MAKE) --no-print-directory -C $(LOCK_BAKE) lock UPGRADE="$$ARG_UPGRADE"
	cp $(LOCK_BAKE)/requirements/*.txt "{{cookiecutter.project}}/requirements/"
	$(PY) "{{cookiecutter.project}}/scripts/lock.py" --upgrade "$$ARG_UPGRADE" \
		--inputs requirements-dev.in requirements-lint.in \
		--base "{{cookiecutter.project}}/requirements/dev.txt" --out requirements-dev.txt

.PHONY: demo
demo: $(STAMP) ## bake into build/demo and tell a model's whole life: v1, drift, retrain, paired test, canary, rollback, realised AUC (demo/story.py)
	@if [ -d $(DEMO)/.deploy ]; then $(MAKE) --no-print-directory -C $(DEMO) undeploy >/dev/null 2>&1 || true; fi
	rm -rf $(DEMO_DIR)
	$(PY) -m cookiecutter --no-input --output-dir $(DEMO_DIR) .
	$(PY) demo/story.py $(DEMO) --log $(DEMO_DIR)/demo.log

.PHONY: test
# Three workers on two cores: a bake spends much of its time waiting (servers, installs,
# canary pauses), so a third file fills the cores while the others wait (tests/conftest.py
# orders the files, longest first).
TEST_WORKERS ?= 3
test: $(STAMP) $(SERVER_STAMP) ## bake a pairwise covering set of option combinations and run what was baked (lint, tests, dvc repro, delivery)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=40 tests

.PHONY: bench
bench: $(STAMP) $(SERVER_STAMP) ## run the benchmarks; figures go to bench/results.json and a table
	$(PY) bench/run.py

.PHONY: clean
clean: ## remove build output and caches (keeps .venv)
	rm -rf build .pytest_cache bench/results.json node_modules

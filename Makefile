# Papertide: `make run` serves the demo site, `make test` runs the whole suite (SQLite + PostgreSQL).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?= -n 2

.PHONY: run test lint docs bench lock audit clean

# torch first, pinned to the CPU build: asked for through sentence-transformers with no torch
# installed, pip would download a CUDA build of several GB.
TORCH ?= torch==2.13.0

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/papertide demo
	$(BIN)/papertide serve --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-test
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check papertide tests bench scripts
	$(BIN)/ruff format --check papertide tests bench scripts
	$(BIN)/mypy papertide

docs: $(VENV)/.installed-test
	$(BIN)/cog -r docs/configuration.md docs/cli.md

bench: $(VENV)/.installed-test
	$(BIN)/python bench/ingest.py

# requirements.lock: the runtime dependencies at the versions installed in .venv.
lock: $(VENV)/.installed
	$(BIN)/python scripts/lock_requirements.py requirements.lock

# pip-audit on requirements.lock (pinned: no resolution, no pip), against PyPI's advisories
# (AUDIT_SERVICE=osv for OSV's). --strict: a package it cannot look up fails the audit.
AUDIT_SERVICE ?= pypi
audit: $(VENV)/.installed-test
	$(BIN)/pip-audit --requirement requirements.lock --no-deps --disable-pip --strict \
		--vulnerability-service $(AUDIT_SERVICE) --progress-spinner off

clean:
	rm -rf $(VENV) papertide.db papertide.db-wal papertide.db-shm papertide.db.search

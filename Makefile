# The two commands a newcomer needs: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format ui simulator bench install install-check compat clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/pip check
	touch $(STAMP)

install: $(STAMP)

## The wheel's contents, and a lean core install beside the oldest supported dagster pair (a throwaway venv).
install-check:
	bash .ci/install_check $(PYTHON)

## The Dagster compatibility matrix (noxfile.py): the suite on the oldest supported dagster pair, the Dagster-layer
## tests on one release between; each in a venv of its own under .nox/ (the newest pair is `make test`'s).
compat: $(STAMP)
	$(BIN)/nox -s oldest between

## Runs the demo pipeline end to end on the embedded simulator and S3 server.
demo: $(STAMP)
	$(BIN)/python -m minimax_dagster.demo

## Runs lint and the whole test suite.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy minimax_dagster/api minimax_dagster/storage minimax_dagster/production minimax_dagster/compat.py
	$(BIN)/python -m pytest

## Starts the embedded services and the Dagster UI (dg dev) on http://127.0.0.1:3000; SIGTERM or Ctrl-C stops all.
ui: $(STAMP)
	$(BIN)/python -m minimax_dagster.demo --ui

simulator: $(STAMP)
	$(BIN)/python -m minimax_dagster.simulator --port 8765

bench: $(STAMP)
	$(BIN)/python -m benchmarks

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .nox demo_output .pytest_cache .ruff_cache build dist *.egg-info

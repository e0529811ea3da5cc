# The two commands a newcomer needs: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test docs lint format ui simulator bench install install-check compat clean

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

## Runs lint, the type checks, the documentation build and the whole test suite (with every doc example).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy minimax_dagster
	$(BIN)/vulture
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir $(CURDIR)/.site
	$(BIN)/python -m pytest

## Serves the documentation site on http://127.0.0.1:8000 (rebuilt on every edit; Ctrl-C stops).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

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
	rm -rf $(VENV) .nox demo_output .site .pytest_cache .ruff_cache build dist *.egg-info

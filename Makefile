# Entry points: `make run`, `make test` (what CI runs), `make lint`, `make bench`.
# Each sets up .venv at the repository root on first use and reinstalls only when
# pyproject.toml changes (a stamp file records the last install).

VENV   := .venv
PYTHON := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-pyproject

.DEFAULT_GOAL := test
.PHONY: setup run test lint bench

$(PYTHON):
	python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(PYTHON)
	$(PYTHON) -m pip install -e '.[dev]'
	touch $@

setup: $(STAMP)

run: setup
	$(VENV)/bin/tickscan run

# pytest exits 5 when it collects no tests; make treats any non-zero exit as failure,
# so an empty or wholly deselected suite fails CI instead of passing silently.
test: setup
	$(PYTHON) -m pytest -q -ra --strict-markers --durations=10
	$(MAKE) lint

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: setup
	@set -e; for script in bench/*.py; do \
		echo "== $$script"; $(PYTHON) $$script; \
	done

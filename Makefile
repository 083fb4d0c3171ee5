# Entry points: `make run`, `make test` (what CI runs), `make lint`, `make bench`, `make ui`.
# Each sets up .venv at the repository root on first use and reinstalls only when
# pyproject.toml changes (a stamp file records the last install). The web UI is likewise
# reinstalled only when ui/package-lock.json changes and rebuilt only when its sources do.

VENV   := .venv
PYTHON := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-pyproject

UI_STAMP   := ui/node_modules/.installed-lock
UI_BUILT   := ui/dist/index.html
UI_SOURCES := $(shell find ui/src ui/public -type f 2>/dev/null) \
	ui/index.html ui/package.json ui/tsconfig.json ui/vite.config.ts
# The end-to-end tests and bench/ui.py drive Debian's chromium through Playwright's driver.
CHROMIUM   := /usr/bin/chromium

.DEFAULT_GOAL := test
.PHONY: setup run test lint bench ui browser

$(PYTHON):
	python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(PYTHON)
	$(PYTHON) -m pip install -e '.[dev]'
	touch $@

setup: $(STAMP)

# Vite 8 needs Node.js ^20.19 or >=22.12; say so plainly rather than fail deep in a build.
NODE_OK := const [major, minor] = process.versions.node.split(".").map(Number); \
	process.exit(major > 22 || (major === 22 && minor >= 12) || (major === 20 && minor >= 19) ? 0 : 1)

$(UI_STAMP): ui/package-lock.json
	@node -e '$(NODE_OK)' || { echo "make ui: Node.js ^20.19 or >=22.12 with npm is needed" \
		"(found: $$(node --version 2>&1))" >&2; exit 1; }
	cd ui && npm ci --no-audit --no-fund
	touch $@

$(UI_BUILT): $(UI_STAMP) $(UI_SOURCES)
	cd ui && npm run build

# The browser UI in ui/dist, which the API serves at /.
ui: $(UI_BUILT)

# CI runs as root on a fresh Debian 12: install the distribution's chromium once.
$(CHROMIUM):
	@[ "$$(id -u)" = 0 ] || { echo "make browser: $(CHROMIUM) is missing; as root run:" \
		"apt-get install --no-install-recommends chromium" >&2; exit 1; }
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

browser: $(CHROMIUM) setup

run: setup ui
	$(VENV)/bin/tickscan run

# pytest exits 5 when it collects no tests; make treats any non-zero exit as failure,
# so an empty or wholly deselected suite fails CI instead of passing silently.
test: setup ui browser
	$(PYTHON) -m pytest -q -ra --strict-markers --durations=10
	$(MAKE) lint

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: setup ui browser
	@set -e; for script in bench/*.py; do \
		echo "== $$script"; $(PYTHON) $$script; \
	done

# Commands that work on a fresh clone: `make demo`, `make lab`, `make test`, `make docs`. Each bootstraps .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: demo lab test docs lint install clean bench

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# the CPU wheel these machines carry; an unpinned torch would pull a multi-GB CUDA build
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	touch $(STAMP)

# notebook 05 reads a text aloud with the espeak-ng program (a system package, not a Python one)
ESPEAK_NOTE = command -v espeak-ng >/dev/null || echo "note: espeak-ng is not installed; it reads .txt stimuli aloud \
(notebook 05 skips that cell without it). Get it with: sudo apt-get install espeak-ng (Debian/Ubuntu), \
brew install espeak-ng (macOS) or conda install -c conda-forge espeak-ng."

install: $(STAMP)
	@$(ESPEAK_NOTE)

demo: $(STAMP)
	$(PY) -m tribev2.demo

# JupyterLab on the tutorial notebooks (the venv's kernel and lab extensions: live viewer, widgets)
lab: $(STAMP)
	@$(ESPEAK_NOTE)
	$(VENV)/bin/jupyter lab notebooks/01_quickstart.ipynb

# static HTML site (README, tutorials, notebooks as committed, API reference) in docs/_build/html; no network
docs: $(STAMP)
	$(PY) -m sphinx -b html -c docs -q . docs/_build/html
	@echo "open docs/_build/html/index.html"

test: lint
	$(PY) -m pytest -n 2 --dist loadgroup -q

# style (ruff) and the layer contract of design.md (import-linter): seconds, before the tests
lint: $(STAMP)
	$(VENV)/bin/ruff check tribev2 tests benchmarks data
	$(VENV)/bin/ruff format --check tribev2 tests benchmarks data
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) benchmarks/bench_model.py

clean:
	rm -rf $(VENV) outputs .pytest_cache docs/_build tests/artifacts

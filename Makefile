# Two commands that work on a fresh clone: `make demo` and `make test`. Each bootstraps .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean bench

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# the CPU wheel these machines carry; an unpinned torch would pull a multi-GB CUDA build
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m tribev2.demo

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
	rm -rf $(VENV) outputs .pytest_cache

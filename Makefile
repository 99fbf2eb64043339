# The README's commands. Every target installs what it needs into .venv first (torch pinned to the
# CPU wheel through constraints.txt), so a fresh clone needs nothing installed by hand.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PIP_INSTALL := $(PIP) install -q --disable-pip-version-check -c constraints.txt

.PHONY: setup setup-dev demo test lint bench clean

$(VENV)/.base: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.dev: $(VENV)/.base
	$(PIP_INSTALL) -e ".[dev,fast,nir,neuromorphic]"
	touch $@

setup: $(VENV)/.base
setup-dev: $(VENV)/.dev

demo: $(VENV)/.base
	$(VENV)/bin/deepspike demo --out runs/demo

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check src tests

test: $(VENV)/.dev lint
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(VENV)/.dev
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache

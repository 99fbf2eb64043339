# The README's commands. Every target installs what it needs into .venv first (torch pinned to the
# CPU wheel through constraints.txt), so a fresh clone needs nothing installed by hand.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PIP_INSTALL := $(PIP) install -q --disable-pip-version-check -c constraints.txt

.PHONY: setup setup-dev demo test test-triton lint bench clean

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
	$(VENV)/bin/lint-imports --no-cache

test: $(VENV)/.dev lint
	$(PY) -m pytest -q -p no:cacheprovider

# The Triton (CUDA) kernels run in Triton's interpreter on the CPU, against the numba kernels and the reference
# paths; not part of `test`: triton is a 170 MB download that CI does not need. Its own venv (TRITON_VENV).
TRITON_VENV ?= .triton-venv
$(TRITON_VENV)/.ok: pyproject.toml constraints.txt
	test -x $(TRITON_VENV)/bin/python || $(PYTHON) -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[fast,triton]" pytest
	touch $@

test-triton: $(TRITON_VENV)/.ok
	TRITON_INTERPRET=1 $(TRITON_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/neurons/test_fused_triton.py \
		tests/ttfs/test_backend_triton.py

bench: $(VENV)/.dev
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(TRITON_VENV) runs .pytest_cache .ruff_cache

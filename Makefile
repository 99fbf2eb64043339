# The README's commands. Every target installs what it needs into .venv first (torch pinned to the
# CPU wheel through constraints.txt), so a fresh clone needs nothing installed by hand.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PIP_INSTALL := $(PIP) install -q --disable-pip-version-check -c constraints.txt

.PHONY: setup setup-dev demo test test-triton test-nir lint bench docs clean

$(VENV)/.base: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.dev: $(VENV)/.base
	$(PIP_INSTALL) -e ".[dev,fast,nir,onnx,neuromorphic]"
	touch $@

setup: $(VENV)/.base
setup-dev: $(VENV)/.dev

demo: $(VENV)/.base
	$(VENV)/bin/deepspike demo --out runs/demo

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check src tests docs benchmarks
	$(VENV)/bin/lint-imports --no-cache

# The suite runs in one worker process per core (pytest-xdist; TEST_WORKERS=0 runs it in this process), each
# with one torch thread: on 2 cores 4 min, against 12 min in one process with torch's 2 threads (RESULTS, session 32).
TEST_WORKERS ?= auto

test: $(VENV)/.dev lint
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS)

# The Triton (CUDA) kernels run in Triton's interpreter on the CPU, against the numba kernels and the reference
# paths; not part of `test` (triton is a ~290 MB download, 1 GB installed): CI runs it after `test`. Triton alone
# goes into its own folder (TRITON_PKGS), put on .venv's path for these tests only: a venv of its own held a second
# torch (0.75 GB more of CI's disk, which ran out once).
TRITON_PKGS ?= .triton-pkgs
$(TRITON_PKGS)/.ok: $(VENV)/.dev
	rm -rf $(TRITON_PKGS)
	$(PIP_INSTALL) --target $(TRITON_PKGS) "triton>=3.0"
	touch $@

test-triton: $(VENV)/.dev $(TRITON_PKGS)/.ok
	TRITON_INTERPRET=1 PYTHONPATH=$(TRITON_PKGS) $(PY) -m pytest -q -p no:cacheprovider tests/neurons/test_fused_triton.py tests/neurons/test_fused_learnable_triton.py \
		tests/ttfs/test_backend_triton.py

# NIR conformance: deepspike's graphs against the third-party NIR tools (snnTorch, Norse, Sinabs, Rockpool,
# SpikingJelly, Spyx on JAX's CPU build) in their own venv (NIR_VENV), never runtime dependencies. The tools
# go in with --no-deps (their pins conflict: tests/conformance/requirements-tools.txt says why), their
# runtime needs through requirements.txt; every install through constraints.txt (CPU torch).
NIR_VENV ?= .nir-venv
NIR_PIP := $(NIR_VENV)/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt
$(NIR_VENV)/.ok: pyproject.toml constraints.txt tests/conformance/requirements.txt tests/conformance/requirements-tools.txt
	test -x $(NIR_VENV)/bin/python || $(PYTHON) -m venv $(NIR_VENV)
	$(NIR_PIP) -e ".[nir,onnx]" -r tests/conformance/requirements.txt
	$(NIR_PIP) --no-deps -r tests/conformance/requirements-tools.txt
	touch $@

test-nir: $(NIR_VENV)/.ok
	DEEPSPIKE_NIR_CONFORMANCE=1 $(NIR_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/conformance

# The documentation site (MkDocs + Material + mkdocstrings, in its own venv): docs/build_pages.py runs every
# tutorial (a failing tutorial fails the build) and writes the CLI reference; mkdocs --strict turns warnings
# (a broken link, a missing page or docstring target) into errors. Output: site/index.html.
DOCS_VENV ?= .docs-venv
$(DOCS_VENV)/.ok: docs/requirements.txt
	test -x $(DOCS_VENV)/bin/python || $(PYTHON) -m venv $(DOCS_VENV)
	$(DOCS_VENV)/bin/python -m pip install -q --disable-pip-version-check -r docs/requirements.txt
	touch $@

docs: $(VENV)/.dev $(DOCS_VENV)/.ok
	$(PY) docs/build_pages.py
	NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/mkdocs build --strict --quiet

bench: $(VENV)/.dev
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(TRITON_PKGS) $(DOCS_VENV) $(NIR_VENV) runs site docs/generated .pytest_cache .ruff_cache

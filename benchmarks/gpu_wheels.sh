#!/usr/bin/env bash
# Download, here (where PyPI is reachable), the wheels that benchmarks/gpu_check.sh installs on the lent GPU
# machine, which has no network. That machine's python3 (3.12) already has a CUDA torch, Triton, CuPy, JAX, numba,
# numpy/scipy/matplotlib/scikit-learn/pyyaml, pytest and hypothesis; what deepspike and the benchmark peers need
# beyond that is listed below, pinned, fetched with --no-deps (nothing else is pulled) into an ignored folder.
#
#   bash benchmarks/gpu_wheels.sh [DIR]        (DIR defaults to .gpu-wheels; about 10 MB)
#
# Pure-Python wheels (norse 1.1.0 is published as an sdist only: built here into a pure wheel, setuptools alone,
# no compiled code) except grain and array-record (spyx imports grain), fetched as CPython 3.12 manylinux
# x86-64 builds for that machine. Every download goes through -c constraints.txt like every other install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$ROOT/.gpu-wheels}"
PY="${PYTHON:-python3}"
mkdir -p "$DEST"

PURE=(
  omegaconf==2.4.0        # deepspike's config (needs only PyYAML, which the machine has)
  snntorch==1.0.0
  spikingjelly==2.0.0
  loguru==0.7.3           # spikingjelly's logger
  nir==1.0.8
  nirtorch==2.6
  spyx==1.0.0
  jax-tqdm==0.4.0         # spyx
  portpicker==1.6.0       # grain
)
BINARY=(
  grain==0.2.18           # spyx.data imports it at import time
  array-record==0.8.6     # grain
)
PLATFORM=(--only-binary=:all: --python-version 3.12 --implementation cp --abi cp312
          --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
          --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)

cd "$ROOT"
"$PY" -m pip download -q --disable-pip-version-check --no-deps -c constraints.txt -d "$DEST" \
  --only-binary=:all: "${PURE[@]}"
"$PY" -m pip download -q --disable-pip-version-check --no-deps -c constraints.txt -d "$DEST" "${PLATFORM[@]}" \
  "${BINARY[@]}"
"$PY" -m pip wheel -q --disable-pip-version-check --no-deps -c constraints.txt -w "$DEST" norse==1.1.0
ls -1 "$DEST"
du -sh "$DEST"

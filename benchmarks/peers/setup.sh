#!/usr/bin/env bash
# Create the benchmark venv (default /work/main/.bench-venv, i.e. <repo>/.bench-venv): the CPU torch pinned
# by constraints.txt, deepspike itself (editable, with numba), and the peers snnTorch, SpikingJelly, Norse and
# Spyx (JAX on CPU; bench_on.py). The peers are never dependencies of the package. SpikingJelly and Norse are
# installed with --no-deps because their metadata pulls torchvision (SpikingJelly also torchaudio and
# tensorboard); only the pure-Python modules their neuron and layer code imports are added by hand (Norse:
# nir, nirtorch). Spyx 1.0.0 brings flax, optax, grain and jax-tqdm; jax/jaxlib are the CPU wheels. The
# versions are those of tests/conformance/requirements*.txt. Re-running is cheap (pip skips what is there).
# Usage: bash benchmarks/peers/setup.sh [VENV_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${1:-${BENCH_VENV:-$ROOT/.bench-venv}}"
PYTHON="${PYTHON:-python3}"

test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check -c "$ROOT/constraints.txt")
"${PIP[@]}" "torch==2.13.0"
"${PIP[@]}" -e "$ROOT[fast]"
"${PIP[@]}" snntorch
"${PIP[@]}" --no-deps spikingjelly
"${PIP[@]}" loguru packaging tqdm  # imported by spikingjelly.activation_based (no torchvision needed)
"${PIP[@]}" --no-deps "norse==1.1.0"
"${PIP[@]}" "nir==1.0.8" "nirtorch==2.6"  # imported by norse.torch
"${PIP[@]}" "jax==0.10.2" "jaxlib==0.10.2" "spyx==1.0.0"
"${PIP[@]}" -r "$ROOT/benchmarks/peers/requirements-ttfs-peer.txt"  # exact-snn-nn (bench_ttfs_peer.py)

# Keep the venv out of git without touching .gitignore (owned by the lead).
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1 && ! git -C "$ROOT" check-ignore -q "$VENV/bin/python"; then
  EXCLUDE="$(git -C "$ROOT" rev-parse --git-path info/exclude)"
  case "$EXCLUDE" in /*) ;; *) EXCLUDE="$ROOT/$EXCLUDE" ;; esac
  mkdir -p "$(dirname "$EXCLUDE")"
  echo "/$(basename "$VENV")/" >> "$EXCLUDE"
fi

"$VENV/bin/python" - <<'PY'
import importlib, torch
for name in ("deepspike", "snntorch", "spikingjelly.activation_based.neuron", "numba", "norse.torch", "jax", "spyx", "exact_snn"):
    m = importlib.import_module(name)
    print(f"{name}: {getattr(m, '__version__', 'ok')}")
print("torch", torch.__version__)
PY

"""The machine of a GPU check (``benchmarks/gpu_check.sh``): ``nvidia-smi``, the git commit, Python, torch's CUDA
build and device, and the installed versions of the packages the check uses (from package metadata, without
importing them: JAX would claim GPU memory when its backend starts)."""

from __future__ import annotations

import importlib.metadata
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import torch

PACKAGES = ("torch", "triton", "numba", "numpy", "cupy-cuda13x", "cupy-cuda12x", "jax", "jaxlib", "deepspike",
            "omegaconf", "snntorch", "spikingjelly", "norse", "nir", "nirtorch", "spyx", "flax", "pytest")


def _run(cmd: list[str]) -> str:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (res.stdout or res.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{cmd[0]}: {e}"


def main() -> None:
    smi = shutil.which("nvidia-smi")
    print(_run([smi]) if smi else "nvidia-smi: not found (no NVIDIA driver here)")
    root = Path(__file__).resolve().parents[2]
    print(f"git commit: {_run(['git', '-C', str(root), 'rev-parse', '--short', 'HEAD'])}")
    print(f"python {sys.version.split()[0]} ({sys.executable}), {platform.platform()}")
    cuda = torch.cuda.is_available()
    print(f"torch {torch.__version__}, CUDA build {torch.version.cuda}, CUDA available {cuda}")
    if cuda:
        p = torch.cuda.get_device_properties(0)
        print(f"device 0: {p.name}, {p.total_memory / 2**30:.0f} GiB, capability {p.major}.{p.minor}, "
              f"{p.multi_processor_count} SMs")
    for name in PACKAGES:
        try:
            print(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            print(f"{name}: not installed")


if __name__ == "__main__":
    main()

"""Where the Triton kernel tests run: compiled on the GPU when CUDA is available and ``TRITON_INTERPRET`` is not
1, else on CPU tensors in Triton's interpreter (``make test-triton``). Import this before triton or deepspike:
the interpreter switch must be set before triton compiles the kernels.

On the GPU the reference (numba kernels, the CPU loops) still runs on the CPU: inputs are made on the CPU,
copied to ``DEVICE`` for the Triton call, and the results copied back. ``EXACT`` is False there: compiled
Triton may contract ``k v + x`` into one fused multiply-add (``neurons.fused_triton``), so membrane values can
differ from the separately rounded CPU result in the last bit; spikes are still compared exactly.
"""

from __future__ import annotations

import os

import torch

_CUDA = torch.cuda.is_available()
os.environ.setdefault("TRITON_INTERPRET", "0" if _CUDA else "1")
INTERPRET = os.environ["TRITON_INTERPRET"] == "1"
DEVICE = torch.device("cuda" if _CUDA and not INTERPRET else "cpu")
EXACT = DEVICE.type == "cpu"


def to_device(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """Copies of ``tensors`` on ``DEVICE`` (the same tensors on the CPU)."""
    return [t.to(DEVICE) for t in tensors]


def assert_same(got: torch.Tensor, ref: torch.Tensor, equal_nan: bool = False) -> None:
    """``got`` (any device) equals the CPU ``ref``: bit for bit on the CPU, within 1e-5 relative / 1e-6
    absolute on the GPU (``EXACT``)."""
    tol = 0.0 if EXACT else 1e-5
    torch.testing.assert_close(got.cpu(), ref, rtol=tol, atol=tol / 10, equal_nan=equal_nan)

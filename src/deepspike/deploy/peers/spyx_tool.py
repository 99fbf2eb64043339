"""Spyx (JAX, ``spyx.nir.from_nir``): builds the model and scans it over the leading time axis."""

from __future__ import annotations

import numpy as np
import torch

NAME, MODULE, DIST = "spyx", "spyx", "spyx"


def load(graph, dt: float, steps: int, batch: int):
    """Spyx's importer with ``dt``; runs ``[T, B, ...]`` on JAX's CPU backend."""
    import spyx.nir

    def run(x: torch.Tensor) -> torch.Tensor:
        _, out = spyx.nir.from_nir(graph, np.asarray(x.numpy()), dt=dt)
        out = out[0] if isinstance(out, tuple) else out
        return torch.as_tensor(np.asarray(out), dtype=torch.float32)

    return run

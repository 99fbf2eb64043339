"""Sinabs (``sinabs.from_nir``): its layers take ``[B*T, ...]`` with the batch size given at import."""

from __future__ import annotations

import torch

NAME, MODULE, DIST = "sinabs", "sinabs", "sinabs"


def load(graph, dt: float, steps: int, batch: int):
    """Sinabs' importer for a batch of ``batch`` samples: ``[T, B, ...] -> [B*T, ...]`` in, back out."""
    import sinabs

    net = sinabs.from_nir(graph, batch_size=batch)

    def run(x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        for mod in net.modules():
            if hasattr(mod, "reset_states"):
                mod.reset_states()
        flat = x.transpose(0, 1).reshape(b * t, *x.shape[2:])  # sample-major, as Sinabs' Squeeze layers expect
        with torch.no_grad():
            out = net(flat)
        out = out[0] if isinstance(out, tuple) else out
        return out.reshape(b, t, *out.shape[1:]).transpose(0, 1)

    return run

"""Rockpool (``rockpool.nn.modules.from_nir``): torch modules on ``[B, T, ...]``."""

from __future__ import annotations

import torch

NAME, MODULE, DIST = "rockpool", "rockpool", "rockpool"


def load(graph, dt: float, steps: int, batch: int):
    """Rockpool's importer; its modules run whole ``[B, T, N]`` sequences."""
    from rockpool.nn.modules import from_nir

    net = from_nir(graph)

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out = net(x.transpose(0, 1))
        out = out[0] if isinstance(out, tuple) else out
        return out.transpose(0, 1)

    return run

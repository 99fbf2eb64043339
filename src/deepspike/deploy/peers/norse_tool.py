"""Norse (``norse.torch.from_nir`` with the graph's dt)."""

from __future__ import annotations

import torch

from deepspike.deploy.peers.stepping import stateful_loop

NAME, MODULE, DIST = "norse", "norse", "norse"


def load(graph, dt: float, steps: int, batch: int):
    """Norse's importer, called with ``dt``; its modules step ``module(x_t, state) -> (z_t, state)``. Its
    Flatten keeps NIR's batch-free ``start_dim = 0``, so samples run one at a time."""
    import norse.torch as norse

    net = norse.from_nir(graph, dt=dt, ignore_warnings=True)
    return lambda x: torch.stack([stateful_loop(net, x[:, b]) for b in range(x.shape[1])], dim=1)

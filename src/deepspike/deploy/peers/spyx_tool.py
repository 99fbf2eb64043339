"""Spyx (JAX, ``spyx.nir.from_nir``): builds the model and scans it over the leading time axis."""

from __future__ import annotations

import numpy as np
import torch

from deepspike.deploy.graph_order import feedback_edges

NAME, MODULE, DIST = "spyx", "spyx", "spyx"


def load(graph, dt: float, steps: int, batch: int):
    """Spyx's importer with ``dt``; runs ``[T, B, ...]`` on JAX's CPU backend. A graph with a cycle (a recurrent
    layer ``lif -> rec -> lif``) is refused here: Spyx 1.0.0 orders nodes by following the first edge out of each
    node from the input (``spyx.nir._order_edge_list``), which on a cycle never reaches the output and grows its list
    until memory runs out (it reads recurrent layers only as nested subgraphs, the form its own export writes)."""
    import spyx.nir

    if feedback_edges(graph):
        raise ValueError("Spyx 1.0.0's importer never ends on a graph with a cycle (it follows the first edge out of "
                         "each node: lif -> rec -> lif -> ...); it takes recurrent layers as nested subgraphs only")

    def run(x: torch.Tensor) -> torch.Tensor:
        _, out = spyx.nir.from_nir(graph, np.asarray(x.numpy()), dt=dt)
        out = out[0] if isinstance(out, tuple) else out
        return torch.as_tensor(np.asarray(out), dtype=torch.float32)

    return run

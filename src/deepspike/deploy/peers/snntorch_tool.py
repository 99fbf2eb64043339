"""snnTorch (``snntorch.import_nir.import_from_nir``, ``snntorch.export_nir.export_to_nir``)."""

from __future__ import annotations

import contextlib
import copy
import io

import torch

from deepspike.deploy.peers.stepping import step_loop

NAME, MODULE, DIST = "snntorch", "snntorch", "snntorch"


def _clear(net) -> None:
    for mod in net.modules():
        if hasattr(mod, "reset_mem"):
            mod.reset_mem()


def load(graph, dt: float, steps: int, batch: int):
    """snnTorch's importer (it fixes dt = 1e-4 internally). Its Flatten keeps NIR's batch-free
    ``start_dim = 0``, so samples run one at a time, hidden state cleared between samples."""
    from snntorch.import_nir import import_from_nir

    with contextlib.redirect_stdout(io.StringIO()):  # it prints a progress line; keep the CLI's JSON clean
        net = import_from_nir(copy.deepcopy(graph))  # it rewrites a recurrent graph in place

    def one(out):
        return out[0] if isinstance(out, tuple) else out

    def run(x: torch.Tensor) -> torch.Tensor:
        cols = []
        for b in range(x.shape[1]):
            _clear(net)
            cols.append(step_loop(lambda xt: one(net(xt)), x[:, b]))
        return torch.stack(cols, dim=1)

    return run

"""Nets built with a tool's own layers, for the import direction: the tool exports, deepspike's ``from_nir`` runs.

Each ``produce_<tool>(batch)`` returns ``(graph, run, dt)``: the tool's NIR export of the dense net
Linear(64, 32) -> LIF -> Linear(32, 10) -> LIF (Sinabs: IAF, its IF neuron), the tool's own forward pass
``run(x [T, B, 64]) -> spikes [T, B, 10]``, and the tool's own time step in seconds (its export default; Sinabs
counts in steps: dt = 1), which the graph does not state. Weights: :func:`init_dense` (seeded, firing).
"""

from __future__ import annotations

import contextlib
import io

import torch
from torch import nn

from deepspike.deploy.peers.stepping import stateful_loop, step_loop


def init_dense(net: nn.Module, seed: int = 0) -> nn.Module:
    """Seeded ``N(1.5 / n, 0.6 / sqrt(n))`` weights (n = fan-in) and small biases for every ``nn.Linear``."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Linear):
                n = m.weight.shape[1]
                m.weight.normal_(1.5 / n, 0.6 / n ** 0.5)
                if m.bias is not None:
                    m.bias.uniform_(-0.05, 0.05)
    return net


def _clear(net: nn.Module, method: str) -> None:
    for m in net.modules():
        if hasattr(m, method):
            getattr(m, method)()


def produce_snntorch(batch: int):
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    net = init_dense(nn.Sequential(nn.Linear(64, 32), snn.Leaky(beta=0.9, init_hidden=True, reset_mechanism="zero"),
                                   nn.Linear(32, 10),
                                   snn.Leaky(beta=0.9, init_hidden=True, output=True, reset_mechanism="zero")))
    with contextlib.redirect_stdout(io.StringIO()):
        graph = export_to_nir(net, torch.zeros(64))

    def run(x):
        _clear(net, "reset_mem")
        return step_loop(lambda xt: net(xt)[0], x)

    return graph, run, 1e-4


def produce_norse(batch: int):
    import norse.torch as norse

    net = init_dense(norse.SequentialState(nn.Linear(64, 32), norse.LIFBoxCell(), nn.Linear(32, 10),
                                           norse.LIFBoxCell()))
    return norse.to_nir(net, torch.zeros(1, 64), dt=1e-3), lambda x: stateful_loop(net, x), 1e-3


def produce_sinabs(batch: int):
    import sinabs
    import sinabs.layers as sl

    net = init_dense(nn.Sequential(nn.Linear(64, 32), sl.IAFSqueeze(batch_size=batch), nn.Linear(32, 10),
                                   sl.IAFSqueeze(batch_size=batch)))
    graph = sinabs.to_nir(net, torch.zeros(batch, 64))

    def run(x):
        t, b = x.shape[:2]
        _clear(net, "reset_states")
        with torch.no_grad():
            out = net(x.transpose(0, 1).reshape(b * t, *x.shape[2:]))
        return out.reshape(b, t, -1).transpose(0, 1)

    return graph, run, 1.0


def produce_spikingjelly(batch: int):
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    def lif():
        return neuron.LIFNode(tau=10.0, decay_input=False, v_reset=0.0)

    net = init_dense(nn.Sequential(layer.Linear(64, 32), lif(), layer.Linear(32, 10), lif()))
    graph = export_to_nir(net, torch.zeros(1, 64), dt=1e-4)

    def run(x):
        functional.reset_net(net)
        return step_loop(net, x)

    return graph, run, 1e-4


def produce_rockpool(batch: int):
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch, to_nir

    net = Sequential(LinearTorch((64, 32)), LIFTorch(32), LinearTorch((32, 10)), LIFTorch(10))

    def run(x):
        with torch.no_grad():
            out = net(x.transpose(0, 1))
        return (out[0] if isinstance(out, tuple) else out).transpose(0, 1)

    return to_nir(net), run, 1e-3


def produce_spyx(batch: int):
    import jax.numpy as jnp
    import numpy as np
    import spyx.nir
    import spyx.nn as snn
    from flax import nnx

    rngs = nnx.Rngs(0)
    net = snn.Sequential(nnx.Linear(64, 32, rngs=rngs), snn.LIF((32,), beta=0.5, rngs=rngs),
                         nnx.Linear(32, 10, rngs=rngs), snn.LIF((10,), beta=0.5, rngs=rngs))
    g = torch.Generator().manual_seed(0)
    for lin in (net.layers[0], net.layers[2]):
        n, m = lin.kernel.shape  # [in, out]
        lin.kernel[...] = jnp.asarray((torch.randn(n, m, generator=g) * 0.6 / n ** 0.5 + 3.0 / n).numpy())
        lin.bias[...] = jnp.zeros(m)
    graph = spyx.nir.to_nir(net, {"input": np.array([64])}, {"output": np.array([10])}, dt=1e-4)

    def run(x):
        out, _ = snn.run(net, jnp.asarray(x.numpy()))
        return torch.as_tensor(np.asarray(out), dtype=torch.float32)

    return graph, run, 1e-4


PRODUCERS = {"snntorch": produce_snntorch, "norse": produce_norse, "sinabs": produce_sinabs,
             "spikingjelly": produce_spikingjelly, "rockpool": produce_rockpool, "spyx": produce_spyx}

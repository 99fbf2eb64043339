"""SpikingJelly (``spikingjelly.activation_based.nir_exchange``), single-step mode with explicit state."""

from __future__ import annotations

from deepspike.deploy.peers.stepping import stateful_loop

NAME, MODULE, DIST = "spikingjelly", "spikingjelly", "spikingjelly"


def load(graph, dt: float, steps: int, batch: int):
    """SpikingJelly's importer with ``dt`` (it asks for it); ``module(x_t, state) -> (z_t, state)``."""
    from spikingjelly.activation_based.nir_exchange import import_from_nir

    net = import_from_nir(graph, dt=dt)
    return lambda x: stateful_loop(net, x)

"""NIR ``IF`` / ``LIF`` / ``CubaLIF`` nodes whose constants differ from neuron to neuron, read as a
``neurons.heterogeneous.HeterogeneousLIF`` (forward Euler over ``dt``, as ``deploy.neurons.node_params`` reads a node
with one value per layer)::

    IF:       k = 1,              input scale r dt
    LIF:      k = 1 - dt / tau,   input scale r dt / tau
    CubaLIF:  k = 1 - dt / tau_mem, alpha = 1 - dt / tau_syn,   input scale (w_in dt / tau_syn) (r dt / tau_mem)

each an array of the node's neurons (tau > dt, tau_mem > dt and tau_syn >= dt for every neuron); ``v_leak`` and
``v_reset`` must be 0, reset and firing rule come from the metadata (``deploy.neurons.firing_rules``; a node firing at
``v > threshold`` gets the next float32 above each threshold). Such nodes come from tools that train each neuron's
time constant (Rockpool) and from deepspike's per-channel PLIF / learnt thresholds (``deploy.neurons.learnable_node``);
a node with one threshold at or below 0, which a learnt threshold may reach, is read here too
(:func:`needs_per_neuron`).
"""

from __future__ import annotations

import numpy as np
import torch

from deepspike.core.errors import ConfigError
from deepspike.deploy.deps import require_nir
from deepspike.deploy.neurons import firing_rules, same_for_every_neuron, state_quant_of
from deepspike.neurons.heterogeneous import HeterogeneousLIF
from deepspike.neurons.params import NeuronParams

CONSTANTS = ("tau", "tau_mem", "tau_syn", "r", "w_in", "v_threshold")  # the fields that may differ per neuron


def needs_per_neuron(node) -> bool:
    """Whether a spiking node must be read as a ``HeterogeneousLIF``: some constant differs between its neurons
    (``same_for_every_neuron``, the rule ``node_params`` reads one value per layer by), or some threshold is at or
    below 0, which the one-value ``NeuronParams`` refuses (a learnt threshold may end there: ``LearnableLIF`` does
    not keep it above 0, and deepspike writes it as it is)."""
    values = [getattr(node, name) for name in CONSTANTS if getattr(node, name, None) is not None]
    if any(np.size(v) > 1 and not same_for_every_neuron(v, equal_nan=True) for v in values):
        return True
    threshold = np.asarray(getattr(node, "v_threshold", 1.0), dtype=np.float64)
    return bool((threshold <= 0).any())


def _field(node, name: str) -> np.ndarray:
    """A node constant as float64, a one-line ``ConfigError`` when some entry is not finite."""
    values = np.asarray(getattr(node, name), dtype=np.float64)
    if not np.isfinite(values).all():
        raise ConfigError(f"NIR import: {name} holds a value that is not finite")
    return values


def _decay(node, name: str, dt: float, strict: bool) -> np.ndarray:
    """``1 - dt / tau`` of time constant ``name``, which must exceed ``dt`` (``strict``) or reach it everywhere."""
    tau = _field(node, name)
    if not ((tau > dt).all() if strict else (tau >= dt).all()):
        bound = ">" if strict else ">="
        raise ConfigError(f"NIR import: {name} must be {bound} dt = {dt} for every neuron (decay 1 - dt/{name} in "
                          f"[0, 1)), got values down to {tau.min():g}")
    return 1.0 - dt / tau


def per_neuron_layer(node, dt: float) -> tuple[HeterogeneousLIF, np.ndarray]:
    """``(neuron, input_scale)`` of a spiking node with per-neuron constants (module docstring); the neuron sees
    ``input_scale * x_t`` (float32, the neurons' shape) and has the default surrogate, as ``node_params``'s."""
    nir = require_nir()
    reset, strict = firing_rules(node)
    if state_quant_of(node) is not None:
        raise ConfigError("NIR import: a quantised membrane (metadata state_bits) needs the same constants for every "
                          "neuron of a layer")
    if not np.allclose(np.asarray(node.v_reset), 0.0) or (
            not isinstance(node, nir.IF) and not np.allclose(np.asarray(node.v_leak), 0.0)):
        raise ConfigError("NIR import: only v_leak = 0 and v_reset = 0 are supported")
    th = _field(node, "v_threshold").astype(np.float32)
    th = np.nextafter(th, np.float32(np.inf)) if strict else th
    syn = None
    if isinstance(node, nir.IF):
        decay, scale = np.ones_like(th, dtype=np.float64), _field(node, "r") * dt
    elif isinstance(node, nir.LIF):
        decay = _decay(node, "tau", dt, strict=True)
        scale = _field(node, "r") * (1.0 - decay)
    else:
        decay, syn = _decay(node, "tau_mem", dt, strict=True), _decay(node, "tau_syn", dt, strict=False)
        scale = _field(node, "w_in") * (1.0 - syn) * _field(node, "r") * (1.0 - decay)
    arrays = np.broadcast_arrays(decay, th, scale, *(() if syn is None else (syn,)))
    as_tensor = [torch.as_tensor(np.array(a, dtype=np.float32)) for a in arrays]
    neuron = HeterogeneousLIF(NeuronParams(reset=reset), as_tensor[0], as_tensor[1],
                              as_tensor[3] if syn is not None else None)
    return neuron, np.asarray(arrays[2], dtype=np.float32)

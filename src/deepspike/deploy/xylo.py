"""Does a dense LIF net fit SynSense's Xylo (Audio 2, SYNS61201), and what does its quantisation cost?

Xylo runs current-based LIF neurons with integer state: ``i_syn <- i_syn (1 - 2^-dash_syn) + W s``,
``v <- v (1 - 2^-dash_mem) + i_syn + bias``, spike and SUBTRACT the threshold when ``v >= threshold``; int8
weights, int16 thresholds, at most 16 input channels, 1000 hidden and 8 output neurons. Rockpool's own mapper
(``rockpool.devices.xylo.syns61201.mapper``, the design-rule check and neuron allocation) maps the net, built
as Rockpool modules (``LinearTorch`` + ``LIFTorch`` with ``tau_mem = dt / (1 - decay)`` and
``tau_syn = 1.01 dt``, which Xylo rounds to dash_syn = 0: the current lasts one step, as in deepspike's
neurons); Rockpool's ``channel_quantize`` gives the int8/int16 parameters.

The quantisation's cost: the run's net re-simulated by deepspike with what the chip would hold, per hidden
or output neuron j with quantisation scale ``s_j = threshold_q[j] / threshold[j]``: weights ``W_q / s_j``,
bias ``b_q / s_j``, decay ``1 - 2^-dash_mem`` (dash 0, decay 0: 1e-6) and reset by subtraction; accuracy on
the run's test data before and after, and with the integer weights alone (deepspike's decay and reset kept).

Rockpool's ``rockpool.devices.xylo`` package imports samna (not on PyPI) for Xylo Audio 3 without a guard;
when samna is missing, the mapper module is loaded without its packages' ``__init__``.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.deploy.nir_export import _Integrator, chain_modules
from deepspike.layers.dropout import TimeFixedDropout
from deepspike.neurons.modules import SpikingNeuron

MAX_INPUTS, MAX_HIDDEN, MAX_OUTPUTS = 16, 1000, 8
MIN_DECAY = 1e-6  # stands for Xylo's dash_mem = 0 (decay 0), which deepspike's neurons (decay in (0, 1]) refuse
DT = 1e-3  # seconds; Xylo's time constants are multiples of its step, only tau / dt matters


def rockpool_xylo_mapper() -> types.ModuleType:
    """Rockpool's SYNS61201 mapper module; ``ConfigError`` when rockpool is not installed."""
    if importlib.util.find_spec("rockpool") is None:
        raise ConfigError("--target xylo needs rockpool (pip install rockpool; `make test-nir` installs it)")
    if importlib.util.find_spec("samna") is None:
        root = Path(importlib.util.find_spec("rockpool.devices").origin).parent
        for name in ("rockpool.devices.xylo", "rockpool.devices.xylo.syns61201"):
            if name not in sys.modules:
                package = types.ModuleType(name)  # the package without its __init__ (which imports samna)
                package.__path__ = [str(root / Path(*name.split(".")[2:]))]
                sys.modules[name] = package
    return importlib.import_module("rockpool.devices.xylo.syns61201.xylo_mapper")


def dense_layers(model: nn.Module) -> list[tuple[nn.Linear, SpikingNeuron]]:
    """The net as ``[(linear, neurons)]``; ``ConfigError`` (one line) for anything Xylo cannot run."""
    mods, _ = chain_modules(model)
    pairs, linear = [], None
    for i, m in enumerate(mods):
        if isinstance(m, nn.Dropout | TimeFixedDropout | nn.Identity) or (isinstance(m, nn.Flatten) and i == 0):
            continue
        if isinstance(m, nn.Linear) and linear is None:
            linear = m
        elif isinstance(m, SpikingNeuron) and linear is not None:
            pairs.append((linear, m))
            linear = None
        elif isinstance(m, _Integrator):
            raise ConfigError("xylo: a membrane readout cannot map: Xylo's outputs are spiking neurons")
        else:
            raise ConfigError(f"xylo: layer {i} ({type(m).__name__}) cannot map: Xylo runs dense nets "
                              "(linear -> LIF)* only; no conv, pooling or skip connections")
    return pairs


def _rockpool_net(pairs, dt: float):
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch

    mods = []
    for lin, neuron in pairs:
        p = neuron.params
        tau = dt / (1.0 - p.decay) if p.decay < 1.0 else dt * 2.0 ** 16
        n_in, n_out = lin.in_features, lin.out_features
        mods.append(LinearTorch((n_in, n_out), weight=lin.weight.detach().double().t(), has_bias=False))
        bias = lin.bias.detach().double() if lin.bias is not None else torch.zeros(n_out, dtype=torch.float64)
        mods.append(LIFTorch(n_out, tau_mem=tau, tau_syn=1.01 * dt, threshold=float(p.threshold), bias=bias, dt=dt))
    return Sequential(*mods)


def _resources(pairs) -> tuple[dict, list[str]]:
    n_in = pairs[0][0].in_features
    hidden = sum(lin.out_features for lin, _ in pairs[:-1])
    n_out = pairs[-1][0].out_features
    over = [f"{n} {what} > {limit}" for n, what, limit in ((n_in, "input channels", MAX_INPUTS),
                                                          (hidden, "hidden neurons", MAX_HIDDEN),
                                                          (n_out, "output neurons", MAX_OUTPUTS)) if n > limit]
    return {"inputs": n_in, "hidden": hidden, "outputs": n_out}, over


def xylo_spec(model: nn.Module, dt: float = DT) -> dict:
    """Map with Rockpool's mapper (limits lifted to the net's size when it is too big, to still quantise it)
    and quantise: ``{"resources", "over" (what exceeds Xylo), "float", "quantised"}``."""
    from rockpool.transform.quantize_methods import channel_quantize

    pairs = dense_layers(model)
    resources, over = _resources(pairs)
    xm = rockpool_xylo_mapper()
    try:
        spec = xm.mapper(_rockpool_net(pairs, dt).as_graph(), weight_dtype="float", threshold_dtype="float",
                         dash_dtype="float", max_hidden_neurons=max(MAX_HIDDEN, resources["hidden"]),
                         max_output_neurons=max(MAX_OUTPUTS, resources["outputs"]))
    except Exception as e:  # noqa: BLE001 - Rockpool's design-rule errors are the report
        raise ConfigError(f"xylo: Rockpool's mapper refused the net: {str(e).splitlines()[0]}") from e
    spec.pop("mapped_graph", None)
    return {"resources": resources, "over": over, "float": spec, "quantised": channel_quantize(**spec),
            "pairs": pairs}


def _int_matrix(a) -> np.ndarray:
    """A quantised weight matrix without Rockpool's trailing synapse axis (``[N, M, 1] -> [N, M]``)."""
    a = np.asarray(a)
    return a[..., 0] if a.ndim == 3 else a


def _block(q: dict, sizes: list[int], k: int) -> tuple[np.ndarray, str]:
    """Layer ``k``'s int weights ``[in, out]`` in the mapped matrices (hidden neurons are numbered layer by
    layer) and the suffix of its neuron parameters (``""`` hidden, ``"_out"`` output)."""
    start = sum(sizes[:k])
    if k == 0:
        return _int_matrix(q["weights_in"])[:, :sizes[0]], ""
    rows = slice(start - sizes[k - 1], start)
    if k == len(sizes) - 1:
        return _int_matrix(q["weights_out"])[rows], "_out"
    return _int_matrix(q["weights_rec"])[rows, start:start + sizes[k]], ""


def quantised_model(model: nn.Module, mapped: dict, dynamics: bool = True) -> nn.Module:
    """A copy of ``model`` whose dense layers and neurons hold what Xylo would (module docstring);
    ``dynamics=False`` quantises weights, biases and thresholds only (our decay and reset kept)."""
    fl, q = mapped["float"], mapped["quantised"]
    out = copy.deepcopy(model)
    pairs = dense_layers(out)
    if len(pairs) < 2:
        raise ConfigError("xylo: the net needs at least one hidden layer (input -> hidden -> output)")
    sizes = [lin.out_features for lin, _ in pairs]
    for k, (lin, neuron) in enumerate(pairs):
        w, sfx = _block(q, sizes, k)
        own = slice(None) if sfx else slice(sum(sizes[:k]), sum(sizes[:k + 1]))
        s = np.asarray(q["threshold" + sfx], float)[own] / np.asarray(fl["threshold" + sfx], float)[own]
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(w.T / s[:, None], dtype=lin.weight.dtype))
            if lin.bias is not None:
                bias = np.asarray(q["bias" + sfx], float)[own] / s
                lin.bias.copy_(torch.as_tensor(bias, dtype=lin.bias.dtype))
        dash = float(np.asarray(q["dash_mem" + sfx], float)[own][0])
        decay = max(1.0 - 2.0 ** -dash, MIN_DECAY)  # dash 0: the membrane forgets each step (decay 0)
        if dynamics:
            neuron.params = dataclasses.replace(neuron.params, decay=decay, reset="subtract")
    return out

def xylo_report(model: nn.Module, accuracy=None) -> dict:
    """Fit report: resources against Xylo's limits, the quantised parameters' ranges, and (``accuracy``:
    a function model -> test accuracy) the accuracy before and after quantisation."""
    mapped = xylo_spec(model)
    q = mapped["quantised"]
    weights = ("weights_in", "weights_rec", "weights_out")
    report = {"target": "xylo (SYNS61201)", "fits": not mapped["over"], "resources": mapped["resources"],
              "limits": {"inputs": MAX_INPUTS, "hidden": MAX_HIDDEN, "outputs": MAX_OUTPUTS},
              "weights_int8_range": [int(min(np.min(q[k]) for k in weights)), int(max(np.max(q[k]) for k in weights))],
              "dash_mem": sorted({int(d) for k in ("dash_mem", "dash_mem_out") for d in np.ravel(q[k])})}
    if mapped["over"]:
        report["reason"] = "; ".join(mapped["over"])
    if accuracy is not None:
        before, after = accuracy(model), accuracy(quantised_model(model, mapped))
        weights_only = accuracy(quantised_model(model, mapped, dynamics=False))
        report.update(accuracy_float=before, accuracy_quantised=after, accuracy_cost=before - after,
                      accuracy_int_weights_only=weights_only)
    return report

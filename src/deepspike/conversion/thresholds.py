"""Threshold balancing: IF thresholds from the ANN's activation peaks (max / percentile / channel) or the SNN
(SPIKE-NORM).

Thresholds are set with the weights unscaled ("threshold balancing", sengupta2019 section 5). With
``lambda_l`` the largest ANN activation of neuron layer ``l`` and ``s`` the scale of the layer that feeds it,
the SNN rate of layer ``l`` is ``r_l = a_l / lambda_l`` when its threshold is ``lambda_l / s`` (Diehl 2015's
data-based weight normalisation ``w_l <- w_l lambda_{l-1} / lambda_l`` with unit threshold, written as a
threshold). ``s`` starts at the input scale ``c`` (input rate ``|x| / c``).

SPIKE-NORM (sengupta2019 Algorithm 1): layer by layer, run the SNN with the thresholds found so far on
Poisson input and set ``th_l = max over samples, neurons and steps t of sum_i w_i X_i(t)``, the weighted
spike input of layer ``l`` (not its membrane), then move on to ``l + 1``. The same input spike trains
(a fixed seed) drive every pass, as in Algorithm 1 where layer ``l``'s recorded output feeds ``l + 1``.

Residual rule ``unity`` (section 6.2-6.3): every neuron of the residual stage (roles ``stem``,
``residual``, ``junction``) keeps threshold 1, so all fan-in layers of a junction share one threshold;
the plain pre-processing layers before it and the output layer are balanced. ``balanced`` balances every
layer in build order (for max-norm, ``s`` is then the previous layer's scale in that order, which ignores
the identity path's own scale: the unconstrained baseline the paper improves on).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from deepspike.conversion.roles import RESIDUAL_ROLES
from deepspike.core.errors import ConfigError
from deepspike.layers.activity_recorder import ActivityRecorder
from deepspike.methods.converted_network import ConvertedNetwork, StopForward
from deepspike.neurons.chunked_if import ChunkedIF, chunked_neurons


def model_based_thresholds(
    peaks: list, roles: list[str], input_scale: float, residual: str = "unity", spike_value: str = "one"
) -> list:
    """Thresholds from ANN peaks ``lambda_l`` (build order, output last; ``conversion.activation_peaks``).

    ``spike_value="threshold"`` (a spike carries its threshold, so everything is in the ANN's units):
    ``th_l = lambda_l``, per layer or per channel; a channel (or layer) that never exceeds 0 gets its layer's
    largest threshold (1 for a silent layer). ``"one"`` (0/1 spikes, sengupta2019): ``th_l = lambda_l / s``
    with ``s`` the scale of the feeding layer: ``input_scale`` at first, then ``lambda`` of the last balanced
    layer; residual-stage roles under ``residual="unity"`` get ``th = 1`` and keep ``s``; a silent layer gets
    ``th = 1`` (it never fires either way).
    """
    if len(peaks) != len(roles):
        raise ConfigError(f"{len(peaks)} activation peaks for {len(roles)} neuron layers")
    if spike_value == "threshold":
        return [_positive(peak) for peak in peaks]
    if any(isinstance(peak, list) for peak in peaks):
        raise ConfigError("per-channel thresholds need spikes that carry their threshold (spike_value threshold)")
    scale, thresholds = float(input_scale), []
    for peak, role in zip(peaks, roles, strict=True):
        if (residual == "unity" and role in RESIDUAL_ROLES) or peak <= 0:
            thresholds.append(1.0)
            continue
        thresholds.append(peak / scale)
        scale = peak
    return thresholds


def _positive(peak: float | list[float]) -> float | list[float]:
    """``peak`` with zeros replaced: a channel by its layer's largest peak, a layer (or all-zero one) by 1."""
    if not isinstance(peak, list):
        return peak if peak > 0 else 1.0
    top = max(peak) if max(peak) > 0 else 1.0
    return [p if p > 0 else top for p in peak]


def neuron_names(net: nn.Module) -> list[str]:
    """Names of the ``ChunkedIF`` layers of ``net`` in build order (the output layer last)."""
    return [name for name, m in net.named_modules() if isinstance(m, ChunkedIF)]


@contextmanager
def _stop_forward_at(module: nn.Module) -> Iterator[None]:
    """In the block, calling ``module`` raises ``StopForward`` (hooks registered before it still run)."""

    def stop(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        raise StopForward

    handle = module.register_forward_pre_hook(stop)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def _output_reached(net: ConvertedNetwork) -> Iterator[None]:
    """In the block, ``net`` runs its output IF layer (``readout="spike"``), where SPIKE-NORM stops the forward pass
    to read the output layer's input: a membrane readout runs its integrator instead, which left the output
    threshold at 1."""
    readout, net.readout = net.readout, "spike"
    try:
        yield
    finally:
        net.readout = readout


def peak_input(net: ConvertedNetwork, layer: int, x: torch.Tensor, timesteps: int, seed: int) -> float:
    """``max_{t, b, n} x_t[b, n]``: the largest weighted spike input to neuron layer ``layer``.

    The network runs with its current thresholds on input spikes from a generator seeded with ``seed``;
    the activity recorder keeps the layer's largest input and each chunk's forward pass stops there. The
    output layer's input is read at its IF neurons whatever the readout (a membrane readout runs an integrator in
    their place: ``_output_reached``).
    """
    name = neuron_names(net)[layer]
    recorder = ActivityRecorder(net, outputs=False, inputs="peak", operations=False, only=(name,))
    with torch.no_grad(), recorder, _output_reached(net), _stop_forward_at(net.get_submodule(name)):
        generator = torch.Generator(device=x.device).manual_seed(seed)
        for _ in net.stream(x, timesteps, generator):
            pass
    return recorder.layers[name].input_peak


def spike_norm(
    net: ConvertedNetwork,
    x: torch.Tensor,
    roles: list[str],
    timesteps: int = 2500,
    residual: str = "unity",
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> list[float]:
    """SPIKE-NORM (Algorithm 1) on calibration images ``x [B, C, H, W]``; sets and returns the thresholds.

    For ``l = 1..L`` (output last): ``th_l = max_t max(W_l * input_l(t))`` with layers ``< l`` already
    balanced (``peak_input``); residual-stage layers under ``residual="unity"`` get 1.0. A layer that
    never receives positive input keeps 1.0. ``progress(l, th_l)`` is called after each layer. The net runs in eval
    mode and gets its train/eval mode back afterwards, also when an error stops the calibration.
    """
    neurons = chunked_neurons(net)
    if len(neurons) != len(roles):
        raise ConfigError(f"{len(roles)} roles for {len(neurons)} neuron layers")
    was_training = net.training
    net.eval()
    thresholds = []
    try:
        for i, (neuron, role) in enumerate(zip(neurons, roles, strict=True)):
            if residual == "unity" and role in RESIDUAL_ROLES:
                th = 1.0
            else:
                peak = peak_input(net, i, x, timesteps, seed)
                th = peak if peak > 0 else 1.0
            neuron.with_threshold(th)
            thresholds.append(th)
            if progress is not None:
                progress(i, th)
    finally:  # an error (or Ctrl-C) on the way leaves the net in the mode it came in
        net.train(was_training)
    return thresholds

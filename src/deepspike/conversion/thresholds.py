"""Threshold balancing: per-layer IF thresholds from the ANN (max / percentile) or the SNN (SPIKE-NORM).

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

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from deepspike.conversion.roles import RESIDUAL_ROLES
from deepspike.core.errors import ConfigError
from deepspike.methods.converted_network import ConvertedNetwork, StopForward
from deepspike.neurons.chunked_if import chunked_neurons


class ActivationPeaks:
    """Largest (or ``percentile``-th) positive ANN activation per ReLU layer and of the output layer.

    ``update(ann, x)`` runs the ANN ``[B, C, H, W] -> [B, K]`` and records every ``nn.ReLU`` output (build
    order) and the final output; ``peaks()`` returns ``lambda_l`` for each, output last. The percentile
    (Rueckauer 2017's robust normalisation) is taken over the positive values with numpy's linear rule;
    all of them are kept, so use it on a calibration subset (a few thousand images).
    """

    def __init__(self, percentile: float | None = None) -> None:
        self.percentile = percentile
        self.values: list[list[torch.Tensor]] = []

    def update(self, ann: nn.Module, x: torch.Tensor) -> None:
        outputs: list[torch.Tensor] = []
        handles = [
            m.register_forward_hook(lambda m, i, o: outputs.append(o.detach()))
            for m in ann.modules()
            if isinstance(m, nn.ReLU)
        ]
        try:
            with torch.no_grad():
                outputs.append(ann(x).detach())
        finally:
            for h in handles:
                h.remove()
        if not self.values:
            self.values = [[] for _ in outputs]
        for store, out in zip(self.values, outputs, strict=True):
            positive = out.flatten().float().cpu()
            positive = positive[positive > 0]
            store.append(
                positive
                if self.percentile is not None
                else positive.max(dim=0, keepdim=True)[0]
                if positive.numel()
                else positive
            )

    def peaks(self) -> list[float]:
        result = []
        for store in self.values:
            values = torch.cat(store) if store else torch.zeros(0)
            if values.numel() == 0:
                result.append(0.0)
            elif self.percentile is None:
                result.append(float(values.max()))
            else:
                result.append(float(np.percentile(values.numpy(), self.percentile)))
        return result


def model_based_thresholds(
    peaks: list[float], roles: list[str], input_scale: float, residual: str = "unity"
) -> list[float]:
    """Thresholds ``th_l = lambda_l / s`` from ANN peaks ``lambda_l`` (build order, output last).

    ``s`` = the scale of the feeding layer: ``input_scale`` at first, then ``lambda`` of the last balanced
    layer. Residual-stage roles under ``residual="unity"`` get ``th = 1`` and keep ``s``. A layer whose ANN
    activation never exceeds 0 gets ``th = 1`` (it never fires either way).
    """
    if len(peaks) != len(roles):
        raise ConfigError(f"{len(peaks)} activation peaks for {len(roles)} neuron layers")
    scale, thresholds = float(input_scale), []
    for peak, role in zip(peaks, roles, strict=True):
        if (residual == "unity" and role in RESIDUAL_ROLES) or peak <= 0:
            thresholds.append(1.0)
            continue
        thresholds.append(peak / scale)
        scale = peak
    return thresholds


def peak_input(net: ConvertedNetwork, layer: int, x: torch.Tensor, timesteps: int, seed: int) -> float:
    """``max_{t, b, n} x_t[b, n]``: the largest weighted spike input to neuron layer ``layer``.

    The network runs with its current thresholds on input spikes from a generator seeded with ``seed``;
    each chunk's forward pass stops at that layer.
    """
    neuron = chunked_neurons(net)[layer]
    peak = -math.inf

    def record(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        nonlocal peak
        peak = max(peak, float(inputs[0].max()))
        raise StopForward

    handle = neuron.register_forward_pre_hook(record)
    try:
        with torch.no_grad():
            generator = torch.Generator(device=x.device).manual_seed(seed)
            for _ in net.stream(x, timesteps, generator):
                pass
    finally:
        handle.remove()
    return peak


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
    never receives positive input keeps 1.0. ``progress(l, th_l)`` is called after each layer.
    """
    neurons = chunked_neurons(net)
    if len(neurons) != len(roles):
        raise ConfigError(f"{len(roles)} roles for {len(neurons)} neuron layers")
    was_training = net.training
    net.eval()
    thresholds = []
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
    net.train(was_training)
    return thresholds

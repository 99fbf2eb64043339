"""The windowed ReL-PSP TTFS network (``ttfs.window``): an ANN's architecture with every ReLU a layer of
single-spike neurons, each in its own time window.

``WindowNetwork(x) = readout(body(input(x)))`` maps images ``[B, C, H, W]`` to the output neurons' potentials
at their window start ``[B, K]``, which equal the ANN's logits while no window clips. The body is the ANN's
(same modules and parameter names) with ``WindowNeurons`` for every activation; in eval mode a batch-norm is
an affine map that folds into the synapses before it (``methods.weight_transfer`` folds it for export):

* max pooling on the coded values is a relay of the earliest spike in each region (exact);
* average pooling and flatten are linear, so they become part of the next layer's synapses;
* a residual junction's neurons take the shortcut's spikes through a synaptic delay equal to the body's
  windows (``ttfs.window_sim`` simulates it), so they too see ``a = W x + b``.

Timing: the input window ``[0, T_0]``, then one window per neuron layer in forward order; the output
neurons' window starts at ``t_min(out) = T_0 + sum_n T_n`` (``output_window_start``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from deepspike.methods.ann import batch_norm
from deepspike.methods.build import BuildRules, build_body
from deepspike.models.spec import Architecture
from deepspike.ttfs.window_layers import WindowedLayer, WindowInput, WindowNeurons, WindowReadout


class WindowNetwork(nn.Module):
    """``encoder`` (``WindowInput``) -> ``body`` (convs, pools, ``WindowNeurons``) -> ``readout``."""

    def __init__(self, encoder: WindowInput, body: nn.Module, readout: WindowReadout) -> None:
        super().__init__()
        self.encoder = encoder
        self.body = body
        self.readout = readout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            self._place_windows()
        return self.readout(self.body(self.encoder(x)))

    def _place_windows(self) -> None:
        """Give every windowed module its absolute window start (``start``) from the windows before it."""
        start = 0.0
        for m in (self.encoder, *self.neuron_layers(), self.readout):
            m.start = start
            start += float(m.window)

    def neuron_layers(self) -> list[WindowNeurons]:
        """The hidden neuron layers in forward order."""
        return [m for m in self.body.modules() if isinstance(m, WindowNeurons)]

    def windows(self) -> list[float]:
        """``[T_0, T_1, ..., T_N, T_out]``: the input, hidden and output windows."""
        return [float(m.window) for m in (self.encoder, *self.neuron_layers(), self.readout)]

    def output_window_start(self) -> float:
        """``t_min(out) = T_0 + sum_n T_n``: when every hidden layer has fired and the scores are read."""
        return sum(self.windows()[:-1])


def build_window_network(arch: Architecture, alpha: float = 1.0) -> WindowNetwork:
    """The windowed TTFS network of ``arch``, windows uncalibrated. Its batch-norms train as usual; in eval mode
    each is an affine map per channel, i.e. part of the synapses and bias of the layer before it."""
    rules = BuildRules(activation=lambda shape: WindowNeurons(alpha=alpha), norm=batch_norm)
    body = build_body(arch, rules)
    return WindowNetwork(WindowInput(), body, WindowReadout(alpha=alpha))


def windowed_modules(model: nn.Module) -> list[WindowedLayer]:
    """Every module of ``model`` that owns a window (input, neuron layers, readout)."""
    return [m for m in model.modules() if isinstance(m, WindowedLayer)]


@torch.no_grad()
def calibrate_windows(model: nn.Module, images: Iterable[torch.Tensor], margin: float = 1.0) -> list[float]:
    """Set every window to ``margin`` x the largest value its layer reaches on ``images`` (batches
    ``[B, C, H, W]``) with nothing clipped, i.e. on the ANN's activations; returns the windows."""
    modules = windowed_modules(model)
    was_training = model.training
    model.eval()
    for m in modules:
        m.calibrating, m.observed_max = True, 0.0
    try:
        for x in images:
            model(x)
    finally:
        for m in modules:
            m.calibrate(margin)
        model.train(was_training)
    return [float(m.window) for m in modules]


@contextmanager
def recording(model: nn.Module) -> Iterator[list[WindowedLayer]]:
    """In the block every windowed module keeps its last spike offsets (``last_offsets``)."""
    modules = windowed_modules(model)
    for m in modules:
        m.record = True
    try:
        yield modules
    finally:
        for m in modules:
            m.record, m.last_offsets = False, None

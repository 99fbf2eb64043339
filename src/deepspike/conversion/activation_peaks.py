"""The largest ANN activations per neuron layer (or per channel) on calibration images: max-norm's lambda.

Data-based normalisation (Diehl et al. 2015, "max"), its robust percentile (Rueckauer et al. 2017,
"percentile") and channel-wise normalisation (per output channel; SpikingJelly's "channel-wise" converter and
Kim et al. 2020's channel-wise normalisation) all read ``lambda``: the largest positive output of each ANN
neuron layer (``nn.ReLU`` or ``QCFS``, build order) and of the output layer (its scores), over the images.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from deepspike.layers.neuron_kinds import neuron_coding
from deepspike.layers.qcfs import QCFS


class ActivationPeaks:
    """``update(ann, x)`` runs the ANN ``[B, ...] -> [B, K]`` and keeps, for every analog neuron layer (build
    order) and the output, the peak of its outputs: per layer, or per channel (axis 1) with ``per_channel``,
    or the ``percentile``-th percentile of the positive outputs per layer (numpy's linear rule; all values
    are kept, so calibrate on a few thousand images at most). ``peaks()``: one number (or ``[C]`` list) per
    layer, output last, never below 0."""

    def __init__(self, percentile: float | None = None, per_channel: bool = False) -> None:
        self.percentile, self.per_channel = percentile, per_channel
        self._records: list[list[torch.Tensor]] = []

    def update(self, ann: nn.Module, x: torch.Tensor) -> None:
        neurons = [m for m in ann.modules() if neuron_coding(m) == "analog"]
        if not self._records:
            self._records = [[] for _ in range(len(neurons) + 1)]
        handles = [m.register_forward_hook(self._hook(i)) for i, m in enumerate(neurons)]
        try:
            with torch.no_grad():
                self._add(len(neurons), ann(x))
        finally:
            for h in handles:
                h.remove()

    def _hook(self, index: int):
        def hook(module: nn.Module, args, output: torch.Tensor) -> None:
            self._add(index, output)

        return hook

    def _add(self, index: int, y: torch.Tensor) -> None:
        y = y.detach().float()
        if self.percentile is not None:
            self._records[index].append(y[y > 0].cpu())
        elif self.per_channel:
            self._records[index].append(y.transpose(0, 1).reshape(y.shape[1], -1).amax(dim=1).clamp(min=0).cpu())
        else:
            self._records[index].append(y.max().clamp(min=0).reshape(1).cpu())

    def peaks(self) -> list[float | list[float]]:
        return [self._peak(values) for values in self._records]

    def _peak(self, values: list[torch.Tensor]) -> float | list[float]:
        if self.percentile is not None:
            flat = torch.cat(values) if values else torch.zeros(0)
            return float(np.percentile(flat.numpy(), self.percentile)) if flat.numel() else 0.0
        peak = torch.stack(values).amax(dim=0)
        return [float(v) for v in peak] if self.per_channel else float(peak[0])


def qcfs_thresholds(ann: nn.Module) -> list[float]:
    """The trained clipping thresholds ``lambda`` of every QCFS activation of ``ann``, build order."""
    return [float(m.threshold.detach()) for m in ann.modules() if isinstance(m, QCFS)]

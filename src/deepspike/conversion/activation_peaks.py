"""The largest ANN activations per neuron layer (or per channel) on calibration images: max-norm's lambda.

Data-based normalisation (Diehl et al. 2015, "max"), its robust percentile (Rueckauer et al. 2017,
"percentile") and channel-wise normalisation (per output channel; SpikingJelly's "channel-wise" converter and
Kim et al. 2020's channel-wise normalisation) all read ``lambda``: the largest positive output of each ANN
neuron layer (``nn.ReLU`` or ``QCFS``, build order) and of the output layer (its scores), over the images.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from deepspike.layers.neuron_kinds import neuron_coding
from deepspike.layers.qcfs import QCFS


class ActivationPeaks:
    """``update(ann, x)`` runs the ANN ``[B, ...] -> [B, K]`` and keeps, for every analog neuron layer (build
    order) and the output, the peak of its outputs: per layer, or per channel (axis 1) with ``per_channel``,
    or the ``percentile``-th percentile of the positive outputs per layer (numpy's linear rule,
    :func:`linear_percentile`). ``peaks()``: one number (or ``[C]`` list) per layer, output last, never below 0.

    The percentile reads two order statistics near the top, so with ``samples`` (the calibration images in all,
    which bounds a layer's positive outputs by ``N_max = samples x`` its outputs per image) only the largest
    ``m(N_max) = N_max - floor(q (N_max - 1))`` positive values of a layer are kept, ``q = percentile / 100``, with
    the count of all of them: ``m(N)`` does not fall as ``N`` grows, so the kept values always hold the two the rule
    reads (99.99 of 600 images of a 16 x 32 x 32 layer: 984 values kept instead of 9.8 million). Without
    ``samples`` every positive value is kept."""

    def __init__(self, percentile: float | None = None, per_channel: bool = False, samples: int | None = None) -> None:
        self.percentile, self.per_channel, self.samples = percentile, per_channel, samples
        self._records: list[list[torch.Tensor]] = []
        self._positives: list[int] = []

    def update(self, ann: nn.Module, x: torch.Tensor) -> None:
        neurons = [m for m in ann.modules() if neuron_coding(m) == "analog"]
        if not self._records:
            self._records = [[] for _ in range(len(neurons) + 1)]
            self._positives = [0] * (len(neurons) + 1)
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
            positive = y[y > 0].cpu()
            self._positives[index] += positive.numel()
            kept = torch.cat([*self._records[index], positive])
            cap = self._kept_values(y[0].numel() if y.dim() else 1)
            if cap is not None and kept.numel() > cap:
                kept = torch.topk(kept, cap, sorted=False).values
            self._records[index] = [kept]
        elif self.per_channel:
            self._records[index].append(y.transpose(0, 1).reshape(y.shape[1], -1).amax(dim=1).clamp(min=0).cpu())
        else:
            self._records[index].append(y.max().clamp(min=0).reshape(1).cpu())

    def _kept_values(self, per_image: int) -> int | None:
        """``m(N_max)`` (class docstring) for a layer of ``per_image`` outputs per image, None without ``samples``."""
        if self.samples is None:
            return None
        most = self.samples * per_image
        return most - math.floor(self.percentile / 100 * (most - 1))

    def peaks(self) -> list[float | list[float]]:
        return [self._peak(values, count) for values, count in zip(self._records, self._positives)]

    def _peak(self, values: list[torch.Tensor], positives: int) -> float | list[float]:
        if self.percentile is not None:
            flat = torch.cat(values) if values else torch.zeros(0)
            return linear_percentile(flat.numpy(), positives, self.percentile) if positives else 0.0
        peak = torch.stack(values).amax(dim=0)
        return [float(v) for v in peak] if self.per_channel else float(peak[0])


def linear_percentile(top: np.ndarray, count: int, percentile: float) -> float:
    """The ``percentile``-th percentile of ``count`` values of which ``top`` holds the largest (all of them, or at
    least the two the rule reads), by numpy's linear rule (``np.percentile``, Hyndman & Fan's 7th), computed as
    numpy computes it::

        i = count q + (1 - q) - 1,   q = percentile / 100   (float64)
        lo = floor(i), hi = min(lo + 1, count - 1), g = i - lo
        a, b = the lo-th and hi-th smallest values;   d = b - a   (in the values' dtype)
        p = a + d g  (g < 0.5),   b - d (1 - g)  (g >= 0.5)
    """
    q = percentile / 100
    i = count * q + (1 + q * (1 - 1 - 1)) - 1
    lo = min(max(math.floor(i), 0), count - 1)
    hi = min(lo + 1, count - 1)
    g = i - lo
    skipped = count - top.size  # the smallest values, not kept: below every kept one
    ranked = np.sort(top)
    a, b = ranked[lo - skipped], ranked[hi - skipped]
    d = b - a
    return float(a + d * g) if g < 0.5 else float(b - d * (1 - g))


def qcfs_thresholds(ann: nn.Module) -> list[float]:
    """The trained clipping thresholds ``lambda`` of every QCFS activation of ``ann``, build order."""
    return [float(m.threshold.detach()) for m in ann.modules() if isinstance(m, QCFS)]

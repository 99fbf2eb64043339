"""lee2020's spiking average pooling: a fixed 2x2 average of spikes feeds an IF "pooling neuron"."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepspike.core.errors import ConfigError, check_pool_padding
from deepspike.core.options import is_whole
from deepspike.core.spike_tally import ReportsSpikes
from deepspike.neurons.spikebp_lif import (
    DERIVATIVES,
    RunsInPiecesForInference,
    check_spikebp_neuron,
    leak_corrected_lif,
)
from deepspike.neurons.update_cost import membrane_ops


class SpikingAvgPool(RunsInPiecesForInference, ReportsSpikes, nn.Module):
    """Average-pool the spikes, integrate them in a non-leaky membrane, fire above ``threshold``, hard reset.

    ``p_t = avgpool_k(s_t)`` (weights ``1/k^2``, 0.25 for 2x2), then ``h_t = v_{t-1} + p_t``,
    ``o_t = 1[h_t > threshold]``, ``v_t = h_t (1 - o_t)`` (lee2020: threshold 0.75; the code has no leak here).
    Backward as lee2020's code: gradient 1 through the steps where the pooling neuron fired, inherited by
    the silent steps before them (``leak_corrected_lif`` with ``derivative="code"``, no leak correction),
    then the average pool's own gradient ``1/k^2``.

    ``padding`` p: zero (silent) inputs around the map, still counted in the ``1/k^2`` (a border window
    sees fewer real inputs with the same weights, as the ANN's ``count_include_pad=True``).

    x: spikes ``[T, B, C, H, W]`` -> ``[T, B, C, H', W']`` with ``H' = floor((H + 2p - k) / stride) + 1``.
    """

    is_spiking_neuron = True

    def __init__(self, kernel_size: int = 2, stride: int | None = None, threshold: float = 0.75,
                 derivative: str = "code", padding: int = 0) -> None:
        super().__init__()
        for name, value in (("kernel_size", kernel_size), ("stride", kernel_size if stride is None else stride)):
            if not is_whole(value, 1):
                raise ConfigError(f"SpikingAvgPool {name}={value!r} must be a whole number >= 1")
        if not is_whole(padding, 0):
            raise ConfigError(f"SpikingAvgPool padding={padding!r} must be a whole number >= 0")
        check_pool_padding(padding, kernel_size, "SpikingAvgPool")
        check_spikebp_neuron(1.0, threshold, "SpikingAvgPool")
        if derivative not in DERIVATIVES:
            raise ConfigError(f"unknown derivative {derivative!r}; valid: {', '.join(DERIVATIVES)}")
        self.kernel_size, self.stride = kernel_size, kernel_size if stride is None else stride
        self.threshold, self.derivative, self.padding = threshold, derivative, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        pooled = F.avg_pool2d(x.flatten(0, 1), self.kernel_size, self.stride, self.padding)  # [T*B, C, H', W']
        pooled = pooled.unflatten(0, (t, b))  # [T, B, C, H', W']
        if self.carry is not None:  # streaming (RunsInPiecesForInference)
            return self.reported(self.spikes_in_pieces(pooled, 1.0, self.threshold))
        s = leak_corrected_lif(pooled, leak=1.0, threshold=self.threshold, correction=False,
                               derivative=self.derivative, grad_scale=1.0)
        return self.reported(s)

    def update_ops(self) -> tuple[int, int]:
        """(MACs, ACs) per pooling neuron and step (``neurons.update_cost``): ``h_t = v_{t-1} + p_t`` and the
        threshold test (the pool's ``1/k^2`` average of spikes is counted as its synapses)."""
        return membrane_ops(1.0)

    def extra_repr(self) -> str:
        pad = f", padding={self.padding}" if self.padding else ""
        return f"kernel_size={self.kernel_size}, stride={self.stride}{pad}, threshold={self.threshold:g}"

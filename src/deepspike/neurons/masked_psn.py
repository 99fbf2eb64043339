"""``MaskedPSN``: the parallel spiking neuron whose weights are masked, step by step over training, down to a band
of the ``k`` most recent inputs (Fang et al., NeurIPS 2023, "masked PSN").

For input ``x [T, B, ...]``, ``X`` its ``[T, B*...]`` rows::

    H = (W * M_k(lambda)) X,    S[t] = H(H[t] - b[t])          (W [T, T], b [T] trainable; * elementwise)
    M_k[t, j] = 1 if j <= t <= j + k - 1 else 0                  (the order-k band: inputs t-k+1 .. t)
    M_k(lambda) = lambda M_k + (1 - lambda) J                    (J: all ones)

``lambda`` (the buffer ``masking``) goes from 0 (the plain PSN: every input reaches every step, later ones
included) to 1 (each step sees only its own and the k - 1 inputs before it) over training: the
``begin_epoch(epoch, epochs)`` schedule sets ``lambda = epoch / (epochs - 1)`` (the authors' released code; 1
when there is one epoch), so the last epoch trains, and the trained net runs, with the band alone. ``W`` starts as
the no-reset LIF's response matrix (``psn.lif_response_matrix``, as ``PSN``) and ``b`` at ``threshold``.

Like ``PSN`` it needs all T steps at once (``fixed_timesteps``; ``ConfigError`` for another step count) and does
not run step by step; ``SlidingPSN`` shares one set of ``k`` weights over time and runs at any T and in streaming.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_whole
from deepspike.core.spike_tally import ReportsSpikes
from deepspike.neurons.psn import check_whole_sequence, lif_response_matrix, psn_spikes
from deepspike.neurons.surrogate import get_surrogate


def band_mask(timesteps: int, order: int) -> torch.Tensor:
    """``M_k [T, T]``: 1 where ``j <= t <= j + k - 1`` (step t reads inputs t-k+1 .. t), else 0."""
    lag = torch.arange(timesteps)[:, None] - torch.arange(timesteps)[None, :]
    return ((lag >= 0) & (lag < order)).float()


def masking_at(epoch: int, epochs: int) -> float:
    """``lambda`` for 0-based ``epoch`` of ``epochs``: ``epoch / (epochs - 1)``, 1 for a single epoch."""
    return 1.0 if epochs <= 1 else min(epoch / (epochs - 1), 1.0)


class MaskedPSN(ReportsSpikes, nn.Module):
    """Masked parallel spiking neuron (module docstring); ``x [T, B, ...] -> s [T, B, ...]``, T = ``timesteps``."""

    is_spiking_neuron = True  # output [T, B, ...] is spikes (analysis.activity)
    fixed_timesteps = True  # runs at its own T only (analysis.sweeps leaves out its accuracy-against-T sweep)

    def __init__(self, timesteps: int, order: int, decay: float = 0.5, threshold: float = 1.0,
                 surrogate: str = "rectangular", surrogate_args: Mapping[str, float] | None = None) -> None:
        super().__init__()
        if not (is_whole(timesteps, 1) and is_whole(order, 1, timesteps)):
            raise ConfigError(f"MaskedPSN needs timesteps >= 1 and an order k in 1..timesteps, got timesteps="
                              f"{timesteps}, k={order}")
        self.timesteps, self.order = timesteps, order
        self.weight = nn.Parameter(lif_response_matrix(timesteps, decay))  # [T, T]
        self.bias = nn.Parameter(torch.full((timesteps,), float(threshold)))  # [T] thresholds
        self.register_buffer("band", band_mask(timesteps, order))  # [T, T] M_k
        self.register_buffer("masking", torch.tensor(0.0))  # lambda: 0 unmasked .. 1 band only
        self.spike_fn = get_surrogate(surrogate, **dict(surrogate_args or {}))

    def begin_epoch(self, epoch: int, epochs: int) -> None:
        """Set ``lambda`` for 0-based ``epoch`` of ``epochs`` (``masking_at``)."""
        self.masking.fill_(masking_at(epoch, epochs))

    def masked_weight(self) -> torch.Tensor:
        """``W * M_k(lambda)`` ``[T, T]``, differentiable in ``W``."""
        lam = self.masking.to(self.weight.dtype)
        return self.weight * (lam * self.band + (1.0 - lam))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_whole_sequence(x, self.timesteps, "the masked PSN neuron")
        return self.reported(psn_spikes(x, self.masked_weight(), self.bias, self.spike_fn))

    def extra_repr(self) -> str:
        return (f"timesteps={self.timesteps}, order={self.order}, masking={float(self.masking):g}, "
                f"surrogate={self.spike_fn!r}")

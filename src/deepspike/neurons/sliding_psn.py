"""``SlidingPSN``: a parallel spiking neuron with one set of ``k`` weights slid over time (Fang et al., NeurIPS 2023,
"sliding PSN"): it runs at any number of steps and, carrying its last ``k - 1`` inputs, step by step.

For input ``x [T, B, ...]``::

    H[t] = sum_{i=0}^{k-1} w[i] x[t - k + 1 + i]      (w [k] trainable; x[j] = 0 before the first step)
    S[t] = H(H[t] - b)                                 (b: one trainable threshold)

``w[k - 1]`` weighs the current input, ``w[k - 1 - j]`` the input ``j`` steps back. Over T steps this is
``H = W_T X`` with ``W_T [T, T]`` the banded Toeplitz matrix ``W_T[t, j] = w[k - 1 - (t - j)]`` for
``0 <= t - j < k`` (``band_matrix``), so the whole sequence runs as one matmul through the PSN kernels
(``psn.psn_spikes``), the gradient reaching ``w`` and ``b`` through the matrix. ``w`` starts as the no-reset LIF's
response truncated to k steps, ``w[i] = decay^(k - 1 - i)`` (decay 0.5: ``(..., 1/4, 1/2, 1)``, the paper's
exponential start), and ``b`` at ``threshold``.

State (``neurons.carry``): inside ``temporal_carry`` a call starts from the inputs of the ``k - 1`` steps before it
(``[k - 1, B, ...]``, fewer at the start), so calls on steps ``[0, S)``, ``[S, 2S)``, ... give the spikes of one
call on all steps: streaming, checkpointed BPTT, the online temporal-grad modes and recurrent layers run it.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_whole
from deepspike.core.spike_tally import ReportsSpikes
from deepspike.neurons.carry import CarriesState
from deepspike.neurons.dynamics import check_currents
from deepspike.neurons.psn import MAX_PSN_STEPS, after_carried, carried_psn_spikes, psn_spikes, psn_start
from deepspike.neurons.update_cost import window_taps


class SlidingPSN(CarriesState, ReportsSpikes, nn.Module):
    """Sliding parallel spiking neuron of order ``k`` (module docstring); ``x [T, B, ...] -> s [T, B, ...]``, any T."""

    is_spiking_neuron = True  # output [T, B, ...] is spikes (analysis.activity)

    def __init__(self, order: int, decay: float = 0.5, threshold: float = 1.0, surrogate: str = "rectangular",
                 surrogate_args: Mapping[str, float] | None = None) -> None:
        super().__init__()
        if not is_whole(order, 1):
            raise ConfigError(f"SlidingPSN needs an order k >= 1 (a whole number), got {order!r}")
        if order > MAX_PSN_STEPS:  # k = 10**12 asked torch for 8 TB of weights (an allocator traceback)
            raise ConfigError(f"SlidingPSN order k={order} is above {MAX_PSN_STEPS:,}, the longest window a PSN reads "
                              "(its k weights, and the k - 1 inputs per neuron it carries from call to call)")
        self.order = order
        start = psn_start(decay, threshold, surrogate, surrogate_args)
        self.weight = nn.Parameter(start.decay ** torch.arange(order - 1, -1, -1, dtype=torch.float64).float())  # [k]
        self.bias = nn.Parameter(torch.tensor(start.threshold))  # the threshold b
        self.spike_fn = start.spike_fn

    def band_matrix(self, steps: int, past: int = 0) -> torch.Tensor:
        """``[steps, past + steps]``: row t weighs input column j (``past`` carried steps first, then the call's) by
        ``w[k - 1 - lag]``, ``lag = t + past - j`` in ``0 .. k - 1``, else 0; differentiable in ``w``."""
        lag = torch.arange(steps, device=self.weight.device)[:, None] + past \
            - torch.arange(past + steps, device=self.weight.device)[None, :]
        inside = (lag >= 0) & (lag < self.order)
        taps = self.weight[(self.order - 1 - lag).clamp(0, self.order - 1)]  # [steps, past + steps]
        return torch.where(inside, taps, torch.zeros((), dtype=taps.dtype, device=taps.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_currents(x)
        t, past = x.shape[0], self.carried()
        if past is None:
            s = psn_spikes(x, self.band_matrix(t), self.bias.expand(t), self.spike_fn)
            seen = x
        else:  # the carried inputs first: [P + T, B, ...], one rectangular matmul
            seen = after_carried(past, x)
            # one step (streaming, a recurrent layer's loop): its band row is the last P + 1 weights, no index build
            band = self.weight[self.order - seen.shape[0]:][None] if t == 1 else self.band_matrix(t, past.shape[0])
            s = carried_psn_spikes(seen, band, self.bias, t, self.spike_fn)
        if self.carry is not None and self.order > 1:  # a copy: a view would keep all the steps alive
            self.keep(seen[-(self.order - 1):].clone())
        return self.reported(s)

    update_ops_by_step = True  # the first k - 1 steps of a pass read fewer inputs (neurons.update_cost)

    def update_ops(self, t0: int = 0, steps: int | None = None) -> tuple[float, int]:
        """(MACs, ACs) per neuron and step (``neurons.update_cost``): ``H[t] = sum_i w[i] x[t - k + 1 + i]`` over
        its ``min(t + 1, k)`` real inputs (none before step 0), and the threshold test; the mean over steps
        ``t0 .. t0 + steps - 1`` of a pass (``window_taps``), or ``k`` taps (a full window) without ``steps``."""
        return (self.order if steps is None else window_taps(self.order, t0, steps), 1)

    def extra_repr(self) -> str:
        return f"order={self.order}, surrogate={self.spike_fn!r}"

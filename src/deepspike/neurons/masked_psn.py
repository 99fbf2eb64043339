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

While ``lambda < 1`` it needs, like ``PSN``, all T steps in one call (``ConfigError`` for another step count). Once
``lambda = 1`` (a trained net) each step reads only its band, so it also runs in pieces (``neurons.carry``): inside
``temporal_carry`` a call on steps ``t0 .. t0 + S - 1`` starts from the last ``k - 1`` inputs before it and the
step count ``t0`` (the state ``(inputs [<= k - 1, B, ...], t0)``), giving the spikes of one call on all steps, as long
as ``t0 + S <= T``: streaming (``methods.streaming``) and calls one step at a time, as the paper's masked PSN after
training. Training in pieces (checkpointed BPTT, SLTT, OTTT) starts at ``lambda = 0`` and is refused
(``pieces_refusal``). It never runs past its own T (``fixed_timesteps``). ``SlidingPSN`` shares one set of ``k``
weights over time and runs at any T.
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
from deepspike.neurons.psn import (
    after_carried,
    carried_psn_spikes,
    check_psn_steps,
    check_whole_sequence,
    lif_response_matrix,
    psn_spikes,
    psn_start,
)
from deepspike.neurons.update_cost import window_taps


def band_mask(timesteps: int, order: int) -> torch.Tensor:
    """``M_k [T, T]``: 1 where ``j <= t <= j + k - 1`` (step t reads inputs t-k+1 .. t), else 0."""
    lag = torch.arange(timesteps)[:, None] - torch.arange(timesteps)[None, :]
    return ((lag >= 0) & (lag < order)).float()


def masking_at(epoch: int, epochs: int) -> float:
    """``lambda`` for 0-based ``epoch`` of ``epochs``: ``epoch / (epochs - 1)``, 1 for a single epoch."""
    return 1.0 if epochs <= 1 else min(epoch / (epochs - 1), 1.0)


class MaskedPSN(CarriesState, ReportsSpikes, nn.Module):
    """Masked parallel spiking neuron (module docstring); ``x [T, B, ...] -> s [T, B, ...]``, T = ``timesteps``."""

    is_spiking_neuron = True  # output [T, B, ...] is spikes (analysis.activity)
    fixed_timesteps = True  # runs at its own T only (analysis.sweeps leaves out its accuracy-against-T sweep)

    def __init__(self, timesteps: int, order: int, decay: float = 0.5, threshold: float = 1.0,
                 surrogate: str = "rectangular", surrogate_args: Mapping[str, float] | None = None) -> None:
        super().__init__()
        if not (is_whole(timesteps, 1) and is_whole(order, 1, timesteps)):
            raise ConfigError(f"MaskedPSN needs timesteps >= 1 and an order k in 1..timesteps, got timesteps="
                              f"{timesteps}, k={order}")
        check_psn_steps(timesteps, "MaskedPSN")
        self.timesteps, self.order = timesteps, order
        start = psn_start(decay, threshold, surrogate, surrogate_args)
        self.weight = nn.Parameter(lif_response_matrix(timesteps, start.decay))  # [T, T]
        self.bias = nn.Parameter(torch.full((timesteps,), start.threshold))  # [T] thresholds
        self.register_buffer("band", band_mask(timesteps, order))  # [T, T] M_k
        self.register_buffer("masking", torch.tensor(0.0))  # lambda: 0 unmasked .. 1 band only
        self.spike_fn = start.spike_fn

    def begin_epoch(self, epoch: int, epochs: int) -> None:
        """Set ``lambda`` for 0-based ``epoch`` of ``epochs`` (``masking_at``)."""
        self.masking.fill_(masking_at(epoch, epochs))

    def masked_weight(self) -> torch.Tensor:
        """``W * M_k(lambda)`` ``[T, T]``, differentiable in ``W``."""
        lam = self.masking.to(self.weight.dtype)
        return self.weight * (lam * self.band + (1.0 - lam))

    def pieces_refusal(self) -> str | None:
        """Why this neuron cannot run its steps in pieces now (``lambda < 1``: later inputs still reach each step),
        else None (``methods.rate_network.check_runs_in_pieces`` asks)."""
        if float(self.masking) == 1.0:
            return None
        return (f"the masked PSN runs in pieces only once its masking lambda is 1 (the band alone, after the last "
                f"training epoch), and it is {float(self.masking):g}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.carry is None:
            check_whole_sequence(x, self.timesteps, "the masked PSN neuron")
            return self.reported(psn_spikes(x, self.masked_weight(), self.bias, self.spike_fn))
        return self.reported(self._forward_in_pieces(x))

    def _forward_in_pieces(self, x: torch.Tensor) -> torch.Tensor:
        """Steps ``t0 .. t0 + S - 1`` of ``x [S, B, ...]`` from the carried inputs and ``t0`` (module docstring)."""
        check_currents(x)
        reason = self.pieces_refusal()
        if reason is not None:
            raise ConfigError(reason)
        past, start = self.carried() or (None, 0)
        steps = x.shape[0]
        if start + steps > self.timesteps:
            raise ConfigError(f"the masked PSN neuron runs {self.timesteps} time steps: {start} have run and "
                              f"{steps} more were asked")
        seen = after_carried(past, x)  # [P + S, B, ...]
        first = start - (seen.shape[0] - steps)  # the step of seen[0]
        rows = self.masked_weight()[start:start + steps, first:start + steps]  # [S, P + S]
        s = carried_psn_spikes(seen, rows, self.bias[start:start + steps], steps, self.spike_fn)
        kept = seen[-(self.order - 1):].clone() if self.order > 1 else None  # a copy: a view keeps all steps alive
        self.keep((kept, start + steps))
        return s

    update_ops_by_step = True  # once trained, the first k - 1 steps read fewer inputs (neurons.update_cost)

    def update_ops(self, t0: int = 0, steps: int | None = None) -> tuple[float, int]:
        """(MACs, ACs) per neuron and step (``neurons.update_cost``): once ``lambda = 1`` (the trained net) the band's
        ``min(t + 1, k)`` taps at step t (``window_taps``: the mean over steps ``t0 .. t0 + steps - 1``, all T without
        ``steps``), all ``T`` before (the mask lets every input through), and the threshold test."""
        if float(self.masking) != 1.0:
            return (self.timesteps, 1)
        return (window_taps(self.order, t0, self.timesteps if steps is None else steps), 1)

    def extra_repr(self) -> str:
        return (f"timesteps={self.timesteps}, order={self.order}, masking={float(self.masking):g}, "
                f"surrogate={self.spike_fn!r}")

"""``PSN``: the parallel spiking neuron (Fang et al., NeurIPS 2023): no reset, all T steps in one matmul.

For input ``x [T, B, ...]``::

    H = W X,     H[t] = sum_k W[t, k] X[k]        (W: trainable [T, T]; X = x as [T, B*...])
    S[t] = H(H[t] - b[t])                          (b: trainable thresholds [T]; surrogate gradient)

With no reset the membrane of a LIF neuron is linear in its inputs, ``h_t = sum_{k<=t} decay^(t-k) x_k``; PSN
generalises those coefficients to a full trainable matrix. ``W`` starts as that LIF matrix
(``decay^(t-k)`` for ``k <= t``, 0 above) and ``b`` at ``threshold``, so training starts from the no-reset LIF.
The neuron needs the whole sequence at once: it refuses any other number of steps than its ``timesteps``
(``ConfigError``), and, not carrying state across calls, it cannot run step by step (online temporal-grad modes,
streaming; ``training.temporal_grad`` refuses it there).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_whole
from deepspike.core.precision import at_least_float32
from deepspike.core.spike_tally import ReportsSpikes
from deepspike.neurons.dynamics import check_currents
from deepspike.neurons.fused_psn import fused_psn, psn_fused_supported
from deepspike.neurons.params import NeuronParams
from deepspike.neurons.surrogate import Surrogate


def lif_response_matrix(timesteps: int, decay: float) -> torch.Tensor:
    """``[T, T]`` lower-triangular ``W[t, k] = decay^(t-k)`` (``k <= t``): a no-reset LIF's membrane ``H = W X``."""
    t = torch.arange(timesteps, dtype=torch.float64)
    lag = t[:, None] - t[None, :]
    return torch.where(lag >= 0, decay ** lag.clamp(min=0), 0.0).float()


def psn_spikes(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, spike_fn: Surrogate) -> torch.Tensor:
    """``S = H(W X - b)``: ``x [T, B, ...]``, ``weight [T, T]``, thresholds ``bias [T]`` -> spikes ``[T, B, ...]``; the
    fused kernel where it runs (``fused_psn``), else one torch matmul. ``weight`` and ``bias`` may be products of
    parameters (the masked and sliding PSNs build theirs): the gradient flows back through them."""
    if psn_fused_supported(x, spike_fn):
        return fused_psn(x, weight, bias, spike_fn)
    flat = x.reshape(x.shape[0], math.prod(x.shape[1:]))  # [T, B, ...] -> [T, B*...] (T = 0 too)
    h = mixed_membrane(weight, flat).view(x.shape)  # one matmul over all T
    return spike_fn(h - bias.to(h.dtype).view(x.shape[0], *([1] * (x.dim() - 1)))).to(x.dtype)


def mixed_membrane(rows_weight: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """``H = W X`` for ``W [S, P]`` and rows ``X [P, N]`` in float32 at least (float64 stays float64), autocast off:
    a bfloat16 / float16 input (``model.to(torch.bfloat16)``, or any input under autocast) had its ``T x T`` mixing
    rounded to that dtype (``H`` to 8 bits of mantissa before the threshold test: 198 of 204,800 spikes of a
    32-step bfloat16 PSN flipped against a float64 reference). As the low-precision LIF (``fused_low_precision``)
    keeps its state in float32: the input is read in float32 (a float32 copy of ``X``), the spikes are returned
    in ``X``'s dtype (0 and 1 are exact) and ``dL/dx`` is the float32 gradient rounded once."""
    dtype = at_least_float32(inputs.dtype)
    with torch.autocast(inputs.device.type, enabled=False):
        return rows_weight.to(dtype) @ inputs.to(dtype)


def carried_psn_spikes(seen: torch.Tensor, rows: torch.Tensor, bias: torch.Tensor, steps: int,
                       spike_fn: Surrogate) -> torch.Tensor:
    """A call of ``steps`` steps after ``P`` carried inputs: ``seen [P + S, B, ...]`` (carried inputs first),
    ``rows [S, P + S]`` of the weight matrix, thresholds ``bias`` ``[S]`` or a scalar -> spikes
    ``S = H(rows @ seen - b)`` ``[S, B, ...]`` (one rectangular matmul; the sliding and the masked PSN in pieces)."""
    shape = (steps, *seen.shape[1:])
    h = mixed_membrane(rows, seen.reshape(seen.shape[0], math.prod(shape[1:])))  # [S, B*...], float32 at least
    return spike_fn(h.view(shape) - bias.to(h.dtype).reshape(-1, *([1] * (len(shape) - 1)))).to(seen.dtype)


def after_carried(past: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """The carried inputs ``past [P, B, ...]`` (None: none) then the call's ``x [S, B, ...]``: ``[P + S, B, ...]`` in
    ``x``'s dtype; a one-line ``ConfigError`` when ``past``'s steps are not of ``x``'s step shape (carried from a call
    on another batch, as ``neurons.dynamics.check_initial_state`` refuses a carried membrane)."""
    if past is None:
        return x
    if past.shape[1:] != x.shape[1:]:
        raise ConfigError(f"carried inputs {tuple(past.shape[1:])} per step do not match one step of the input "
                          f"{tuple(x.shape[1:])}")
    return torch.cat([past.to(x.dtype), x])


def psn_start(decay: float, threshold: float, surrogate: str,
              surrogate_args: Mapping[str, float] | None) -> NeuronParams:
    """The no-reset LIF a PSN-family neuron starts from, checked as every LIF's settings are (``NeuronParams``): a
    one-line ``ConfigError`` for a ``decay`` outside (0, 1], a ``threshold`` that is not a finite number > 0 (NaN, inf
    or -1 would start every weight or threshold at nonsense), or a bad surrogate; its ``spike_fn`` is the neuron's."""
    args = dict(surrogate_args or {})
    return NeuronParams(decay=decay, threshold=threshold, surrogate=surrogate, surrogate_args=args)


def check_whole_sequence(x: torch.Tensor, timesteps: int, who: str) -> None:
    """``check_currents`` and a one-line ``ConfigError`` unless ``x [T, B, ...]`` holds all ``timesteps`` steps of a
    neuron (``who``) whose weights span the whole sequence."""
    check_currents(x)
    if x.shape[0] != timesteps:
        raise ConfigError(f"{who} needs all its {timesteps} time steps at once, got {x.shape[0]} (eval_timesteps, "
                          f"streaming and online temporal-grad modes cannot run it)")


MAX_PSN_STEPS = 16_384  # a [T, T] float32 weight of 1 GiB per layer (T = 2,000,000 asked for 16 TB at build)


def check_psn_steps(timesteps: int, who: str) -> None:
    """A one-line ``ConfigError`` when the ``[T, T]`` weight of a PSN of ``timesteps`` steps would be larger than
    ``MAX_PSN_STEPS`` squared (the sliding PSN keeps ``order`` weights at any T)."""
    if is_whole(timesteps, MAX_PSN_STEPS + 1):
        raise ConfigError(f"{who} timesteps={timesteps} is above {MAX_PSN_STEPS:,}: its [T, T] weights would take "
                          f"{4 * timesteps ** 2 / 2 ** 30:,.1f} GiB per layer (neuron sliding_psn keeps psn_order "
                          "weights at any T)")


class PSN(ReportsSpikes, nn.Module):
    """Parallel spiking neuron layer (module docstring); ``x [T, B, ...] -> s [T, B, ...]`` with T = ``timesteps``."""

    is_spiking_neuron = True  # output [T, B, ...] is spikes (analysis.activity)
    fixed_timesteps = True  # runs at its own T only (analysis.sweeps leaves out its accuracy-against-T sweep)

    def __init__(self, timesteps: int, decay: float = 0.5, threshold: float = 1.0, surrogate: str = "rectangular",
                 surrogate_args: Mapping[str, float] | None = None) -> None:
        super().__init__()
        if not is_whole(timesteps, 1):
            raise ConfigError(f"PSN timesteps={timesteps!r} must be a whole number >= 1")
        check_psn_steps(timesteps, "PSN")
        self.timesteps = timesteps
        start = psn_start(decay, threshold, surrogate, surrogate_args)
        self.weight = nn.Parameter(lif_response_matrix(timesteps, start.decay))  # [T, T]
        self.bias = nn.Parameter(torch.full((timesteps,), start.threshold))  # [T] thresholds
        self.spike_fn = start.spike_fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_whole_sequence(x, self.timesteps, "the PSN neuron")
        return self.reported(psn_spikes(x, self.weight, self.bias, self.spike_fn))

    def update_ops(self) -> tuple[int, int]:
        """(MACs, ACs) per neuron and step (``neurons.update_cost``): ``H[t] = sum_k W[t, k] X[k]`` over all ``T``
        steps of the trained ``[T, T]`` matrix, and the test against ``b[t]``."""
        return (self.timesteps, 1)

    def extra_repr(self) -> str:
        return f"timesteps={self.timesteps}, surrogate={self.spike_fn!r}"

"""The converted network's IF neuron: ``deepspike.neurons.IF`` that can carry its membrane across time chunks.

A long simulation (T = 2500 steps) does not fit in memory as one ``[T, B, ...]`` tensor, so the converted
network runs time in chunks. Inside one network call (``neurons.carry.temporal_carry``) each neuron keeps its
post-reset membrane ``v`` (and, signed, its net spike count) between chunks; outside it, a call starts afresh
like every other neuron module, so no ``reset_net()`` is ever needed by the user.

Dynamics (sengupta2019 eq. 2, no leak): ``h_t = v_{t-1} + x_t``, ``s_t = 1[h_t >= th]``, then
``v_t = 0`` (reset "zero", the paper) or ``v_t = h_t - th`` (reset "subtract") where ``s_t = 1``, or ``v_t = h_t``
(reset "none", as for every neuron). Input checks,
empty inputs and NaN (propagated to the spikes) as for every neuron: ``deepspike.neurons.dynamics``.

Low-latency conversion (Bu et al., ICLR 2022) adds three settings, all for inference (no gradients):

* ``initial``: the membrane starts at ``v_0 = initial * th`` (0.5: half the threshold, which centres the
  quantisation error of the rate ``floor(...)`` and makes an IF neuron equal a QCFS activation at T = L);
* per-channel thresholds ``th[c]`` (``set_channel_thresholds``; channel = axis 1 of a step ``[B, C, ...]``);
* ``weighted``: a spike carries its neuron's threshold, output ``th * s_t``, so currents and thresholds are in
  the ANN's units (biases and residual sums then need no rescaling).

And one error correction for T <= L, ``signed`` (the signed IF neuron of Li, Ma and Furber, "Quantization
framework for fast spiking neural networks", Front. Neurosci. 2022; also Wang et al.'s signed neuron with
memory, IJCAI 2022): with reset by subtraction, a neuron whose membrane falls below 0 while its net spike count
``n`` is positive emits a negative spike (``s_t = -1``, ``v += th``) that takes back an early one. With
``v_0 = th / 2`` its net count after t steps is then ``clip(floor(S_t / th + 1/2), 0, ...)`` of its summed
input ``S_t`` whenever one spike per step suffices: the quantised running sum, not a sum of early guesses.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.precision import LOW_PRECISION
from deepspike.neurons import IF, neuron_multistep
from deepspike.neurons.dynamics import check_currents, check_initial_state
from deepspike.neurons.fused_low_precision import carried_start
from deepspike.neurons.surrogate import heaviside
from deepspike.neurons.update_cost import plus


class ChunkedIF(IF):
    """IF layer ``x [T, B, ...] -> spikes [T, B, ...]`` keeping its membrane across calls while carrying.

    initial: ``v_0 = initial * th`` (in [0, 1)); weighted: output ``th * s_t`` instead of ``s_t``; signed: also
    negative spikes (module docstring).
    """

    is_spiking_neuron = True

    def __init__(self, threshold: float = 1.0, reset: str = "zero", initial: float = 0.0,
                 weighted: bool = False, signed: bool = False) -> None:
        super().__init__(threshold=threshold, reset=reset)
        if not 0.0 <= initial < 1.0:
            raise ConfigError(f"initial membrane must be a fraction of the threshold in [0, 1), got {initial}")
        if signed and reset != "subtract":
            raise ConfigError("signed neurons need reset by subtraction")
        self.initial, self.weighted, self.signed = float(initial), bool(weighted), bool(signed)
        self.channel_thresholds: torch.Tensor | None = None

    def with_threshold(self, threshold: float) -> ChunkedIF:
        """One threshold for the whole layer (drops per-channel thresholds); returns ``self``."""
        self.channel_thresholds = None
        super().with_threshold(threshold)
        return self

    def set_channel_thresholds(self, thresholds: Sequence[float] | torch.Tensor) -> None:
        """One threshold per channel ``[C]`` (all finite and > 0); replaces the layer's single threshold."""
        th = torch.as_tensor(thresholds, dtype=torch.float32).flatten()
        if th.numel() == 0 or not bool(torch.isfinite(th).all() and (th > 0).all()):
            raise ConfigError("per-channel thresholds must be finite numbers > 0")
        self.channel_thresholds = th

    @property
    def plain(self) -> bool:
        """True when the neuron is sengupta2019's (one threshold, ``v_0 = 0``, unit spikes)."""
        return self.channel_thresholds is None and self.initial == 0.0 and not (self.weighted or self.signed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v0, count = self.carried() or (None, None)  # carried: v and (signed) the net spike count
        check_currents(x)
        check_initial_state(v0, x)  # a batch of another size inside temporal_carry (else a RuntimeError in _fast)
        if torch.is_grad_enabled() and self.plain:  # a carried bfloat16 / float16 state stays float32
            start = v0 if self.carry is None else carried_start(x, self.params, v0)
            spikes, v = neuron_multistep(x, self.params, v0=start)
        else:
            with torch.no_grad():
                spikes, v, count = self._fast(x, v0, count)
        self.keep((v, count))
        if self.tally is not None:
            self.report_spikes((spikes != 0).sum())  # signed and threshold-valued spikes count once each
        return spikes

    def update_ops(self) -> tuple[int, int]:
        """(MACs, ACs) per neuron and step (``neurons.update_cost``): the IF's ``h_t = v_{t-1} + x_t`` and
        ``h_t >= th``, (0, 2); signed, also the tests ``h_t < 0`` and ``n > 0`` (an AC each) and the net count
        ``n_t = n_{t-1} + s_t`` (an addition), (0, 5). The negative spike's ``v += th`` is a reset (left out)."""
        return plus(super().update_ops(), (0, 3) if self.signed else (0, 0))

    def membrane(self, state: tuple) -> torch.Tensor:
        """``v_t`` of the carried ``(v, count)``."""
        return state[0]

    def threshold_at(self, step: torch.Tensor, state: tuple | None) -> float | torch.Tensor:
        """The threshold of ``step [1, B, ...]``: one value, or ``[C, 1, ...]`` per channel."""
        return self.step_threshold(step[0])

    def step_threshold(self, step: torch.Tensor) -> float | torch.Tensor:
        """The threshold broadcast against one step ``[B, C, ...]``: a float, or ``[C, 1, ...]``."""
        if self.channel_thresholds is None:
            return self.params.threshold
        th = self.channel_thresholds.to(step.device, step.dtype)
        if step.dim() < 2 or step.shape[1] != th.numel():
            raise ConfigError(f"{th.numel()} channel thresholds for a step of shape {tuple(step.shape)}")
        return th.reshape(-1, *([1] * (step.dim() - 2)))

    def _fast(
        self, x: torch.Tensor, v0: torch.Tensor | None, count0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The same update as ``neuron_multistep`` in place, for inference: ``[T, B, ...]`` -> spikes, ``v_T``
        and (signed) the net spike count. Only in-place ops on ``v`` and the spikes, no temporaries (faster on
        CPU than a bool mask and ``masked_fill_``). A bfloat16 / float16 ``x`` runs on a float32 copy, as
        ``neuron_multistep`` runs it: the state ``v`` (and count) float32, the spikes rounded back to ``x``'s dtype
        (in bfloat16, ``0.5 + 0.0011`` rounds back to ``0.5``: a membrane summed in it stalled below threshold)."""
        if x.dtype in LOW_PRECISION:
            spikes, v, count = self._fast(x.float(), None if v0 is None else v0.float(), count0)
            return spikes.to(x.dtype), v, count
        th = self.step_threshold(x[0] if len(x) else x.new_zeros(x.shape[1:]))
        zero, keep = self.params.reset == "zero", self.params.reset == "none"
        if v0 is None:
            v = x.new_zeros(x.shape[1:])
            if self.initial:
                v.add_(th * self.initial)  # v_0 = initial * th
        else:
            v = v0.clone()
        spikes = torch.empty_like(x)
        per_channel = isinstance(th, torch.Tensor)
        count = None if not self.signed else (x.new_zeros(x.shape[1:]) if count0 is None else count0.clone())
        for t in range(x.shape[0]):
            s = spikes[t]
            v.add_(x[t])  # h_t = v_{t-1} + x_t
            heaviside(torch.sub(v, th, out=s), out=s)  # s_t = H(h_t - th), NaN for a NaN membrane
            if count is not None:  # s_t = -1 where h_t < 0 and n > 0; n += s_t
                s.sub_(((v < 0) & (count > 0)).to(s.dtype))
                count.add_(s)
            if zero:
                v.addcmul_(v, s, value=-1.0)  # v_t = h_t (1 - s_t)
            elif keep:
                pass  # reset "none": v_t = h_t
            elif per_channel:
                v.addcmul_(s, th, value=-1.0)  # v_t = h_t - th[c] s_t
            else:
                v.sub_(s, alpha=th)  # v_t = h_t - th s_t
        if self.weighted:
            spikes.mul_(th)
        return spikes, v, count

    @property
    def threshold(self) -> float:
        return self.params.threshold

    def extra_repr(self) -> str:
        extra = f", initial={self.initial:g}" if self.initial else ""
        extra += ", weighted" if self.weighted else ""
        extra += ", signed" if self.signed else ""
        if self.channel_thresholds is not None:
            extra += f", {self.channel_thresholds.numel()} channel thresholds"
        return super().extra_repr() + extra


def chunked_neurons(model: nn.Module) -> list[ChunkedIF]:
    """Every ``ChunkedIF`` of ``model`` in registration order (= execution order for built specs)."""
    return [m for m in model.modules() if isinstance(m, ChunkedIF)]


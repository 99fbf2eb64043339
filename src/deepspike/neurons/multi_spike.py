"""Multi-spike neurons: up to ``N`` spikes a step, as SynSense Xylo's hidden neurons fire (``method.max_spikes``).

Xylo's neuron (``deploy.xylosim.neuron_step``, XyloSim's ``XyloIAFNeuron::evolve``) fires ``n = min(floor(v / th),
31)`` spikes in a step, subtracts ``n th`` from its membrane, and the next layer receives ``n w``. A net trained
with one spike a step runs on the chip with other spikes than it was trained with. These neurons train with the
chip's rule. One step on ``[B, ...]`` currents, ``v_0 = 0``::

    h_t = k v_{t-1} + x_t
    n_t = sum_{j=1..N} H(h_t - j th) = clamp(floor(h_t / th), 0, N)     spikes this step (a count, a float tensor)
    v_t = h_t - th n_t                                                  reset by subtraction of every spike

``N = max_spikes`` (1: the plain neuron's ``H(h_t - th)``). The output ``n [T, B, ...]`` is the count: the next
layer's input is ``W n_t``. Backward: ``n_t`` is a sum of ``N`` single-spike functions, so its surrogate
derivative is the sum of the single-spike surrogates at the thresholds ``th, 2 th, ..., N th``::

    dn_t/dh_t = sum_{j=1..N} sg(h_t - j th)        (sg: the surrogate's derivative, ``neurons.surrogate``)

(the rectangular surrogate of width ``a = th``: 1/th per unit of ``h`` on ``[th/2, (N + 1/2) th)``, the slope of
the staircase). The reset ``v_t = h_t - th n_t`` is differentiated through ``n_t`` (not with ``detach_reset``);
``leak_grad=False`` and ``state_quant`` act as in ``neurons.dynamics``. Only reset ``subtract`` is taken (a
one-line ``ConfigError`` otherwise): a count of spikes removes as many thresholds.

The fused kernels assume one spike a step: these neurons always run the plain torch loop over T (``N`` surrogate
evaluations a step; under autograd each step keeps its ``[N, B, ...]`` surrogate inputs for backward, ``N`` times
what the one-spike loop keeps). ``MultiSpikeLIF`` is the LIF and
``MultiSpikeSynapticLIF`` the current-based LIF (``neurons.synaptic``) with this rule; both carry state in
``neurons.carry.temporal_carry`` as their one-spike classes do. On bfloat16 / float16 inputs the membrane (and a
carried synaptic current) is float32, as the one-spike neurons keep it: the counts are the float32 run's on the same
input, in the input's dtype.
"""

from __future__ import annotations

import torch

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_whole
from deepspike.core.precision import LOW_PRECISION, at_least_float32
from deepspike.neurons.dynamics import check_currents, check_initial_state, leak, reset_membrane
from deepspike.neurons.modules import SpikingNeuron
from deepspike.neurons.params import NeuronParams
from deepspike.neurons.synaptic import SynapticLIF

XYLO_MAX_SPIKES = 31
"""Xylo's most spikes a hidden neuron fires in a step (``deploy.xylosim.MAX_HIDDEN_SPIKES``)."""
MAX_SPIKES_LIMIT = 256
"""The largest ``max_spikes`` taken: each step holds ``N`` surrogate inputs ``[N, B, ...]``, and a bfloat16 count
is a whole number exactly up to 256."""


def check_max_spikes(max_spikes: object, params: NeuronParams | None = None, key: str = "max_spikes") -> int:
    """``max_spikes`` as an int in [1, ``MAX_SPIKES_LIMIT``]; a one-line ``ConfigError`` naming ``key`` for anything
    else (a larger one would hold ``N`` times a step's neurons for backward), or for ``params`` whose reset is not
    ``subtract`` when ``max_spikes > 1``."""
    if not is_whole(max_spikes, 1, MAX_SPIKES_LIMIT):
        raise ConfigError(f"bad value {max_spikes!r} for {key}: expected an integer from 1 to {MAX_SPIKES_LIMIT} "
                          f"(1: one spike a step; Xylo's hidden neurons fire up to {XYLO_MAX_SPIKES})")
    if params is not None and max_spikes > 1 and params.reset != "subtract":
        raise ConfigError(f"max_spikes={max_spikes} needs reset 'subtract' (each spike removes one threshold), "
                          f"got reset {params.reset!r}")
    return int(max_spikes)


def multi_spike_multistep(x: torch.Tensor, params: NeuronParams, max_spikes: int,
                          v0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Currents ``x [T, B, ...]`` -> ``(n [T, B, ...], v_T [B, ...])``: the spike counts and final membrane of the
    multi-spike neuron (module docstring), from ``v0`` (None: zeros). On bfloat16 / float16 ``x`` the membrane, the
    thresholds ``j th`` and the sums are float32 (``core.precision.at_least_float32``), as the one-spike neurons keep
    them (``neurons.fused_low_precision``): ``n`` is that float32 run's counts in ``x``'s dtype (exact up to 256), and
    ``v_T`` is in ``x``'s dtype promoted with ``v0``'s (a float32 ``v0`` keeps the float32 state: ``carried_start``)."""
    check_currents(x)
    check_initial_state(v0, x)
    th, wide = params.threshold, at_least_float32(x.dtype)
    levels = th * torch.arange(1, max_spikes + 1, dtype=wide, device=x.device)  # [N]: th, 2 th, ..., N th
    levels = levels.view(-1, *([1] * (x.dim() - 1)))  # [N, 1, ...] against one step [B, ...]
    v = x.new_zeros(x.shape[1:], dtype=wide) if v0 is None else v0.to(torch.promote_types(wide, v0.dtype))
    counts = []
    for x_t in x.unbind(0):
        h = leak(v, params) + x_t.to(wide)
        if params.state_quant is not None:
            h = params.state_quant(h, th)
        n = params.spike_fn(h.unsqueeze(0) - levels).sum(0)  # sum_j H(h - j th)
        v = reset_membrane(h, n, th, params)
        counts.append(n)
    state = x.dtype if v0 is None else torch.promote_types(x.dtype, v0.dtype)
    return (torch.stack(counts).to(x.dtype) if counts else x * 0), v.to(state)


def carried_start(x: torch.Tensor, v0: torch.Tensor | None) -> torch.Tensor | None:
    """The initial membrane of a call whose ``v_T`` a module keeps (``neurons.carry``): ``v0``, or for the first call
    (``v0`` None) of a bfloat16 / float16 ``x [T, B, ...]``, float32 zeros ``[B, ...]``, so that the kept state is the
    float32 one that one call on all the steps keeps (the one-spike neurons' ``fused_low_precision.carried_start``)."""
    if v0 is not None or x.dtype not in LOW_PRECISION:
        return v0
    return torch.zeros(x.shape[1:], dtype=torch.float32, device=x.device)


class MultiSpikeLIF(SpikingNeuron):
    """The LIF (``params``: decay, threshold, reset ``subtract``, surrogate) firing up to ``max_spikes`` spikes a
    step: ``x [T, B, ...] -> n [T, B, ...]`` counts (module docstring)."""

    def __init__(self, params: NeuronParams, max_spikes: int = XYLO_MAX_SPIKES) -> None:
        super().__init__(params)
        self.max_spikes = check_max_spikes(max_spikes, params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_currents(x)
        v0 = self.carried() if self.carry is None else carried_start(x, self.carried())
        n, v = multi_spike_multistep(x, self.params, self.max_spikes, v0)
        self.keep(v)
        return self.reported(n)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, max_spikes={self.max_spikes}"


class MultiSpikeSynapticLIF(SynapticLIF):
    """The current-based LIF (``neurons.synaptic``: ``i_t = alpha i_{t-1} + x_t`` feeds the LIF) firing up to
    ``max_spikes`` spikes a step: ``x [T, B, ...] -> n [T, B, ...]`` counts (module docstring)."""

    def __init__(self, params: NeuronParams, syn_decay: float = 0.5, max_spikes: int = XYLO_MAX_SPIKES) -> None:
        super().__init__(params, syn_decay)
        self.max_spikes = check_max_spikes(max_spikes, params)

    def _start(self, current: torch.Tensor, v0: torch.Tensor | None) -> torch.Tensor | None:
        """Float32 zeros on the first carried call of a bfloat16 / float16 ``current`` (module ``carried_start``)."""
        return carried_start(current, v0)

    def _fire(self, current: torch.Tensor, v0: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The multi-spike LIF on ``current [T, B, ...]`` from ``v0``: ``(n [T, B, ...], v_T [B, ...])``."""
        return multi_spike_multistep(current, self.fixed, self.max_spikes, v0)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, max_spikes={self.max_spikes}"

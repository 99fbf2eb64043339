"""``AdaptiveLIF``: a LIF whose threshold rises with each of its spikes and decays back (spike-frequency adaptation).

``x [T, B, ...] -> s [T, B, ...]``, ``v_0 = a_0 = 0``::

    h_t = k v_{t-1} + x_t                         charge, as the LIF (``neurons.dynamics``)
    theta_t = th + beta a_{t-1}                   adaptive threshold (beta = adapt_scale >= 0)
    s_t = H(h_t - theta_t)                        fire (surrogate gradient through h and theta)
    v_t = h_t (1 - s_t) | h_t - theta_t s_t | h_t reset "zero" | "subtract" (the threshold crossed) | "none"
    a_t = rho a_{t-1} + s_t                       adaptation trace (rho = adapt_decay in [0, 1])

The adaptive threshold of Bellec et al.'s LSNN ("Long short-term memory and learning-to-learn in networks of
spiking neurons", NeurIPS 2018; Nat. Commun. 11:3625, 2020), the neuron of the recurrent nets that do best on
speech spikes, written in our discrete convention: a spike raises the threshold by ``beta``, which decays by
``rho`` per step, so a neuron driven hard fires ever more slowly. ``beta = 0`` is the plain LIF.

The update is a step loop in PyTorch (autograd stores each step): the threshold depends on the neuron's own past
spikes, so the fused LIF kernel cannot run it. On bfloat16 / float16 input the state ``(v, a)`` and the arithmetic
are float32 (as the LIF's low-precision kernels keep theirs) and the spikes come back in the input's dtype. Inside
``neurons.carry.temporal_carry`` ``(v, a)`` is carried (``CarriesState``); the neuron reports its spike count to an
active tally (``ReportsSpikes``). It keeps its LIF settings as ``fixed`` (no ``params``: OTTT's traces and the
hardware mappings do not mistake it for a LIF), and refuses ``leak_grad=False`` (lee2020's option of the plain LIF)
in one line.
"""

from __future__ import annotations

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.options import FLOAT32_MAX, is_float32
from deepspike.core.precision import LOW_PRECISION
from deepspike.core.spike_tally import ReportsSpikes
from deepspike.neurons.carry import CarriesState
from deepspike.neurons.dynamics import check_currents, check_initial_state, reset_membrane
from deepspike.neurons.params import NeuronParams
from deepspike.neurons.state_quant import refuse_state_quant
from deepspike.neurons.update_cost import kept_sum_ops, membrane_ops, plus


def adaptive_step(
    x: torch.Tensor, v: torch.Tensor | None, a: torch.Tensor | None, params: NeuronParams, rho: float, beta: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of the module docstring: ``x [B, ...]``, ``v``, ``a`` (``[B, ...]`` or None for zeros) ->
    ``(s_t, v_t, a_t)``, each ``[B, ...]``."""
    h, theta = charge_and_threshold(x, v, a, params, beta)
    s = params.spike_fn(h - theta)
    return s, reset_membrane(h, s, theta, params), s if a is None else rho * a + s


def charge_and_threshold(
    x: torch.Tensor, v: torch.Tensor | None, a: torch.Tensor | None, params: NeuronParams, beta: float
) -> tuple[torch.Tensor, torch.Tensor | float]:
    """``(h_t, theta_t)`` of one step: ``h_t = k v_{t-1} + x_t``, ``theta_t = th + beta a_{t-1}`` (``v``, ``a``
    None: zeros); shapes ``[B, ...]``."""
    h = x if v is None else params.decay * v + x
    return h, params.threshold if a is None else params.threshold + beta * a


def is_adaptation(rho: object, beta: object) -> bool:
    """Whether ``(adapt_decay, adapt_scale)`` are valid: ``rho`` a number in [0, 1], ``beta`` a number in
    ``[0, FLOAT32_MAX]`` (the threshold is float32: a larger ``beta`` is inf there, and ``inf * a`` is NaN where the
    trace ``a`` is 0)."""
    return all(is_float32(z) for z in (rho, beta)) and 0.0 <= rho <= 1.0 and beta >= 0.0


class AdaptiveLIF(CarriesState, ReportsSpikes, nn.Module):
    """Adaptive-threshold LIF layer (module docstring): ``params`` give the LIF's decay ``k``, base threshold ``th``,
    reset, surrogate and ``detach_reset``; ``adapt_decay`` is ``rho``, ``adapt_scale`` is ``beta``."""

    is_spiking_neuron = True  # output [T, B, ...] is spikes (analysis.activity)

    def __init__(self, params: NeuronParams, adapt_decay: float = 0.9, adapt_scale: float = 0.2) -> None:
        super().__init__()
        if not is_adaptation(adapt_decay, adapt_scale):
            raise ConfigError(f"adapt_decay={adapt_decay!r} must be a number in [0, 1] and adapt_scale="
                              f"{adapt_scale!r} a number in [0, {FLOAT32_MAX:.4g}]")
        if not params.leak_grad:
            raise ConfigError("an adaptive LIF needs leak_grad=True (its gradient runs through the leak)")
        refuse_state_quant(params.state_quant, "an adaptive LIF")
        self.fixed = params
        self.adapt_decay, self.adapt_scale = float(adapt_decay), float(adapt_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_currents(x)
        v, a = self.carried() or (None, None)
        check_initial_state(v, x)
        low = x.dtype in LOW_PRECISION  # bfloat16 / float16: the state and arithmetic in float32, as the LIF's
        steps = []
        for x_t in x.unbind(0):  # one backward node for all steps (indexing x[t] would fill a zero [T, ...]
            # gradient per step in backward)
            s, v, a = adaptive_step(x_t.float() if low else x_t, v, a, self.fixed, self.adapt_decay, self.adapt_scale)
            steps.append(s)
        self.keep((v, a))
        s = torch.stack(steps).to(x.dtype) if steps else x * 0
        return self.reported(s)

    def slope(self, x: torch.Tensor, state: tuple | None) -> torch.Tensor:
        """``psi_t = sigma'(h_t - theta_t)``, the surrogate derivative of the spike of the step with input ``x``
        ``[..., B, ...]`` from the carried ``(v_{t-1}, a_{t-1})`` (None: rest), detached; float32 for a
        low-precision ``x`` (the state's dtype). E-prop's eligibility traces read it (``training.eprop``)."""
        v, a = state or (None, None)
        x = x.detach().float() if x.dtype in LOW_PRECISION else x.detach()
        h, theta = charge_and_threshold(x, v, a, self.fixed, self.adapt_scale)
        return self.fixed.spike_fn.derivative(h - theta)

    def membrane(self, state: tuple) -> torch.Tensor:
        """``v_t`` of the carried ``(v, a)``."""
        return state[0]

    def threshold_at(self, step: torch.Tensor, state: tuple | None) -> float | torch.Tensor:
        """``theta_t = th + beta a_{t-1}`` from the carried ``(v_{t-1}, a_{t-1})`` (``th`` at the first step)."""
        return self.fixed.threshold if state is None else self.fixed.threshold + self.adapt_scale * state[1]

    def update_ops(self) -> tuple[int, int]:
        """(MACs, ACs) per neuron and step (``neurons.update_cost``): the LIF's membrane and threshold test, plus
        ``theta_t = th + beta a_{t-1}`` (a MAC; nothing for ``beta = 0``) and ``a_t = rho a_{t-1} + s_t``
        (``kept_sum_ops(rho)``)."""
        return plus(membrane_ops(self.fixed.decay), (1 if self.adapt_scale else 0, 0), kept_sum_ops(self.adapt_decay))

    def extra_repr(self) -> str:
        p = self.fixed
        return (f"adapt_decay={self.adapt_decay:g}, adapt_scale={self.adapt_scale:g}, decay={p.decay:g}, "
                f"threshold={p.threshold:g}, reset={p.reset!r}, surrogate={p.spike_fn!r}")

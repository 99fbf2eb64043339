"""``SynapticLIF``: the current-based (second-order) LIF, whose input is filtered by a decaying synaptic current.

``x [T, B, ...] -> s [T, B, ...]``, ``i_0 = v_0 = 0``::

    i_t = alpha i_{t-1} + x_t                               synaptic current   (alpha = syn_decay)
    h_t = k v_{t-1} + i_t,   s_t = H(h_t - th),   v_t = reset(h_t, s_t)         the LIF of ``neurons.dynamics``

This is NIR's ``CubaLIF`` (``tau_syn i' = -i + w_in x``, ``tau_mem v' = v_leak - v + r i``) under forward Euler
with ``alpha = 1 - dt/tau_syn`` and ``k = 1 - dt/tau_mem``, snnTorch's ``Synaptic`` and the current-based LIF of
Norse's ``LIFCell``. A single input spike gives the post-synaptic potential ``sum_{u<=t} alpha^u k^(t-u)``, a
difference of exponentials, instead of the LIF's one exponential: the neuron remembers its input for longer.

The current never depends on the spikes, so it is computed for all T steps at once (``synaptic_current``, a
linear scan whose backward is the reverse scan ``g_t = dL/di_t + alpha g_{t+1}``, ``dL/dx_t = g_t``), and the
membrane is then the plain LIF of ``neuron_multistep`` on ``i`` (fused kernels where they run, writing the spikes
over ``i``, which is a fresh tensor). Memory: the current ``[T, B, ...]`` beyond what the LIF needs.

Inside ``neurons.carry.temporal_carry`` both ``v`` and ``i`` are carried (``CarriesState``; in float32 on bfloat16 /
float16 input, as one call keeps them from step to step, so a run in pieces gives one call's spikes); the neuron
reports its spike count to an active tally (``ReportsSpikes``). It has no ``params`` attribute (the LIF's settings
are kept as ``fixed``), so nothing that maps ``SpikingNeuron``-like modules to a plain LIF (OTTT's traces, hardware
mappings) mistakes it for one.
"""

from __future__ import annotations

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_finite
from deepspike.core.precision import LOW_PRECISION
from deepspike.core.spike_tally import ReportsSpikes
from deepspike.neurons.carry import CarriesState
from deepspike.neurons.dynamics import check_currents, check_initial_state, neuron_multistep
from deepspike.neurons.fused_low_precision import carried_start
from deepspike.neurons.params import NeuronParams
from deepspike.neurons.update_cost import kept_sum_ops, membrane_ops, plus


def is_syn_decay(value: object) -> bool:
    """Whether ``value`` is a valid synaptic decay ``alpha``: a finite number in [0, 1] (``1 - dt/tau_syn``)."""
    return is_finite(value) and 0.0 <= value <= 1.0


class _SynapticCurrent(torch.autograd.Function):
    """``i_t = alpha i_{t-1} + x_t`` over ``x [T, B, ...]`` from ``i0 [B, ...]``; returns ``i [T, B, ...]``.
    Backward: ``g_t = dL/di_t + alpha g_{t+1}`` (``g_T = 0``), ``dL/dx_t = g_t``, ``dL/di0 = alpha g_0``; nothing
    is saved. On bfloat16 / float16 the running sum (``i``, ``g``) is float32 and each step's value is rounded once
    into the output, as the LIF's low-precision kernels keep a float32 membrane."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, i0: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.alpha = alpha
        return _scan(x, i0, alpha)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        zeros = grad.new_zeros(grad.shape[1:])
        grad_x = _scan(grad, zeros, ctx.alpha, reverse=True)
        return grad_x, (grad_x[0] if grad.shape[0] else zeros) * ctx.alpha, None


def _scan(x: torch.Tensor, start: torch.Tensor, alpha: float, reverse: bool = False) -> torch.Tensor:
    """``y_t = alpha y_{t-1} + x_t`` over ``x [T, ...]`` from ``y_{-1} = start [...]`` (``reverse``: ``y_t = alpha
    y_{t+1} + x_t`` from ``y_T = start``) -> ``y [T, ...]`` in ``x``'s dtype; the running value is float32 for
    bfloat16 / float16 ``x``. Under autograd (the backward's scan with ``create_graph=True``) the steps are stacked
    out of place, so that the scan is differentiated: the current is twice differentiable."""
    if torch.is_grad_enabled() and (x.requires_grad or start.requires_grad):
        return _recorded_scan(x, start, alpha, reverse)
    out = torch.empty_like(x)
    low = x.dtype in LOW_PRECISION
    running = start.float() if low else start
    steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    for t in steps:
        if low:
            running = torch.add(x[t].float(), running, alpha=alpha)
            out[t].copy_(running)
        else:
            running = torch.add(x[t], running, alpha=alpha, out=out[t])
    return out


def _recorded_scan(x: torch.Tensor, start: torch.Tensor, alpha: float | torch.Tensor, reverse: bool) -> torch.Tensor:
    """``_scan`` in out-of-place steps that autograd records (float32 running value on low precision)."""
    low = x.dtype in LOW_PRECISION
    running, values = start.float() if low else start, []
    for x_t in reversed(x.unbind(0)) if reverse else x.unbind(0):
        running = (x_t.float() if low else x_t) + alpha * running
        values.append(running.to(x.dtype))
    return torch.stack(values[::-1] if reverse else values) if values else torch.empty_like(x)


def synaptic_current(x: torch.Tensor, alpha: float, i0: torch.Tensor | None = None) -> torch.Tensor:
    """The synaptic current ``i [T, B, ...]`` of inputs ``x [T, B, ...]``: ``i_t = alpha i_{t-1} + x_t`` from
    ``i_0 = i0`` (zeros when None; else of one step's shape ``[B, ...]``, a one-line ``ConfigError`` otherwise);
    ``alpha`` in [0, 1]. Differentiable in ``x`` and ``i0``."""
    if not is_syn_decay(alpha):
        raise ConfigError(f"syn_decay={alpha!r} must be a number in [0, 1] (1 - dt/tau_syn)")
    check_initial_state(i0, x, "synaptic current")
    if i0 is None:
        i0 = x.new_zeros(x.shape[1:])
    return _SynapticCurrent.apply(x, i0, float(alpha))


def per_neuron_current(x: torch.Tensor, alpha: torch.Tensor, i0: torch.Tensor | None = None) -> torch.Tensor:
    """``synaptic_current`` with ``alpha`` a tensor broadcasting against one step ``[B, ...]`` (one synaptic decay per
    neuron or channel, each in [0, 1]: the caller checks them): ``i_t = alpha * i_{t-1} + x_t`` in out-of-place steps
    that autograd records (differentiable in ``x`` and ``i0``) -> ``[T, B, ...]``."""
    check_initial_state(i0, x, "synaptic current")
    return _recorded_scan(x, x.new_zeros(x.shape[1:]) if i0 is None else i0, alpha, reverse=False)


class SynapticLIF(CarriesState, ReportsSpikes, nn.Module):
    """Current-based LIF layer (module docstring): ``params`` give the membrane's ``decay`` ``k``, threshold, reset,
    surrogate and gradient options exactly as for ``LIF``; ``syn_decay`` is the current's ``alpha`` in [0, 1]
    (0: the plain LIF)."""

    is_spiking_neuron = True  # output [T, B, ...] is spikes (analysis.activity)

    def __init__(self, params: NeuronParams, syn_decay: float = 0.5) -> None:
        super().__init__()
        if not is_syn_decay(syn_decay):
            raise ConfigError(f"syn_decay={syn_decay!r} must be a number in [0, 1] (1 - dt/tau_syn)")
        self.fixed = params
        self.syn_decay = float(syn_decay)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_currents(x)
        v0, i0 = self.carried() or (None, None)
        # carried on bfloat16 / float16: the current in float32, so that the kept i_T is the scan's float32 running
        # value (one call keeps it from step to step), and the LIF's float32 membrane (``carried_start``)
        wide = self.carry is not None and x.dtype in LOW_PRECISION
        current = synaptic_current(x.float() if wide else x, self.syn_decay, i0)
        i_end = None
        if self.carry is not None:  # copied: the LIF below writes its spikes over ``current``
            i_end = current[-1].clone() if current.shape[0] else i0
            current = current.to(x.dtype)  # the LIF's input rounded as one call rounds it (a no-op unless wide)
            v0 = self._start(current, v0)
        s, v = self._fire(current, v0)
        self.keep((v, i_end))
        return self.reported(s)

    def _start(self, current: torch.Tensor, v0: torch.Tensor | None) -> torch.Tensor | None:
        """The initial membrane of a carried call on the LIF's input ``current [T, B, ...]`` (``carried_start``)."""
        return carried_start(current, self.fixed, v0)

    def _fire(self, current: torch.Tensor, v0: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The LIF on ``current [T, B, ...]`` from ``v0``: ``(s [T, B, ...], v_T [B, ...])`` (may write over
        ``current``)."""
        return neuron_multistep(current, self.fixed, v0=v0, inplace=True)

    def membrane(self, state: tuple) -> torch.Tensor:
        """``v_t`` of the carried ``(v, i)``."""
        return state[0]

    def threshold_at(self, step: torch.Tensor, state: tuple | None) -> float:
        """The membrane's fixed threshold."""
        return self.fixed.threshold

    def update_ops(self) -> tuple[int, int]:
        """(MACs, ACs) per neuron and step (``neurons.update_cost``): ``i_t = alpha i_{t-1} + x_t``, then the LIF's
        ``h_t = k v_{t-1} + i_t`` and threshold test."""
        return plus(kept_sum_ops(self.syn_decay), membrane_ops(self.fixed.decay))

    def extra_repr(self) -> str:
        p = self.fixed
        quant = "" if p.state_quant is None else f", state_quant={p.state_quant.describe()}"
        return (f"syn_decay={self.syn_decay:g}, decay={p.decay:g}, threshold={p.threshold:g}, reset={p.reset!r}, "
                f"surrogate={p.spike_fn!r}{quant}")

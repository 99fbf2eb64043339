"""lee2020's LIF neuron with the leak-corrected approximate derivative, as one autograd Function over T.

Forward (lee2020 Algorithm 1; the original code): for input currents ``x [T, B, ...]`` and ``v_0 = 0``::

    h_t = leak * v_{t-1} + x_t          integrate (leak = exp(-1/tau_m), 0.99 for tau_m = 100 steps)
    s_t = 1[h_t > V_th]                 fire (strictly above, as in lee2020's text and code)
    v_t = h_t * (1 - s_t)               hard reset to zero

Backward (not BPTT: no autograd graph is kept inside the sequence). With the spike count and the leaky
filtered spike train at the end of the window (t = 1..T)::

    count = sum_t s_t                   LF = sum_t leak^(T - t) s_t        (f(T) of eq. 19, leak = e^(-1/tau_m))
    NG    = 1[count > 0] + ln(leak) * LF / count                          (eq. 22 as computed in the code)
    a'    = NG / V_th                                                     (1/V_th (1 + f'(T)/gamma))

since ``f'(t) = -(1/tau_m) f(t) = ln(leak) f(t)`` and ``gamma = count``. A neuron that never fired has
``a' = 0``: lee2020's text ("If a hidden neuron does not fire any spike, the derivative of corresponding neuronal
activation is set to zero", section 3.1), so the gate is ``count > 0``. Its released code gates on ``LF > 1e-3``
instead, which also zeroes a neuron whose spikes all lie more than ``ln(1e-3) / ln(leak)`` steps before the end of the
window (687 at leak 0.99, beyond its T = 100; 66 at leak 0.9); here such a neuron keeps ``a' = (1 + ln(leak) LF /
count) / V_th``, about ``1 / V_th``, as does one whose float32 LF underflows to 0. As ``LF <= count``,
``NG >= 1 + ln(leak)``: non-negative for ``leak >= 1/e`` (``LEAK_CORRECTION_LOW``; lee2020's ``tau_m`` is 100 steps,
leak 0.99); below it a neuron whose one spike is the last step's gets a negative ``a'``, which method ``spikebp``
refuses. The derivative is then spread over the time steps in one of two ways (``derivative``):

* ``"code"`` (default; lee2020's released code): the gradient enters the input current only through
  the steps where the neuron fired; a silent step t inherits the gradient of the next firing step,
  because its charge is what that spike was made of, and a reset cuts the chain::

      grad_x_t = a' * grad_s_{tau(t)},   tau(t) = first step >= t with s = 1 (grad_x_t = 0 if none)

  This is what autograd computes on the code's per-step graph (``ex = threshold(v, V_th)``, reset
  ``v - ex``, spike gradient only where ``ex > 0``, leak detached, NG hooked onto the spike gradient).
* ``"rate"`` (the paper's eq. 23-26): the layer is a rate unit ``a = count``, ``net = sum_t x_t``, so every
  step gets the same ``grad_x_t = a' * (1/T) sum_t grad_s_t`` (equal to ``a' dE/da`` when the next
  layer sees the spike train only through its rate).

With ``leak = 1`` and ``leak_correction=False``, ``a' = grad_scale`` for every neuron that fired: this is
the spiking average-pooling neuron (``layers.spiking_pool``).

On CPU float32 with numba (and ``DEEPSPIKE_FUSED`` not ``0``/``false``/``off``/``no``) the time loops run in one
compiled call each (``layers.spikebp_kernels``), with the same spikes and gradients as the torch loops here; backward
keeps the spikes as uint8. Input checks, empty inputs and NaN as for every neuron (``deepspike.neurons.dynamics``):
a NaN current gives NaN spikes from that step on (the saved uint8 spikes hold 0 there).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from deepspike.core.compile_support import eager_under_compile
from deepspike.core.errors import ConfigError, unknown_choice
from deepspike.core.options import is_finite, is_float32
from deepspike.core.precision import LOW_PRECISION
from deepspike.core.spike_tally import ReportsSpikes
from deepspike.core.threads import run_numba_kernel
from deepspike.neurons.carry import CarriesState
from deepspike.neurons.dynamics import check_currents, check_initial_state
from deepspike.neurons.fused import kernel_ready
from deepspike.neurons.params import THRESHOLD_LOW
from deepspike.neurons.update_cost import membrane_ops

DERIVATIVES = ("code", "rate")
# the least leak whose eq. 22 derivative 1 + ln(leak) LF / count stays >= 0 (LF <= count: LF / count = 1 for one spike
# at the last step); below it (tau_m < 1 step) the correction outweighs the straight-through term (spikebp refuses)
LEAK_CORRECTION_LOW = math.exp(-1.0)


def check_spikebp_neuron(leak: float, threshold: float, where: str = "spikebp") -> None:
    """``ConfigError`` unless ``leak`` is a number in (0, 1] and ``threshold`` a number from float32's smallest normal
    to its largest (``neurons.params.THRESHOLD_LOW``, ``FLOAT32_MAX``) that a float32 membrane compares with
    (``where`` names the neuron in the message): ``LeakCorrectedLIF``, ``leak_corrected_lif`` and the pooling neuron
    (``layers.spiking_pool``) share it."""
    if not (is_finite(leak) and 0.0 < leak <= 1.0):
        raise ConfigError(f"{where} leak={leak!r} must be a number in (0, 1]; leak = exp(-1/tau_m)")
    if not (is_float32(threshold) and threshold >= THRESHOLD_LOW):  # the backward divides by it: 1e-39 made NaNs
        raise ConfigError(f"{where} threshold={threshold!r} must be a finite number > 0 (at least float32's smallest "
                          f"normal {THRESHOLD_LOW:.4g})")


def negative_derivative(leak: float, correction: bool, leak_name: str, correction_name: str) -> str | None:
    """The one-line reason a ``leak`` below ``LEAK_CORRECTION_LOW`` with the ``correction`` on cannot train (eq. 22's
    derivative turns negative there and flips the gradient), naming the options ``leak_name`` and ``correction_name``;
    None where it can."""
    if not correction or leak >= LEAK_CORRECTION_LOW:
        return None
    return (f"{leak_name}={leak!r} is below 1/e = {LEAK_CORRECTION_LOW:.4f} (tau_m under 1 step), where lee2020's "
            f"eq. 22 derivative 1 + ln(leak) LF / count turns negative (down to {1 + math.log(leak):.4g} for a neuron "
            f"whose one spike is the last step's) and flips the gradient: use {leak_name} >= "
            f"{LEAK_CORRECTION_LOW:.4f} or {correction_name}: false")


def leak_filter(spikes: torch.Tensor, leak: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(LF, count)``: ``LF = sum_t leak^(T-t) s_t`` (t = 1..T) and ``count = sum_t s_t``.

    spikes ``[T, B, ...]`` -> two tensors ``[B, ...]`` (float32). The last step has weight ``leak^0 = 1``. Outside
    autocast: under train.precision=bf16 the product ran in bfloat16 (powers and LF rounded, ``a'`` up to 2.7e-4 off).
    """
    t = spikes.shape[0]
    powers = leak ** torch.arange(t - 1, -1, -1, dtype=torch.float64)  # [T]: leak^(T-1) .. leak^0
    with torch.autocast(spikes.device.type, enabled=False):
        lf = torch.tensordot(powers.to(spikes.device, torch.float32), spikes.float(), dims=([0], [0]))
    return lf, spikes.float().sum(dim=0)


def leak_corrected_derivative(spikes: torch.Tensor, leak: float, threshold: float = 1.0,
                              correction: bool = True) -> torch.Tensor:
    """``a' = (1[count > 0] + ln(leak) LF / count) / V_th`` per neuron (module docstring; the gate is lee2020's text's,
    not its code's ``LF > 1e-3``), ``[T, B, ...] -> [B, ...]``.

    Without ``correction``: ``a' = 1[count > 0] / V_th`` (straight-through IF derivative, eq. 13).
    """
    lf, count = leak_filter(spikes, leak)
    fired = (count > 0).to(lf.dtype)
    if not correction or leak == 1.0:
        return fired / threshold
    return (fired + math.log(leak) * lf / count.clamp_min(1.0)) / threshold


def _kernels():
    """``layers.spikebp_kernels`` (imported on first use: numba is slow to load)."""
    from deepspike.neurons import spikebp_kernels

    return spikebp_kernels


def _forward_reference(x: torch.Tensor, leak: float, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The time loop in torch: ``x [T, B, ...] -> (spikes as x.dtype, NaN for a NaN membrane; spikes as
    uint8)``."""
    spikes, mask, _ = _steps(x, leak, threshold, x.new_zeros(x.shape[1:]))
    return spikes, mask


def _steps(x: torch.Tensor, leak: float, threshold: float,
           v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``_forward_reference`` from the membrane ``v [B, ...]``: ``(spikes, spikes as uint8, v_T)``."""
    spikes = torch.empty_like(x)
    mask = torch.empty(x.shape, dtype=torch.uint8, device=x.device)  # [T, B, ...]
    for t in range(x.shape[0]):
        h = x[t] + leak * v  # two float32 roundings, as the kernel
        fired = h > threshold
        mask[t] = fired
        torch.where(torch.isnan(h), h, fired, out=spikes[t])
        v = h.masked_fill(fired, 0.0)
    return spikes, mask, v


class RunsInPiecesForInference(CarriesState):
    """lee2020's neurons inside ``neurons.carry.temporal_carry``: each call continues from the membrane the call
    before ended with (``h_t = leak v_{t-1} + x_t``, the same loop), so a net of them streams one step at a time
    (``methods.streaming``). Only without gradients: their derivative is taken from each neuron's spikes over the
    whole window (``trains_on_whole_sequences``, which ``train.temporal_grad`` other than bptt refuses)."""

    trains_on_whole_sequences = "lee2020's leak-corrected derivative is taken from each neuron's spikes over the window"

    def membrane(self, state: torch.Tensor) -> torch.Tensor:
        """The carried membrane ``v_t`` (after the reset), ``[B, ...]`` (``analysis.traces`` reads it)."""
        return state

    def threshold_at(self, step: torch.Tensor, state: torch.Tensor | None) -> float:
        """The threshold the charge ``h_t`` is tested against (strictly: a spike when ``h_t > threshold``)."""
        return float(self.threshold)

    def spikes_in_pieces(self, x: torch.Tensor, leak: float, threshold: float) -> torch.Tensor:
        """Spikes ``[T, B, ...]`` of currents ``x [T, B, ...]`` from the carried membrane (zeros at the start)."""
        if torch.is_grad_enabled() and x.requires_grad:
            raise ConfigError(f"{type(self).__name__} runs in pieces only without gradients (streaming): "
                              f"{self.trains_on_whole_sequences}")
        check_currents(x)
        wide = x.float() if x.dtype in LOW_PRECISION else x  # a float32 membrane, as in the whole-window call
        v0 = self.carried()
        check_initial_state(v0, wide)  # a batch of another size inside temporal_carry (else a RuntimeError)
        spikes, _, v = _steps(wide, leak, threshold, wide.new_zeros(wide.shape[1:]) if v0 is None else v0)
        self.keep(v)
        return spikes.to(x.dtype)


def _forward_kernel(x: torch.Tensor, leak: float, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``_forward_reference`` in one numba call (``spikebp_kernels.forward``)."""
    t = x.shape[0]
    x2 = x.detach().contiguous().view(t, -1)  # [T, B, ...] -> [T, N]
    s, mask = torch.empty_like(x2), torch.empty(x2.shape, dtype=torch.uint8)
    run_numba_kernel(_kernels().forward, x2.numpy(), s.numpy(), mask.numpy(), np.float32(leak), np.float32(threshold))
    return s.view(x.shape), mask.view(x.shape)


def _backward_code(mask: torch.Tensor, grad: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Reverse scan ``c_t = s_t ? a' g_t : c_{t+1}`` (module docstring): ``[T, B, ...] -> [T, B, ...]``. A ``grad``
    that requires grad (``create_graph=True``) takes the torch loop, which autograd differentiates."""
    if kernel_ready(grad) and not grad.requires_grad:
        t = grad.shape[0]
        g2 = grad.contiguous().view(t, -1)  # [T, B, ...] -> [T, N]
        out = torch.empty_like(g2)
        run_numba_kernel(_kernels().backward_code, mask.view(t, -1).numpy(), g2.numpy(),
                         scale.contiguous().view(-1).numpy(), out.numpy())
        return out.view(grad.shape)
    out = torch.empty_like(grad)
    carry = grad.new_zeros(grad.shape[1:])
    fired = mask.bool()
    for t in range(grad.shape[0] - 1, -1, -1):  # reverse scan: a silent step inherits the next spike's
        carry = torch.where(fired[t], grad[t] * scale, carry)
        out[t] = carry
    return out


class _LeakCorrectedLIF(torch.autograd.Function):
    """``x [T, B, ...] -> spikes``; saves the spikes as uint8 and the per-neuron derivative ``a' [B, ...]``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, leak: float, threshold: float, correction: bool, derivative: str,
                grad_scale: float) -> torch.Tensor:
        wide = x.float() if x.dtype in LOW_PRECISION else x  # a float32 membrane on a bfloat16 / float16 input
        forward = _forward_kernel if kernel_ready(wide) else _forward_reference
        spikes, mask = forward(wide, leak, threshold)
        spikes = spikes.to(x.dtype)  # 0, 1 (and NaN) are exact in every float format
        scale = leak_corrected_derivative(mask, leak, 1.0, correction) * grad_scale  # NG * (1/V_th)
        ctx.save_for_backward(mask, scale.to(x.dtype))
        ctx.derivative = derivative
        return spikes

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        # linear in grad, with mask and scale fixed by the forward: under create_graph=True autograd records it
        # (``_backward_code`` then takes its torch loop), and the derivative in x of this pseudo-gradient is 0
        mask, scale = ctx.saved_tensors  # [T, B, ...] uint8, [B, ...]
        if ctx.derivative == "rate":
            g = grad.mean(dim=0) * scale  # [B, ...]
            return g.unsqueeze(0).expand_as(grad).clone(), None, None, None, None, None
        return _backward_code(mask, grad, scale), None, None, None, None, None


@eager_under_compile  # under torch.compile: one graph break, the autograd Function run eagerly
def leak_corrected_lif(x: torch.Tensor, leak: float = 0.99, threshold: float = 1.0, correction: bool = True,
                       derivative: str = "code", grad_scale: float | None = None) -> torch.Tensor:
    """Spikes ``[T, B, ...]`` of lee2020's LIF for currents ``x [T, B, ...]`` (module docstring).

    ``grad_scale`` replaces the ``1/V_th`` factor of the derivative (the pooling neuron uses 1). A gradient through a
    ``leak`` below ``LEAK_CORRECTION_LOW`` with the ``correction`` on (an ``x`` that requires grad, grad mode on) is a
    one-line ``ConfigError`` (``negative_derivative``): a net of such a leak (a run saved before ``spikebp`` refused
    it) loads and runs without gradients, but does not train.
    """
    if derivative not in DERIVATIVES:
        raise unknown_choice("spikebp derivative", derivative, DERIVATIVES)
    check_spikebp_neuron(leak, threshold)
    check_currents(x)
    reason = negative_derivative(leak, correction, "leak", "correction") if torch.is_grad_enabled() else None
    if reason and x.requires_grad:  # a saved net of such a leak still runs without gradients (under torch.no_grad())
        raise ConfigError(f"lee2020's leak-corrected LIF takes no gradient here: {reason} (or run it under "
                          "torch.no_grad())")
    scale = 1.0 / threshold if grad_scale is None else grad_scale
    return _LeakCorrectedLIF.apply(x, float(leak), float(threshold), bool(correction), derivative, float(scale))


class LeakCorrectedLIF(RunsInPiecesForInference, ReportsSpikes, nn.Module):
    """Hidden-layer neuron of ``spikebp`` (lee2020): currents ``x [T, B, ...] -> spikes s [T, B, ...]``.

    Forward ``h_t = leak v_{t-1} + x_t``, ``s_t = 1[h_t > threshold]``, ``v_t = h_t (1 - s_t)``; backward the
    leak-corrected derivative ``a' = (1[count > 0] + ln(leak) LF / count) / threshold`` (module docstring, lee2020
    eq. 22), ``correction=False`` dropping the ``ln(leak)`` term; via ``leak_corrected_lif``.
    """

    is_spiking_neuron = True

    def __init__(self, leak: float = 0.99, threshold: float = 1.0, correction: bool = True,
                 derivative: str = "code") -> None:
        super().__init__()
        check_spikebp_neuron(leak, threshold)
        if derivative not in DERIVATIVES:
            raise unknown_choice("spikebp derivative", derivative, DERIVATIVES)
        self.leak, self.threshold, self.correction, self.derivative = leak, threshold, correction, derivative

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.carry is not None:  # streaming (RunsInPiecesForInference)
            return self.reported(self.spikes_in_pieces(x, self.leak, self.threshold))
        s = leak_corrected_lif(x, self.leak, self.threshold, self.correction, self.derivative)
        return self.reported(s)

    def update_ops(self) -> tuple[int, int]:
        """(MACs, ACs) per neuron and step (``neurons.update_cost``): ``h_t = leak v_{t-1} + x_t``, ``h_t >
        V_th``."""
        return membrane_ops(self.leak)

    def extra_repr(self) -> str:
        return (f"leak={self.leak:g}, threshold={self.threshold:g}, correction={self.correction}, "
                f"derivative={self.derivative!r}")

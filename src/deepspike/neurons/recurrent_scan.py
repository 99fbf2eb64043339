"""Recurrent IF/LIF over all T steps in one autograd node: the feedback matmul inside the neuron's time loop.

For feed-forward currents ``c [T, B, M]``, feedback weight ``V [M, M]`` and bias ``b [M]`` (optional)::

    I_t = c_t + V s_{t-1} + b                    (s_{-1} = s0, zeros by default)
    h_t = k v_{t-1} + I_t                        (v_{-1} = v0, zeros by default)
    s_t = H(h_t - th),   v_t = reset(h_t, s_t)   (``neurons.dynamics``: zero, subtract or none)

This is what ``layers.recurrent.RecurrentSpiking`` computes by calling its neuron one step at a time (the
reference, and the path for every other neuron); here one ``torch.autograd.Function`` runs the loop without
building a graph and saves only ``h`` (the spikes are ``H(h - th)`` again in backward). Its backward is the BPTT
recursion written out, with ``G_t = dL/dh_t`` and ``k' = k`` (``1`` when ``leak_grad`` is off)::

    dL/ds_t = g_t + G_{t+1} V                      (g_t: the gradient arriving at the output spikes)
    G_t     = k' G_{t+1} P_t + (g_t + G_{t+1} V) h'_t
    P_t     = dv_t/dh_t + (dv_t/ds_t) h'_t         (zero: 1 - s_t - h_t h'_t; subtract: 1 - th h'_t; none: 1;
                                                    with ``detach_reset`` the ``dv_t/ds_t`` term is dropped)
    dL/dc_t = G_t,   dL/dV = sum_t G_t^T s_{t-1},   dL/db = sum_{t, B} G_t,
    dL/dv0 = k' G_0, dL/ds0 = G_0 V

with ``h'_t`` the surrogate derivative at ``h_t - th``. The spikes, ``P`` and ``h'`` are formed for ``CHUNK`` steps
at a time (the extra memory does not grow with T), so a step of the backward loop is one ``addmm`` and two
elementwise ops, and ``dL/dV`` is one GEMM per chunk. Per step the autograd loop instead records the feedback
layer, an addition and a neuron call, and forms ``dL/dV`` from T small products.

Float32 and float64 on any device; no ``state_quant`` (its rounding is the neuron's own loop); double backward
(``create_graph=True``) is refused in one line.
"""

from __future__ import annotations

import torch

from deepspike.core.first_order import first_order_backward
from deepspike.neurons.dynamics import check_initial_state, reset_membrane
from deepspike.neurons.params import NeuronParams
from deepspike.neurons.surrogate import heaviside

SCAN_DTYPES = (torch.float32, torch.float64)
CHUNK = 16  # steps whose surrogate slopes and membrane Jacobians the backward forms at once


def scan_supported(currents: torch.Tensor, weight: torch.Tensor, params: NeuronParams) -> bool:
    """Whether ``recurrent_multistep`` runs ``currents [T, B, M]`` with ``weight [M, M]``: float32 or float64 tensors
    of one dtype and device, at least one step, outside autocast (which would run the feedback in another
    precision), float membranes (no ``state_quant``)."""
    return (currents.dtype in SCAN_DTYPES and weight.dtype == currents.dtype and weight.device == currents.device
            and currents.dim() == 3 and currents.shape[0] > 0 and params.state_quant is None
            and not torch.is_autocast_enabled(currents.device.type))


def recurrent_multistep(currents: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                        params: NeuronParams, v0: torch.Tensor | None = None,
                        s0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The recurrent neuron of the module docstring: ``(spikes [T, B, M], v_T [B, M])`` for ``currents [T, B, M]``,
    ``weight [M, M]``, ``bias [M]`` or None, post-reset membrane ``v0 [B, M]`` and spikes ``s0 [B, M]`` of the step
    before (None: zeros). Differentiable in ``currents``, ``weight``, ``bias``, ``v0`` and ``s0``."""
    check_initial_state(v0, currents)
    check_initial_state(s0, currents, "spikes")
    return _RecurrentScan.apply(currents, weight, bias, v0, s0, params)


class _RecurrentScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, currents, weight, bias, v0, s0, params):
        spikes, h, v = _scan_forward(currents, weight, bias, v0, s0, params)
        ctx.params = params
        ctx.has = (v0 is not None, bias is not None)
        ctx.save_for_backward(h, weight, s0)  # the spikes are H(h - th), recomputed in backward
        return spikes, v

    @staticmethod
    @first_order_backward("the recurrent scan (neurons.recurrent_scan); set DEEPSPIKE_FUSED=0 for the recurrent "
                          "layer's step loop under autograd")
    def backward(ctx, g_spikes, g_v):
        h, weight, s0 = ctx.saved_tensors
        has_v0, has_bias = ctx.has
        p = ctx.params
        k = p.decay if p.leak_grad else 1.0
        g_h, g_weight = _scan_backward(h, weight, s0, g_spikes, g_v, p, k)  # dL/dh_t = dL/dc_t  [T, B, M]
        g_bias = g_h.sum((0, 1)) if has_bias else None
        g_v0 = g_h[0] * k if has_v0 else None
        g_s0 = g_h[0] @ weight if s0 is not None else None
        return g_h, g_weight, g_bias, g_v0, g_s0, None


def _scan_forward(currents, weight, bias, v0, s0, params: NeuronParams):
    """The forward loop without a graph: ``(spikes, h, v_T)``, spikes and ``h`` ``[T, B, M]``."""
    steps, batch, m = currents.shape
    spikes, h = torch.empty_like(currents), torch.empty_like(currents)
    inputs = currents if bias is None else currents + bias  # c_t + b
    v = currents.new_zeros(batch, m) if v0 is None else v0
    previous = currents.new_zeros(batch, m) if s0 is None else s0
    weight_t = weight.t()
    for t in range(steps):
        h_t = torch.addmm(inputs[t], previous, weight_t, out=h[t])  # I_t = c_t + b + V s_{t-1}
        h_t.add_(v, alpha=params.decay)  # h_t = k v_{t-1} + I_t
        previous = heaviside(h_t - params.threshold, out=spikes[t])
        v = reset_membrane(h_t, previous, params.threshold, params)
    return spikes, h, v.clone() if params.reset == "none" else v  # reset none: v_T is a view of h


def _scan_backward(h, weight, s0, g_spikes, g_v, params: NeuronParams, k: float):
    """``(G [T, B, M], dL/dV [M, M])`` of the module docstring's recursion, from the last step to the first. The
    spikes, ``h'`` and ``P`` are formed for ``CHUNK`` steps at a time and ``dL/dV`` is summed per chunk, so the
    extra memory is that of a few chunks whatever T is."""
    g_h, g_weight, m = torch.empty_like(h), torch.zeros_like(weight), weight.shape[0]
    for stop in range(h.shape[0], 0, -CHUNK):
        start = max(0, stop - CHUNK)
        fired = heaviside(h[max(0, start - 1):stop] - params.threshold)  # s_t, from the step before the chunk
        slope = params.spike_fn.derivative(h[start:stop] - params.threshold)  # h'_t
        through = _membrane_jacobian(h[start:stop], fired[-slope.shape[0]:], slope, params)  # P_t
        for t in range(stop - 1, start - 1, -1):
            _step_back(t, g_h, g_spikes, g_v, weight, slope[t - start], through[t - start], k)
        later = g_h[max(start, 1):stop]  # G_t paired with s_{t-1} = fired[:-1]
        g_weight.addmm_(later.reshape(-1, m).t(), fired[:-1].reshape(-1, m))
    if s0 is not None:
        g_weight.addmm_(g_h[0].t(), s0)  # G_0^T s_{-1}
    return g_h, g_weight


def _step_back(t: int, g_h, g_spikes, g_v, weight, slope, through, k: float) -> None:
    """``G_t`` into ``g_h[t]`` from ``G_{t+1} = g_h[t + 1]`` (or from ``dL/dv_{T-1} = g_v`` at the last step)."""
    g_t = g_h[t]
    if t == g_h.shape[0] - 1:
        if g_spikes is None:
            g_t.zero_()
        else:
            torch.mul(g_spikes[t], slope, out=g_t)  # g_{T-1} h'
        if g_v is not None:
            g_t.addcmul_(g_v, through)  # + dL/dv_{T-1} P
        return
    if g_spikes is None:
        torch.mm(g_h[t + 1], weight, out=g_t).mul_(slope)
    else:
        torch.addmm(g_spikes[t], g_h[t + 1], weight, out=g_t).mul_(slope)  # (g_t + G_{t+1} V) h'_t
    g_t.addcmul_(g_h[t + 1], through, value=k)  # + k' G_{t+1} P_t


def _membrane_jacobian(h, spikes, slope, params: NeuronParams) -> torch.Tensor:
    """``P_t = dv_t/dh_t`` through both the membrane and the spike (module docstring), all steps."""
    if params.reset == "none":
        return torch.ones_like(h)
    if params.reset == "zero":
        through = 1.0 - spikes
        return through if params.detach_reset else through.sub_(h * slope)
    return torch.ones_like(h) if params.detach_reset else 1.0 - params.threshold * slope

"""IF / LIF dynamics as pure functions ``(input, state, params) -> (spikes, state)``.

One step, for input current ``x_t`` and the post-reset membrane ``v_{t-1}`` (``v_0 = 0``)::

    h_t = k * v_{t-1} + x_t                 charge (k = params.decay; k = 1 is IF)
    s_t = H(h_t - th)                       fire   (H(0) = 1, see ``surrogate``)
    v_t = h_t * (1 - s_t)                   reset "zero"
    v_t = h_t - th * s_t                    reset "subtract"
    v_t = h_t                               reset "none"

With reset "zero", substituting ``v_t`` into the next charge gives
``h_{t+1} = k * h_t * (1 - s_t) + x_{t+1}``, which is wu2019 eq. 5 ``u_{t+1} = k u_t (1 - o_t) + I_{t+1}``
with ``u = h`` (the pre-reset membrane) and eq. 6 ``o_{t+1} = f(u_{t+1} - Vth)``.

Gradient options (``NeuronParams``):
  * ``detach_reset``: the ``s_t`` inside the reset is a constant in the backward pass, so
    ``dv_t/dh_t = 1 - s_t`` (zero) or ``1`` (subtract) instead of ``1 - s_t - h_t h(h_t - th)`` /
    ``1 - th h(h_t - th)``.
  * ``leak_grad=False``: the forward pass computes ``k * v_{t-1}`` exactly, the backward pass uses
    ``dh_t/dv_{t-1} = 1``. This is lee2020's "leak in the forward only": its backward treats the neuron
    as IF on the temporal path. Only that Jacobian changes; the spatial path ``dh_t/dx_t = 1`` and the
    surrogate are untouched, and lee2020's leak-correction scaling of the hidden-layer gradient belongs to
    the ``spikebp`` method, not to the neuron.

Input: currents are floating-point tensors (float16, bfloat16, float32, float64); a bool, integer or complex
input raises one ``ConfigError`` (``check_currents``). An empty input (T = 0 or B = 0) gives empty spikes of
its shape (and, for T = 0, ``v_T = v_0``).

NaN: propagated, not raised (a scan for NaN would cost a pass over every input). A NaN current makes the
membrane NaN, ``H(NaN) = NaN`` (``surrogate.heaviside``), and every reset keeps a NaN membrane NaN, so that
neuron's spikes are NaN from that step to the end of the run: the NaN reaches the network's output and its
loss, where it is seen, instead of silencing the neuron (``k NaN + x`` never reaches the threshold). The fused
kernels (``neurons.fused``), ``ChunkedIF`` and lee2020's ``LeakCorrectedLIF`` do the same. (An infinite current
follows IEEE arithmetic: +inf fires, and reset "zero" then gives ``inf * 0 = NaN``.) The TTFS layers, which scan
their input times anyway, refuse NaN instead (``deepspike.ttfs``).
"""

from __future__ import annotations

import torch

from deepspike.core.errors import ConfigError
from deepspike.core.precision import LOW_PRECISION
from deepspike.neurons.fused import FUSED_SURROGATES, ON_CONDITION, fused_multistep, fused_supported
from deepspike.neurons.fused_low_precision import low_precision_multistep, low_precision_supported
from deepspike.neurons.params import NeuronParams


class _ForwardOnlyScale(torch.autograd.Function):
    """``y = k * v`` forward, ``grad_v = grad_y`` backward (the leak is invisible to the gradient)."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, k: float) -> torch.Tensor:
        return v * k

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


def leak(v: torch.Tensor, params: NeuronParams) -> torch.Tensor:
    """``k v`` (``k = params.decay``; ``v`` itself for ``k = 1``); with ``leak_grad=False`` its gradient is ``grad``
    itself (``_ForwardOnlyScale``). ``v [B, ...]`` -> ``[B, ...]``."""
    if params.decay == 1.0:
        return v
    if params.leak_grad:
        return params.decay * v
    return _ForwardOnlyScale.apply(v, params.decay)


def reset_membrane(h: torch.Tensor, s: torch.Tensor, threshold: float | torch.Tensor,
                   params: NeuronParams) -> torch.Tensor:
    """The post-reset membrane ``v_t`` of pre-reset ``h`` and spikes ``s`` (same shape): ``h (1 - s)`` (reset
    "zero"), ``h - threshold s`` ("subtract"; ``threshold`` a number or a tensor broadcasting against ``h``), ``h``
    ("none"); ``s`` is a constant there with ``params.detach_reset``."""
    r = s.detach() if params.detach_reset else s
    if params.reset == "zero":
        return h * (1.0 - r)
    if params.reset == "subtract":
        return h - threshold * r
    return h


def _step(
    x: torch.Tensor, v: torch.Tensor | None, params: NeuronParams
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One update; returns ``(s_t, h_t, v_t)``: spikes, pre-reset and post-reset membrane, all ``x.shape``."""
    h = x if v is None else leak(v, params) + x
    if params.state_quant is not None:
        h = params.state_quant(h, params.threshold)
    s = params.spike_fn(h - params.threshold)
    return s, h, reset_membrane(h, s, params.threshold, params)


def check_currents(x: torch.Tensor, min_dim: int = 2) -> None:
    """``ConfigError`` unless ``x`` is a floating-point tensor of at least ``min_dim`` dims (time-first
    ``[T, B, ...]`` for 2): O(1), no pass over the values."""
    if not torch.is_tensor(x) or not x.is_floating_point():
        got = x.dtype if torch.is_tensor(x) else type(x).__name__
        raise ConfigError(f"neuron input must be a floating-point tensor (float16, bfloat16, float32 or float64), "
                          f"got {got}")
    if x.dim() < min_dim:
        layout = "time-first [T, B, ...]" if min_dim == 2 else "[B, ...]"
        raise ConfigError(f"neuron input must be {layout}; got shape {tuple(x.shape)}")


def check_initial_state(state: torch.Tensor | None, x: torch.Tensor, name: str = "membrane") -> None:
    """A one-line ``ConfigError`` when a neuron's initial ``state`` (None: zeros) is not of one step's shape
    ``x.shape[1:]`` of its input ``x [T, B, ...]`` (a state carried from a call on another batch, say)."""
    if state is not None and state.shape != x.shape[1:]:
        raise ConfigError(f"initial {name} shape {tuple(state.shape)} does not match one step of the input "
                          f"{tuple(x.shape[1:])}")


def neuron_step(
    x: torch.Tensor, v: torch.Tensor | None, params: NeuronParams
) -> tuple[torch.Tensor, torch.Tensor]:
    """One time step: ``h = k v + x; s = H(h - th); v' = reset(h, s)`` (module docstring).

    x: input current ``[B, ...]``; v: post-reset membrane of the previous step ``[B, ...]`` or None (zeros).
    Returns ``(s, v')``, both ``[B, ...]``.
    """
    check_currents(x, min_dim=1)
    if v is not None and v.shape != x.shape:
        raise ConfigError(f"membrane shape {tuple(v.shape)} does not match input shape {tuple(x.shape)}")
    s, _, v_new = _step(x, v, params)
    return s, v_new


def neuron_multistep(
    x: torch.Tensor,
    params: NeuronParams,
    v0: torch.Tensor | None = None,
    return_membrane: bool = False,
    fused: bool | None = None,
    inplace: bool = False,
):
    """Run ``neuron_step`` over the leading time axis.

    x: input currents ``[T, B, ...]``; v0: initial membrane ``[B, ...]`` (None: zeros).
    Returns ``(s, v_T)`` with spikes ``s [T, B, ...]`` and the final post-reset membrane ``v_T [B, ...]``;
    with ``return_membrane=True`` returns ``(s, v_T, h)`` where ``h [T, B, ...]`` is the pre-reset membrane
    trace ``h_t = k v_{t-1} + x_t``.

    fused: None (default) runs the fused kernel (``neurons.fused``: one numba call over T, saves only
    ``h``) whenever ``fused_supported`` (CPU float32, numba, ``DEEPSPIKE_FUSED`` not ``0``/``false``/``off``/``no``),
    on bfloat16 / float16 inputs the same kernels (numba on the CPU, Triton on CUDA) with a float32 state
    (``neurons.fused_low_precision``; not with ``return_membrane``), else the reference loop over T;
    False forces the reference loop; True forces the kernel (``ConfigError`` if it cannot run these inputs; an empty
    batch, which no kernel runs, takes the loop: ``fused=True`` refused it as if numba were missing).
    Both give the same spikes; membranes and gradients agree to float32 rounding (on bfloat16 / float16: the
    loop on ``x.float()``, ``v_T`` and ``dL/dx`` rounded once; the loop in bf16 rounds at every step).

    inplace: let the fused kernel write the membrane trace over ``x`` and ``dL/dx`` over the saved trace
    (``neurons.fused``; ``x`` must not be used afterwards, like ``nn.ReLU(inplace=True)``; on bfloat16 /
    float16 only ``dL/dx`` is written over ``x``, in backward); the reference loop ignores it. Values and
    gradients are the same either way.
    """
    check_currents(x)
    check_initial_state(v0, x)
    if x.shape[0] == 0:  # no time steps: nothing fires, the membrane stays v0
        v = x.new_zeros(x.shape[1:]) if v0 is None else v0
        return (x * 0, v, x * 0) if return_membrane else (x * 0, v)
    if fused is not False and x.numel():  # (an empty batch: nothing to run, the loop's empty spikes even for True)
        if fused_supported(x, params, v0):
            return fused_multistep(x, params, v0, return_membrane, inplace)
        if not return_membrane and low_precision_supported(x, params, v0):
            return low_precision_multistep(x, params, v0, inplace)
        if fused:
            raise ConfigError(
                f"fused neuron update needs numba (extra 'fast'), {ON_CONDITION}, CPU float32 tensors (or "
                f"bfloat16 / float16 without the membrane trace), float membranes (no state_quant) and a "
                f"surrogate in {sorted(FUSED_SURROGATES)}; got {x.dtype} on {x.device}, surrogate "
                f"{params.spike_fn.name!r}"
            )
    v = v0
    spikes, membrane = [], []
    for x_t in x.unbind(0):  # [T, B, ...] -> T x [B, ...]
        s, h, v = _step(x_t, v, params)
        spikes.append(s)
        if return_membrane:
            membrane.append(h)
    s_all = torch.stack(spikes)  # [T, B, ...]
    if return_membrane:
        return s_all, v, torch.stack(membrane)
    return s_all, v


def membrane_readout(x: torch.Tensor, decay: float = 1.0) -> torch.Tensor:
    """Non-spiking integrator trace ``v_t = decay * v_{t-1} + x_t``, ``v_0 = 0`` (lee2020's output layer).

    x: ``[T, B, ...]`` -> v: ``[T, B, ...]``. lee2020 scores ``v_T / T`` (``final_membrane_rate``); with
    ``decay = 1``, ``v_t`` is the cumulative sum of the inputs. On bfloat16 / float16 ``x`` the running ``v`` is
    float32 and each ``v_t`` is rounded once to ``x``'s dtype (as torch's cumulative sum accumulates, and as the
    neurons keep their state): summed in bfloat16, ``0.999 v + 0.0011`` stalled at ``v = 0.5``.
    """
    if not (0.0 < decay <= 1.0):
        raise ConfigError(f"readout decay={decay} is outside (0, 1]")
    if x.dim() < 1:
        raise ConfigError("membrane_readout needs a time-first tensor [T, B, ...]; got a scalar")
    if decay == 1.0 or x.shape[0] == 0:  # (T = 0: the cumulative sum of nothing is the empty trace)
        return torch.cumsum(x, dim=0)
    low = x.dtype in LOW_PRECISION
    out, v = [], None
    for x_t in x.unbind(0):
        x_t = x_t.float() if low else x_t
        v = x_t if v is None else decay * v + x_t
        out.append(v.to(x.dtype))
    return torch.stack(out)  # T x [B, ...] -> [T, B, ...]

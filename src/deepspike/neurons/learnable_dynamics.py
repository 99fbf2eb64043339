"""LIF dynamics with tensor (learnable) decay and threshold: the reference update of PLIF and of a learnable
threshold, as pure functions ``(input, state, decay, threshold, params) -> (spikes, state)``.

One step, for input ``x_t [B, ...]`` and post-reset membrane ``v_{t-1}`` (``v_0 = 0``)::

    h_t = k v_{t-1} + c x_t        c = 1 - k with ``decay_input`` (PLIF), else c = 1 (our LIF convention)
    s_t = H(h_t - th)
    v_t = h_t (1 - s_t) | h_t - th s_t | h_t      (reset zero | subtract | none; params.reset)

PLIF (Fang et al., ICCV 2021) writes the charge as ``V_t = V_{t-1} + (X_t - V_{t-1}) / tau``, i.e. ``k = 1 - 1/tau``
and ``c = 1/tau`` with ``1/tau = sigmoid(w)``, ``w`` trainable. Here ``k`` (decay) and ``th`` (threshold) are tensors
that broadcast against one step ``[B, ...]``: shape ``()`` (one per layer) or ``[C, 1, ..., 1]`` (one per
channel of ``[B, C, ...]``); autograd reaches them (and whatever parameter they were computed from) through the
plain torch operations below. ``params`` (``NeuronParams``) supplies the reset, the surrogate and
``detach_reset``; its own ``decay`` and ``threshold`` are not used. This loop is the reference that the fused
kernels (``neurons.fused_learnable``) are tested against.
"""

from __future__ import annotations

import torch

from deepspike.core.errors import ConfigError
from deepspike.core.precision import LOW_PRECISION
from deepspike.neurons.dynamics import check_currents, check_initial_state, reset_membrane
from deepspike.neurons.fused import FUSED_SURROGATES, ON_CONDITION
from deepspike.neurons.fused_learnable import fused_learnable_multistep, learnable_fused_supported
from deepspike.neurons.fused_low_precision import _state_dtype
from deepspike.neurons.params import NeuronParams


def learnable_step(
    x: torch.Tensor, v: torch.Tensor | None, decay: torch.Tensor, threshold: torch.Tensor, params: NeuronParams,
    decay_input: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One update (module docstring); ``x [B, ...]``, ``v [B, ...]`` or None (zeros) -> ``(s, v')``, ``[B, ...]``."""
    drive = (1.0 - decay) * x if decay_input else x
    h = drive if v is None else decay * v + drive
    s = params.spike_fn(h - threshold)
    return s, reset_membrane(h, s, threshold, params)


def learnable_multistep_reference(
    x: torch.Tensor, decay: torch.Tensor, threshold: torch.Tensor, params: NeuronParams,
    v0: torch.Tensor | None = None, decay_input: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``learnable_step`` over the time axis of ``x [T, B, ...]`` from ``v0 [B, ...]`` (None: zeros);
    returns ``(s [T, B, ...], v_T [B, ...])``."""
    v = v0
    spikes = []
    for x_t in x.unbind(0):  # [T, B, ...] -> T x [B, ...]
        s, v = learnable_step(x_t, v, decay, threshold, params, decay_input)
        spikes.append(s)
    if v is None:  # T = 0: nothing fires, the membrane stays at zero
        v = x.new_zeros(x.shape[1:])
    return (torch.stack(spikes) if spikes else x * 0), v


def learnable_multistep(
    x: torch.Tensor, decay: torch.Tensor, threshold: torch.Tensor, params: NeuronParams,
    v0: torch.Tensor | None = None, decay_input: bool = False, fused: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The update of the module docstring over ``x [T, B, ...]``; returns ``(s [T, B, ...], v_T [B, ...])``.

    decay, threshold: tensors broadcasting against one step (``()`` or ``[C, 1, ..., 1]``). fused: None runs the
    fused kernels (``neurons.fused_learnable``) when ``learnable_fused_supported``, else the reference loop; False
    forces the loop; True forces the kernels (``ConfigError`` if they cannot run these inputs). A bfloat16 / float16
    ``x`` runs either on a float32 copy (with float32 ``decay``, ``threshold`` and ``v0``): the spikes are the float32
    update's on the same values, spikes rounded back to ``x``'s dtype and ``v_T`` to ``x``'s dtype promoted with
    ``v0``'s (as ``neuron_multistep``: a float32 ``v0`` gives a float32 ``v_T``, the state a carrying neuron keeps).
    """
    check_currents(x)
    check_initial_state(v0, x)
    low = x.dtype in LOW_PRECISION  # the state in float32, at the cost of a float32 copy of x
    wide, v0_wide = (x.float(), None if v0 is None else v0.float()) if low else (x, v0)
    if fused is not False and x.numel():  # an empty batch (or T = 0) takes the loop, fused=True too
        if learnable_fused_supported(x, params, v0):
            return fused_learnable_multistep(x, v0, decay, threshold, params, decay_input)
        if low and learnable_fused_supported(wide, params, v0_wide):
            s, v = fused_learnable_multistep(wide, v0_wide, decay.float(), threshold.float(), params, decay_input)
            return s.to(x.dtype), v.to(_state_dtype(x, v0))
        if fused:
            raise ConfigError(f"fused learnable neuron update needs numba (CPU float32/float64, or bfloat16/float16 "
                              f"run in float32) or triton (float32), "
                              f"{ON_CONDITION} and a surrogate in {sorted(FUSED_SURROGATES)}; got {x.dtype} on "
                              f"{x.device}, surrogate {params.spike_fn.name!r}")
    if not low:
        return learnable_multistep_reference(x, decay, threshold, params, v0, decay_input)
    s, v = learnable_multistep_reference(wide, decay.float(), threshold.float(), params, v0_wide, decay_input)
    return s.to(x.dtype), v.to(_state_dtype(x, v0))

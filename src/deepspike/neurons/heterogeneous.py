"""``HeterogeneousLIF``: a layer of IF / LIF / current-based LIF neurons each with its own fixed constants.

``x [T, B, *shape] -> s [T, B, *shape]``, ``i_0 = v_0 = 0``, every constant a tensor broadcasting against one step
``[B, *shape]`` (one value per neuron, per channel or per layer)::

    i_t = alpha i_{t-1} + x_t                   only with ``syn_decay`` alpha (NIR's CubaLIF), else i_t = x_t
    h_t = k v_{t-1} + i_t,   s_t = H(h_t - th),   v_t = reset(h_t, s_t)

This is what a NIR file written by a tool that trains each neuron's time constant (Rockpool, a per-neuron PLIF) or
threshold holds: ``k = 1 - dt/tau`` (``tau_mem``), ``alpha = 1 - dt/tau_syn`` and ``th`` differ from neuron to
neuron, which ``SpikingNeuron`` / ``SynapticLIF`` (one value per layer) cannot run. The membrane update is
``learnable_dynamics.learnable_multistep`` with the constants as tensors (fused kernels where they run, its reference
loop otherwise: same spikes); the current is ``synaptic.per_neuron_current``. Gradients (surrogate ``params``) reach
the input, not the constants, which are buffers.

On bfloat16 / float16 input the update runs in float32 with the float32 constants (spikes rounded back); the
constants stay float32 whatever dtype ``.to()`` / ``.half()`` / ``.bfloat16()`` asks of the module (they move to its
device only), as ``SpikingNeuron``'s float constants do in a ``model.to(torch.bfloat16)`` net. Inside
``neurons.carry.temporal_carry`` ``v`` and ``i`` are carried (``CarriesState``; in float32 on bfloat16 / float16
input, as one call keeps them from step to step: a stream gives one call's spikes); the spike count goes to an
active tally (``ReportsSpikes``).
"""

from __future__ import annotations

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.precision import LOW_PRECISION
from deepspike.core.spike_tally import ReportsSpikes
from deepspike.neurons.carry import CarriesState
from deepspike.neurons.dynamics import check_currents
from deepspike.neurons.learnable_dynamics import learnable_multistep
from deepspike.neurons.params import NeuronParams
from deepspike.neurons.state_quant import refuse_state_quant
from deepspike.neurons.synaptic import per_neuron_current
from deepspike.neurons.update_cost import kept_sum_ops, membrane_ops, plus


def _checked(name: str, value: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """``value`` as a float32 tensor, a one-line ``ConfigError`` unless every entry is finite and in [low, high]."""
    t = torch.as_tensor(value, dtype=torch.float32)
    if t.numel() == 0 or not bool(torch.isfinite(t).all()) or not bool(((t >= low) & (t <= high)).all()):
        raise ConfigError(f"HeterogeneousLIF: {name} must be finite and in [{low:g}, {high:g}] for every neuron, got "
                          f"values from {float(t.min()) if t.numel() else 'none'} to "
                          f"{float(t.max()) if t.numel() else 'none'}")
    return t


def _kept_sum_per_neuron(k: torch.Tensor) -> tuple[float, float]:
    """``update_cost.kept_sum_ops`` of each neuron's own decay in ``k`` (0: no term, 1: an addition, else a product),
    averaged over the neurons: times the layer's neurons and steps, the layer's total (``k`` broadcasts against the
    layer, every entry standing for as many neurons)."""
    n = k.numel()
    counts = {value: int((k == value).sum()) for value in (0.0, 1.0)}
    counts[0.5] = n - counts[0.0] - counts[1.0]  # 0.5: any decay that is a product
    macs, acs = plus(*((c * m, c * a) for value, c in counts.items() for m, a in (kept_sum_ops(value),)))
    return macs / n, acs / n


class HeterogeneousLIF(CarriesState, ReportsSpikes, nn.Module):
    """IF / LIF / current-based LIF layer with fixed per-neuron constants (module docstring).

    params: reset, surrogate and ``detach_reset`` (its ``decay`` and ``threshold`` are not used; no quantised
    membrane). decay: ``k`` in [0, 1]; threshold: ``th``, any finite value, 0 and below included (unlike
    ``NeuronParams``'s ``> 0``): ``LearnableLIF``'s learnt thresholds are not kept > 0 and the NIR files written of them
    (``deploy.nir_per_neuron``) must read back; a neuron with ``th <= 0`` fires at rest (``h = 0 >= th``) at every step.
    syn_decay: ``alpha`` in [0, 1] or None (no synaptic current). Each broadcasts against one step ``[B, *shape]``.
    """

    is_spiking_neuron = True  # output [T, B, ...] is spikes (analysis.activity)

    def __init__(self, params: NeuronParams, decay: torch.Tensor, threshold: torch.Tensor,
                 syn_decay: torch.Tensor | None = None) -> None:
        super().__init__()
        refuse_state_quant(params.state_quant, "a neuron with per-neuron constants")
        self.fixed = params
        self.register_buffer("decay", _checked("decay", decay, 0.0, 1.0))
        self.register_buffer("threshold", _checked("threshold", threshold, -float("inf"), float("inf")))
        alpha = None if syn_decay is None else _checked("syn_decay", syn_decay, 0.0, 1.0)
        self.register_buffer("syn_decay", alpha)
        try:
            torch.broadcast_shapes(*(t.shape for t in (self.decay, self.threshold, alpha) if t is not None))
        except RuntimeError:
            raise ConfigError(f"HeterogeneousLIF: decay {tuple(self.decay.shape)}, threshold "
                              f"{tuple(self.threshold.shape)} and syn_decay "
                              f"{None if alpha is None else tuple(alpha.shape)} do not broadcast together") from None

    def _apply(self, fn, recurse=True):
        """``fn`` (``.to()``, ``.cuda()``, ``.half()`` ...) moves the constants to its device but keeps them float32
        (module docstring): rounded to bfloat16, decay 0.9 ran as 0.8984 and threshold 0.3 as 0.3008."""
        kept = {name: b for name, b in self._buffers.items() if b is not None}
        super()._apply(fn, recurse)
        for name, b in kept.items():
            self._buffers[name] = b.to(self._buffers[name].device)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_currents(x)
        v0, i0 = self.carried() or (None, None)
        self._check_fits(x)
        # bfloat16 / float16: float32 constants and state (the update runs in float32, as SpikingNeuron's and
        # SynapticLIF's with their float constants); carried, v and i stay float32 between calls (one call's spikes)
        low = x.dtype in LOW_PRECISION
        wide = torch.float32 if low else x.dtype
        k, th = self.decay.to(wide), self.threshold.to(wide)
        carried_low = low and self.carry is not None
        current, i_end = x, None
        if self.syn_decay is not None:
            full = per_neuron_current(x.float() if carried_low else x, self.syn_decay.to(wide), i0)
            i_end = full[-1].clone() if full.shape[0] else i0  # a copy: a view keeps all T steps' current alive
            current = full.to(x.dtype)  # rounded once, as one call rounds it (a no-op unless carried_low)
        if carried_low and v0 is None:
            v0 = torch.zeros(x.shape[1:], dtype=torch.float32, device=x.device)
        s, v = learnable_multistep(current, k, th, self.fixed, v0=v0, decay_input=False)
        self.keep((v, i_end))
        return self.reported(s)

    def _check_fits(self, x: torch.Tensor) -> None:
        """A one-line ``ConfigError`` unless every constant broadcasts to one step ``[B, *neurons]`` of ``x`` itself
        (one with more axes or a size where the step has 1 gave a RuntimeError or an output larger than ``x``)."""
        constants = (self.decay, self.threshold, self.syn_decay)
        shape = torch.broadcast_shapes(*(t.shape for t in constants if t is not None))
        try:
            fits = torch.broadcast_shapes(x.shape[1:], shape) == x.shape[1:]
        except RuntimeError:
            fits = False
        if not fits:
            raise ConfigError(f"HeterogeneousLIF: constants of shape {tuple(shape)} do not fit input {tuple(x.shape)} "
                              f"([T, B, *neurons])")

    def membrane(self, state: tuple) -> torch.Tensor:
        """``v_t`` of the carried ``(v, i)``."""
        return state[0]

    def threshold_at(self, step: torch.Tensor, state: tuple | None) -> torch.Tensor:
        """The per-neuron thresholds."""
        return self.threshold

    def update_ops(self) -> tuple[float, float]:
        """(MACs, ACs) per neuron and step (``neurons.update_cost``), averaged over the neurons: the current's kept sum
        (with a synaptic decay), then ``h_t = k v_{t-1} + i_t`` and the threshold test, each neuron priced by its own
        decays (one of 1 is an addition, one of 0 no term): a decay of 1 or 0 everywhere costs as in ``LIF``."""
        ops = plus(_kept_sum_per_neuron(self.decay), membrane_ops(0.0))  # membrane_ops(0): the threshold test alone
        return ops if self.syn_decay is None else plus(_kept_sum_per_neuron(self.syn_decay), ops)

    def extra_repr(self) -> str:
        syn = "" if self.syn_decay is None else f"syn_decay {tuple(self.syn_decay.shape)}, "
        return (f"{syn}decay {tuple(self.decay.shape)}, threshold {tuple(self.threshold.shape)}, "
                f"reset={self.fixed.reset!r}, surrogate={self.fixed.spike_fn!r}")

"""``LearnableLIF``: a LIF layer whose membrane time constant (PLIF) and/or threshold are trained with the weights.

``x [T, B, ...] -> s [T, B, ...]`` by ``learnable_dynamics.learnable_multistep`` (fused kernels where they run)::

    h_t = k v_{t-1} + c x_t,   s_t = H(h_t - th),   v_t = reset(h_t, s_t)

* learnable decay (PLIF, Fang et al., ICCV 2021): ``1/tau = sigmoid(w)``, ``k = 1 - 1/tau``, ``c = 1/tau``
  (``V_t = V_{t-1} + (X_t - V_{t-1}) / tau``), ``w`` an ``nn.Parameter`` initialised to ``-log(tau_init - 1)`` so
  that ``tau = tau_init``; a fixed decay keeps our LIF convention ``c = 1`` with ``k = params.decay``;
* learnable threshold: ``th`` an ``nn.Parameter`` initialised to ``params.threshold``;
* granularity: ``channels=None`` gives one value per layer (shape ``()``), ``channels=C`` one per channel of
  ``x [T, B, C, ...]`` (shape ``[C]``, used as ``[C, 1, ..., 1]``), ``neurons=(C, H, W)`` (or ``(F,)``) one per neuron
  of ``x [T, B, *neurons]`` (each neuron's own time constant: Perez-Nieves et al., Nat. Commun. 12:5791, 2021, train
  per-neuron membrane time constants and find them more robust than one per layer).

Like ``SpikingNeuron`` it keeps no state between calls except inside ``neurons.carry.temporal_carry`` (it
``CarriesState``: its membrane), and reports its spike count to an active tally (``ReportsSpikes``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_finite, is_whole
from deepspike.core.precision import LOW_PRECISION
from deepspike.core.spike_tally import ReportsSpikes
from deepspike.neurons.carry import CarriesState
from deepspike.neurons.learnable_dynamics import learnable_multistep
from deepspike.neurons.params import NeuronParams
from deepspike.neurons.state_quant import refuse_state_quant
from deepspike.neurons.update_cost import membrane_ops


def tau_to_weight(tau: float) -> float:
    """The ``w`` with ``sigmoid(w) = 1/tau`` (``tau > 1``): ``w = -log(tau - 1)``."""
    if not (is_finite(tau) and tau > 1.0):
        raise ConfigError(f"tau_init={tau} must be a finite number > 1 (1/tau = sigmoid(w) lies in (0, 1))")
    return -math.log(tau - 1.0)


class LearnableLIF(CarriesState, ReportsSpikes, nn.Module):
    """LIF layer with a trainable time constant and/or threshold (module docstring).

    params (kept as ``fixed``: not ``params``, which would tell ``training.temporal_grad``'s OTTT traces a decay that
    is not the learnt one): reset, surrogate, ``detach_reset`` and the decay/threshold of whatever is not learnt
    (``leak_grad=False`` is refused: a learnt decay needs its gradient). channels: None (per layer) or C
    (per channel); neurons: one sample's shape ``(C, H, W)`` / ``(F,)`` for one value per neuron (not with
    ``channels``). learn_decay, tau_init: PLIF and its initial ``tau``; learn_threshold: train ``th``.
    """

    is_spiking_neuron = True  # output [T, B, ...] is spikes (analysis.activity)

    def __init__(self, params: NeuronParams, channels: int | None = None, learn_decay: bool = True,
                 tau_init: float = 2.0, learn_threshold: bool = False, neurons: tuple[int, ...] | None = None) -> None:
        super().__init__()
        if not params.leak_grad:
            raise ConfigError("a learnable neuron needs leak_grad=True (its decay's gradient runs through the leak)")
        if channels is not None and not is_whole(channels, 1):
            raise ConfigError(f"channels={channels!r} must be a whole number >= 1 (or None for one value per layer)")
        if neurons is not None and (channels is not None or not isinstance(neurons, tuple | list) or not neurons
                                    or not all(is_whole(n, 1) for n in neurons)):
            raise ConfigError(f"neurons={neurons!r} must be one sample's shape, whole numbers >= 1 (and no channels)")
        refuse_state_quant(params.state_quant, "a learnable neuron")
        self.fixed = params
        self.neurons = None if neurons is None else tuple(int(n) for n in neurons)
        shape = self.neurons or (() if channels is None else (channels,))
        w = torch.full(shape, tau_to_weight(tau_init)) if learn_decay else None
        self.w = None if w is None else nn.Parameter(w)
        th = torch.full(shape, params.threshold) if learn_threshold else None
        self.threshold = None if th is None else nn.Parameter(th)
        self.channels = channels

    def _shaped(self, p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``p`` (a fixed value ``()`` or a parameter) as ``()``, ``[C, 1, ..., 1]`` or ``[*neurons]``, broadcasting
        against one step of ``x [T, B, C, ...]``."""
        if self.neurons is not None:
            if tuple(x.shape[2:]) != self.neurons:
                raise ConfigError(f"per-neuron neuron of shape {self.neurons} got input {tuple(x.shape)} "
                                  f"(expected [T, B, {', '.join(map(str, self.neurons))}])")
            return p
        if self.channels is None:
            return p
        if x.dim() < 3 or x.shape[2] != self.channels:
            raise ConfigError(f"per-channel neuron of {self.channels} channels got input {tuple(x.shape)} "
                              f"(expected [T, B, {self.channels}, ...])")
        return p if p.dim() == 0 else p.view(self.channels, *([1] * (x.dim() - 3)))

    def decay(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``k = 1 - sigmoid(w)`` (learnt) or the fixed ``params.decay``, as a tensor (a fixed one in ``dtype``)."""
        return 1.0 - torch.sigmoid(self.w) if self.w is not None else torch.tensor(self.fixed.decay, dtype=dtype)

    def decay_and_threshold(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(k, th)`` for ``x [T, B, ...]``, each ``()`` or ``[C, 1, ..., 1]`` (``learnable_multistep``'s form),
        carrying the gradients to ``w`` and the threshold parameter. Fixed values are float64 for a float64 ``x``
        (a float32 0.8 is 0.800000012), float32 otherwise (the state of a low-precision input is float32)."""
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        k = self._shaped(self.decay(dtype).to(x.device), x)
        th = self._shaped(self.threshold if self.threshold is not None else
                          torch.tensor(self.fixed.threshold, dtype=dtype, device=x.device), x)
        return k, th

    @property
    def decay_input(self) -> bool:
        """``c = 1 - k`` on the input (PLIF's form) when the decay is learnt, else ``c = 1``."""
        return self.w is not None

    def membrane(self, state: torch.Tensor) -> torch.Tensor:
        """The carried membrane ``v_t`` (after the reset), ``[B, ...]``."""
        return state

    def threshold_at(self, step: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
        """The threshold of ``step [1, B, ...]``: ``()`` or ``[C, 1, ..., 1]`` (per channel)."""
        return self.decay_and_threshold(step)[1]

    def _start(self, x: torch.Tensor) -> torch.Tensor | None:
        """The initial membrane: the carried one; for the first call of a carrying block on a bfloat16 / float16 ``x``,
        float32 zeros, so that the kept ``v_T`` is the float32 state one call on all the steps keeps
        (``learnable_multistep`` returns ``v_T`` in ``v0``'s float32), not its rounding to ``x``'s dtype."""
        v0 = self.carried()
        if v0 is None and self.carry is not None and x.dtype in LOW_PRECISION and x.dim() >= 2:
            return torch.zeros(x.shape[1:], dtype=torch.float32, device=x.device)
        return v0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, th = self.decay_and_threshold(x)
        s, v = learnable_multistep(x, k, th, self.fixed, v0=self._start(x), decay_input=self.decay_input)
        self.keep(v)
        return self.reported(s)

    def update_ops(self) -> tuple[int, int]:
        """(MACs, ACs) per neuron and step (``neurons.update_cost``): ``h_t = k v_{t-1} + c x_t`` is two products
        with a learned decay (PLIF: ``c = 1/tau``), the fixed LIF's ``k v + x`` without; and the threshold test."""
        return (2, 1) if self.w is not None else membrane_ops(self.fixed.decay)

    def extra_repr(self) -> str:
        p = self.fixed
        decay = "tau=learnt" if self.w is not None else f"decay={p.decay:g}"
        th = "threshold=learnt" if self.threshold is not None else f"threshold={p.threshold:g}"
        per = ("layer" if self.channels is None else f"channel ({self.channels})") if self.neurons is None else \
            f"neuron {self.neurons}"
        return f"{decay}, {th}, per {per}, reset={p.reset!r}, surrogate={p.spike_fn!r}"

"""``NeuronParams``: the frozen, validated parameters of an IF / LIF neuron layer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from deepspike.core.errors import ConfigError, unknown_choice
from deepspike.core.options import FLOAT32_MAX, FLOAT32_TINY
from deepspike.neurons.state_quant import StateQuant
from deepspike.neurons.surrogate import Surrogate, get_surrogate

RESETS = ("zero", "subtract", "none")
THRESHOLD_LOW = FLOAT32_TINY  # 1.18e-38: 1e-320 was 0 in float32, and a zero input fired


@dataclass(frozen=True)
class NeuronParams:
    """Parameters of the neuron update (``deepspike.neurons.dynamics``), per step on ``[B, ...]`` currents::

        h_t = k v_{t-1} + x_t,   s_t = H(h_t - th),   v_t = h_t (1 - s_t) | h_t - th s_t | h_t  (reset)

    decay: membrane decay per step ``k`` in (0, 1]; 1.0 is the IF neuron, 0 < k < 1 the LIF neuron
        (wu2019: ``k = 1 - dt/tau``, 0.25 on CIFAR; lee2020: 0.99).
    threshold: firing threshold ``th`` > 0.
    reset: after a spike, "zero" (``v = 0``, wu2019/lee2020), "subtract" (``v -= th``, conversion) or
        "none" (keep the membrane; fires again while above threshold).
    surrogate, surrogate_args: name and parameters of the surrogate derivative (``get_surrogate``).
    detach_reset: treat the spike in the reset term as a constant in the backward pass.
    leak_grad: if False, the leak is applied in the forward pass only: the backward pass uses
        ``dh_t/dv_{t-1} = 1`` (IF-like) instead of ``k`` on the temporal path (lee2020: "leak only in
        forward"). The online ``train.temporal_grad`` modes have no temporal path: there it changes nothing, and
        OTTT's and e-prop's presynaptic traces keep the forward decay ``k`` (``training.temporal_grad``).
    state_quant: None (float membranes) or a ``StateQuant``: ``h_t`` rounded to ``2^bits`` levels before firing
        (``neurons.state_quant``); the fused kernels do not run it (the reference loop does).

    Invalid values raise ``ConfigError``. ``surrogate_args`` is copied; treat it as read-only (the spike
    function is built once, at construction).
    """

    decay: float = 1.0
    threshold: float = 1.0
    reset: str = "zero"
    surrogate: str = "rectangular"
    surrogate_args: Mapping[str, float] = field(default_factory=dict)
    detach_reset: bool = False
    leak_grad: bool = True
    state_quant: StateQuant | None = None

    def __post_init__(self) -> None:
        if self.state_quant is not None and not isinstance(self.state_quant, StateQuant):
            raise ConfigError(f"neuron state_quant must be a StateQuant or None, got {self.state_quant!r}")
        for key in ("decay", "threshold"):
            value = getattr(self, key)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ConfigError(f"neuron {key} must be a number, got {value!r}")
        for key in ("detach_reset", "leak_grad"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"neuron {key} must be true or false, got {getattr(self, key)!r}")
        if not isinstance(self.surrogate_args or {}, Mapping):
            raise ConfigError(f"surrogate_args must be a mapping of parameter names to numbers, got "
                              f"{self.surrogate_args!r}")
        if not (0.0 < self.decay <= 1.0):
            raise ConfigError(f"neuron decay={self.decay} is outside (0, 1]; 1.0 is IF, 0 < decay < 1 is LIF")
        if not (THRESHOLD_LOW <= self.threshold <= FLOAT32_MAX):  # the kernels compare float32 membranes with it
            raise ConfigError(f"neuron threshold={self.threshold} must be a finite number > 0 (at least float32's "
                              f"smallest normal {THRESHOLD_LOW:.4g}, at most float32's {FLOAT32_MAX:.4g})")
        if self.reset not in RESETS:
            raise unknown_choice("reset", self.reset, RESETS)
        args = dict(self.surrogate_args or {})  # a private copy (a plain dict so params deep-copy/pickle)
        object.__setattr__(self, "surrogate_args", args)
        object.__setattr__(self, "decay", float(self.decay))
        object.__setattr__(self, "threshold", float(self.threshold))
        object.__setattr__(self, "_spike_fn", get_surrogate(self.surrogate, **args))  # validates the args

    @property
    def spike_fn(self) -> Surrogate:
        """The spike function ``H`` (with its surrogate derivative) built from ``surrogate*``."""
        return self._spike_fn  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(
            (
                self.decay,
                self.threshold,
                self.reset,
                self.surrogate,
                tuple(sorted(self.surrogate_args.items())),
                self.detach_reset,
                self.leak_grad,
                self.state_quant,
            )
        )

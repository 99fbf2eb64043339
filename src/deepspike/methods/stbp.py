"""Method ``stbp`` (Wu et al. 2019): iterative LIF, rectangular surrogate, backprop through space and time.

Neuron (wu2019 eq. 5-6): ``u_t = k_tau1 u_{t-1} (1 - o_{t-1}) + I_t``, ``o_t = H(u_t - V_th)`` with the
surrogate ``h(u) = (1/a) 1[|u - V_th| < a/2]``. The first layer is the encoding layer: with
``encoder: direct`` it receives the analog image at every step. The output layer spikes and the score is
its firing rate (``readout: rate``), trained with MSE to the one-hot label as in the paper; ``readout:
membrane`` and ``loss: ce`` are offered as alternatives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from deepspike.errors import ConfigError
from deepspike.layers.dropout import TimeFixedDropout
from deepspike.layers.encoding import ENCODERS, InputEncoder
from deepspike.layers.readout import MembraneReadout, SpikeRateReadout
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods.base import Method
from deepspike.methods.build import BuildRules, build_body
from deepspike.methods.losses import LOSSES, classification_loss
from deepspike.methods.rate_network import RateNetwork
from deepspike.methods.registry import register_method
from deepspike.models.spec import Architecture
from deepspike.neurons import LIF

READOUTS = ("rate", "membrane")


@dataclass
class StbpOptions:
    timesteps: int = 8
    eval_timesteps: int | None = None
    decay: float = 0.25
    threshold: float = 0.5
    reset: str = "zero"
    surrogate: str = "rectangular"
    surrogate_args: dict[str, Any] = field(default_factory=lambda: {"a": 1.0})
    encoder: str = "direct"
    readout: str = "rate"
    loss: str = "mse"

    def __post_init__(self) -> None:
        if self.timesteps < 1 or (self.eval_timesteps is not None and self.eval_timesteps < 1):
            raise ConfigError(
                f"bad value for method.timesteps/eval_timesteps: expected >= 1, got "
                f"{self.timesteps}/{self.eval_timesteps}"
            )
        for key, value, valid in (
            ("encoder", self.encoder, ENCODERS),
            ("readout", self.readout, READOUTS),
            ("loss", self.loss, LOSSES),
        ):
            if value not in valid:
                raise ConfigError(f"bad value {value!r} for method.{key}; valid: {', '.join(valid)}")


@register_method
class StbpMethod(Method):
    name = "stbp"
    Options = StbpOptions
    description = "wu2019 STBP: iterative LIF, rectangular surrogate, BPTT; direct encoding, rate readout"

    def neuron(self) -> nn.Module:
        o = self.options
        return LIF(decay=o.decay, threshold=o.threshold, reset=o.reset, surrogate=o.surrogate,
                   surrogate_args=dict(o.surrogate_args))

    def build(self, arch: Architecture) -> nn.Module:
        o = self.options
        rules = BuildRules(activation=lambda shape: self.neuron(), wrap=TimeDistributed,
                           dropout=TimeFixedDropout, channel_dim=2)
        body = build_body(arch, rules)
        readout = SpikeRateReadout(self.neuron()) if o.readout == "rate" else MembraneReadout()
        return RateNetwork(InputEncoder(o.encoder), body, readout, o.timesteps, o.eval_timesteps)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return classification_loss(self.options.loss, output, target)

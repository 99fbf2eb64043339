"""Method ``converted``: an ANN converted to IF neurons with per-layer thresholds (sengupta2019).

Built from the same architecture spec as the ANN: every ``act=True`` layer and residual junction gets a
``ChunkedIF`` neuron, the classifier gets output IF neurons, dropout is the identity. ``thresholds`` lists
one threshold per neuron layer in build order (``conversion.roles``), the output layer last; ``deepspike
convert`` fills it in by threshold balancing (weights stay unscaled). This method is for evaluation: the
recipe in a converted run directory lets ``deepspike eval`` rebuild the SNN and load its checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods.base import Method
from deepspike.methods.build import BuildRules, build_body
from deepspike.methods.converted_network import READOUTS, ConvertedNetwork, SignedPoissonEncoder
from deepspike.methods.registry import register_method
from deepspike.models.costs import layer_costs
from deepspike.models.spec import Architecture
from deepspike.neurons.chunked_if import ChunkedIF, chunked_neurons

NORMS = ("none", "max", "percentile", "spike")
RESETS = ("zero", "subtract")
RESIDUAL_RULES = ("unity", "balanced")


@dataclass
class ConvertedOptions:
    """thresholds: per neuron layer, build order, output last ([] = all 1.0); timesteps: simulated steps T;
    reset: "zero" (the paper) or "subtract"; readout: "spike" (count) or "membrane" (integrated input);
    input_scale: c in the input rate |x| / c; norm, residual, calib_*: how the thresholds were obtained
    (recorded for reference); chunk_elements: memory budget of one chunk (elements)."""

    thresholds: list[float] = field(default_factory=list)
    timesteps: int = 2500
    reset: str = "zero"
    readout: str = "spike"
    input_scale: float = 1.0
    norm: str = "none"
    residual: str = "unity"
    percentile: float = 99.99
    calib_samples: int = 256
    calib_timesteps: int = 2500
    chunk_elements: int = 2**24

    def __post_init__(self) -> None:
        for key, value, valid in (
            ("reset", self.reset, RESETS),
            ("readout", self.readout, READOUTS),
            ("norm", self.norm, NORMS),
            ("residual", self.residual, RESIDUAL_RULES),
        ):
            if value not in valid:
                raise ConfigError(f"bad value {value!r} for method.{key}; valid: {', '.join(valid)}")
        if self.timesteps < 1 or self.calib_timesteps < 1 or self.calib_samples < 1:
            raise ConfigError("method.timesteps, calib_timesteps and calib_samples must be >= 1")
        if not self.input_scale > 0 or self.chunk_elements < 1:
            raise ConfigError(
                f"method.input_scale must be > 0 and chunk_elements >= 1, got "
                f"{self.input_scale}, {self.chunk_elements}"
            )
        if not 0.0 < self.percentile <= 100.0:
            raise ConfigError(f"method.percentile must be in (0, 100], got {self.percentile}")
        bad = [t for t in self.thresholds if not (t > 0 and math.isfinite(t))]
        if bad:
            raise ConfigError(f"method.thresholds must be finite numbers > 0, got {bad[0]}")


@register_method
class ConvertedMethod(Method):
    name = "converted"
    Options = ConvertedOptions
    description = (
        "sengupta2019 ANN-to-SNN conversion: IF neurons, balanced thresholds (use `deepspike convert`)"
    )

    def build(self, arch: Architecture) -> ConvertedNetwork:
        o = self.options
        rules = BuildRules(
            activation=lambda shape: ChunkedIF(1.0, o.reset),
            wrap=TimeDistributed,
            dropout=lambda p: nn.Identity(),
            channel_dim=2,
        )
        body = build_body(arch, rules)
        shapes = [arch.input_shape, *(c.output_shape for c in layer_costs(arch))]
        net = ConvertedNetwork(
            SignedPoissonEncoder(o.input_scale),
            body,
            ChunkedIF(1.0, o.reset),
            o.timesteps,
            o.readout,
            max_numel=max(math.prod(s) for s in shapes),
            chunk_elements=o.chunk_elements,
        )
        if o.thresholds:
            set_thresholds(net, o.thresholds)
        return net

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the scores (rates) ``[B, K]``; reported by ``deepspike eval``, not trained on."""
        return F.cross_entropy(output, target)


def set_thresholds(net: nn.Module, thresholds: list[float]) -> None:
    """Set the threshold of every ``ChunkedIF`` of ``net`` (build order, output last)."""
    neurons = chunked_neurons(net)
    if len(thresholds) != len(neurons):
        raise ConfigError(
            f"method.thresholds has {len(thresholds)} values but the network has "
            f"{len(neurons)} neuron layers (the output layer included)"
        )
    for neuron, th in zip(neurons, thresholds, strict=True):
        neuron.with_threshold(float(th))

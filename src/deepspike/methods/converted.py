"""Method ``converted``: an ANN converted to IF neurons with per-layer or per-channel thresholds.

Built from the same architecture spec as the ANN, batch-norms folded: every ``act=True`` layer and residual
junction gets a ``ChunkedIF`` neuron, the classifier gets output IF neurons, dropout is the identity.
``thresholds`` lists one threshold (or one per channel) per neuron layer in build order
(``conversion.roles``), the output layer last; ``deepspike convert`` fills it in by threshold balancing
(weights stay unscaled): sengupta2019's SPIKE-NORM and max-norm, or Bu et al. 2022's QCFS thresholds with
``v_0 = th / 2``. This method is for evaluation: the recipe in a converted run directory lets ``deepspike
eval`` rebuild the SNN and load its checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.options import FLOAT32_MAX, is_float32, shown_value
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods.base import Method
from deepspike.methods.build import BuildRules, build_body
from deepspike.methods.converted_network import READOUTS, ConvertedNetwork, DirectEncoder, SignedPoissonEncoder
from deepspike.methods.registry import register_method
from deepspike.models.costs import layer_costs
from deepspike.models.fold import fold_batch_norms
from deepspike.models.spec import Architecture, Pool, Residual
from deepspike.neurons.chunked_if import ChunkedIF, chunked_neurons

NORMS = ("none", "max", "percentile", "spike", "channel", "qcfs")
RESETS = ("zero", "subtract")
RESIDUAL_RULES = ("unity", "balanced")
ENCODINGS = ("poisson", "direct")
SPIKE_VALUES = ("one", "threshold")
MAX_STEPS = 100_000
"""The most time steps a converted net simulates (``timesteps``; ``calib_timesteps`` per layer): 40 times the
paper's 2500 (Sengupta et al. 2019). The simulation runs in chunks, so no memory check stops a larger T; 10**11
steps ran on without end (``deepspike convert`` checks it first, ``api.conversion``; a converted run's config.yaml
edited by hand meets it here)."""


@dataclass
class ConvertedOptions:
    """thresholds: per neuron layer, build order, output last ([] = all 1.0), each a number or a list of one
    per channel; timesteps: simulated steps T; reset: "zero" (the paper) or "subtract"; readout: "spike"
    (count) or "membrane" (integrated input); input_scale: c in the input rate |x| / c; encoding: "poisson"
    (signed Poisson spikes) or "direct" (the analog image every step); initial_membrane: ``v_0`` as a
    fraction of the threshold; spike_value: "one" (0/1 spikes, sengupta2019) or "threshold" (a spike carries
    its threshold: ANN units, Bu et al. 2022); signed: neurons that also fire negative spikes to take back early
    ones (``neurons.chunked_if``, needs reset "subtract"); norm, residual, percentile, calib_*: how the thresholds were
    obtained (recorded for reference); chunk_elements: memory budget of one chunk (elements)."""

    thresholds: list[Any] = field(default_factory=list)  # numbers or lists of numbers (__post_init__)
    timesteps: int = 2500
    reset: str = "zero"
    readout: str = "spike"
    input_scale: float = 1.0
    norm: str = "none"
    residual: str = "unity"
    percentile: float = 99.99
    calib_samples: int = 256
    calib_timesteps: int = 2500
    encoding: str = "poisson"
    initial_membrane: float = 0.0
    spike_value: str = "one"
    signed: bool = False
    chunk_elements: int = 2**24

    def __post_init__(self) -> None:
        for key, value, valid in (
            ("reset", self.reset, RESETS),
            ("readout", self.readout, READOUTS),
            ("norm", self.norm, NORMS),
            ("residual", self.residual, RESIDUAL_RULES),
            ("encoding", self.encoding, ENCODINGS),
            ("spike_value", self.spike_value, SPIKE_VALUES),
        ):
            if value not in valid:
                raise ConfigError(f"bad value {value!r} for method.{key}; valid: {', '.join(valid)}")
        if self.timesteps < 1 or self.calib_timesteps < 1 or self.calib_samples < 1:
            raise ConfigError("method.timesteps, calib_timesteps and calib_samples must be >= 1")
        if max(self.timesteps, self.calib_timesteps) > MAX_STEPS:
            raise ConfigError(f"method.timesteps and calib_timesteps must be at most {MAX_STEPS:,} steps, got "
                              f"{shown_value(self.timesteps)} and {shown_value(self.calib_timesteps)}")
        if not self.input_scale > 0 or self.chunk_elements < 1:
            raise ConfigError(
                f"method.input_scale must be > 0 and chunk_elements >= 1, got "
                f"{self.input_scale}, {self.chunk_elements}"
            )
        if not 0.0 < self.percentile <= 100.0:
            raise ConfigError(f"method.percentile must be in (0, 100], got {self.percentile}")
        if self.signed and self.reset != "subtract":
            raise ConfigError("method.signed needs method.reset=subtract")
        if not 0.0 <= self.initial_membrane < 1.0:
            raise ConfigError(f"method.initial_membrane must be in [0, 1), got {self.initial_membrane}")
        flat = [t for entry in self.thresholds for t in (entry if isinstance(entry, list) else [entry])]
        bad = [t for t in flat if not (is_float32(t) and t > 0)]  # float32 thresholds; no booleans
        if bad or any(isinstance(entry, list) and not entry for entry in self.thresholds):
            raise ConfigError(f"method.thresholds must be numbers > 0 and at most float32's {FLOAT32_MAX:.4g} (or "
                              f"non-empty lists of them), got {shown_value(bad[0]) if bad else []}")


@register_method
class ConvertedMethod(Method):
    name = "converted"
    Options = ConvertedOptions
    made_by = "deepspike convert ANN_RUN"
    description = (
        "sengupta2019 ANN-to-SNN conversion: IF neurons, balanced thresholds (use `deepspike convert`)"
    )

    def build(self, arch: Architecture) -> ConvertedNetwork:
        """The SNN of ``arch`` with its batch-norms folded (``models.fold``); layers without an IF equivalent are
        refused (``check_convertible``)."""
        o = self.options
        check_convertible(arch)
        weighted = o.spike_value == "threshold"
        neuron = lambda shape=None: ChunkedIF(1.0, o.reset, o.initial_membrane, weighted, o.signed)  # noqa: E731
        rules = BuildRules(activation=neuron, wrap=TimeDistributed, dropout=lambda p: nn.Identity(), channel_dim=2)
        arch = fold_batch_norms(arch)
        body = build_body(arch, rules)
        shapes = [arch.input_shape, *(c.output_shape for c in layer_costs(arch))]
        encoder = DirectEncoder() if o.encoding == "direct" else SignedPoissonEncoder(o.input_scale, weighted)
        net = ConvertedNetwork(
            encoder,
            body,
            neuron(),
            o.timesteps,
            o.readout,
            max_numel=max(math.prod(s) for s in shapes),
            chunk_elements=o.chunk_elements,
        )
        if o.thresholds:
            check_channel_counts(arch, o.thresholds)
            set_thresholds(net, o.thresholds)
        return net

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the scores (rates) ``[B, K]``; reported by ``deepspike eval``, not trained on."""
        return F.cross_entropy(output, target)

    def class_scores(self, output: torch.Tensor) -> torch.Tensor:
        """The output rates ``[B, K]`` (what ``loss`` takes as logits)."""
        return output


def check_convertible(arch: Architecture) -> None:
    """A one-line ``ConfigError`` for a layer of ``arch`` whose ANN function rates cannot carry: max pooling (the
    largest of several spike trains is not the train of the largest rate) and a SEW junction ``and`` (``a s``) or
    ``iand`` (``(1 - a) s``): the rate of a product of two spike trains is not the product of their rates (two IF
    trains of rate 1/2 in step give 1/2, not 1/4), and ``1 - a`` needs 0/1 spikes. A SEW ``add`` junction is linear
    in the rates and converts."""
    if any(isinstance(v.layer, Pool) and v.layer.kind == "max" for v in arch.visits()):
        raise ConfigError(
            f"model {arch.name!r} has max pooling, which does not convert to IF neurons exactly; "
            "train the ANN with average pooling (e.g. model.args.pool=avg)"
        )
    products = sorted({v.layer.connect for v in arch.visits() if isinstance(v.layer, Residual)} - {None, "add"})
    if products:
        raise ConfigError(
            f"model {arch.name!r} joins residual branches with SEW {products[0]!r}, a product of spike trains that "
            "does not convert to IF neurons (the rate of a product is not the product of the rates); train the ANN "
            "with connect=add (e.g. model.args.connect=add) or plain residual units"
        )


def check_channel_counts(arch: Architecture, thresholds: list[Any]) -> None:
    """A one-line ``ConfigError`` for a list of per-channel thresholds (``thresholds``: build order, output last)
    whose length is not its neuron layer's channel count (axis 0 of the layer's per-sample output): a hand-edited
    list once failed only at the first simulated step, in a message that named neither the layer nor the option."""
    shapes = [v.output_shape for v in arch.visits() if v.activated] + [layer_costs(arch)[-1].output_shape]
    for i, (th, shape) in enumerate(zip(thresholds, shapes)):
        if isinstance(th, list) and len(th) != shape[0]:
            raise ConfigError(f"method.thresholds[{i}] lists {len(th)} channel thresholds, but neuron layer {i + 1} "
                              f"(output {'x'.join(map(str, shape))}) has {shape[0]} channels")


def set_thresholds(net: nn.Module, thresholds: list[Any]) -> None:
    """Set the threshold of every ``ChunkedIF`` of ``net`` (build order, output last): a number for the
    layer, or a list of one per channel."""
    neurons = chunked_neurons(net)
    if len(thresholds) != len(neurons):
        raise ConfigError(
            f"method.thresholds has {len(thresholds)} values but the network has "
            f"{len(neurons)} neuron layers (the output layer included)"
        )
    for neuron, th in zip(neurons, thresholds, strict=True):
        if isinstance(th, list | tuple):
            neuron.set_channel_thresholds(th)
        else:
            neuron.with_threshold(float(th))

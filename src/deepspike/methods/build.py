"""Turn an architecture spec into modules, with method-specific rules for the parts that differ.

The spec is read by the one spec walk (``models.walk``, folded into modules by ``_ModuleFold``). The rules
serve the ANN (``[B, ...]`` tensors, ReLU) and rate-coded SNNs (``[T, B, ...]`` tensors, stateless layers
wrapped in ``TimeDistributed``, spiking neurons as activations). The final ``act=False`` layer gets no
activation: the method adds its readout after the body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from deepspike.core.errors import ConfigError
from deepspike.layers.containers import ConcatBranches, ResidualBlock
from deepspike.layers.lean_avg_pool import LeanAvgPool2d
from deepspike.layers.sew import SewBlock
from deepspike.layers.spiking_attention import (
    AttentionProduct,
    QKAttention,
    QuerySum,
    SpikeDrivenSelfAttention,
    SpikingSelfAttention,
    TokenSum,
)
from deepspike.models.layer_specs import Activation, Attention, Conv, Flatten, Linear, Pool, Residual, Shape
from deepspike.models.spec import Architecture
from deepspike.models.walk import SpecFold, Visit, walk


def _identity(module: nn.Module) -> nn.Module:
    return module


@dataclass
class BuildRules:
    """What a method plugs into the walk.

    activation: ``(per-sample shape) -> module`` placed after each ``act=True`` layer and each junction.
    wrap: applied to every stateless layer (conv, linear, pool, flatten), e.g. ``TimeDistributed``.
    dropout: ``p -> module``.
    pool: optional ``(spec, input shape) -> module`` replacing the default avg/max pooling (unwrapped).
    channel_dim: axis of channels in the tensors the layers see (1 for ``[B, C, ...]``,
        2 for ``[T, B, C, ...]``).
    sequential: the container of each chain of modules (the body, residual bodies and shortcuts, branches),
        e.g. ``layers.spiking_sequential.SpikingSequential`` to fuse neurons with the pooling after them.
    norm: ``(per-sample output shape) -> module``, the batch-norm after a ``norm=True`` conv/linear (before its
        activation); None: the method has none and a spec with one is refused (``ConfigError``).
    recurrent: ``(wrapped linear module, per-sample output shape) -> module``, the whole recurrent layer of a
        ``Linear(recurrent=True)`` (its neuron included: no activation follows); None: refused (``ConfigError``).
    delayed: ``(in_features, out_features, max_delay, bias) -> module`` for a ``Linear(delays=D)``, not wrapped
        (it sees ``[T, B, F]``; ``layers.delays``); None: refused (``ConfigError``).
    attention_neuron: ``(threshold fraction, per-sample shape) -> module``, the neuron after the products of an
        ``Attention`` (``layers.spiking_attention``; its projections are built as ``Conv(C, 1, norm=True)`` under
        these rules, SDSA's output as ``Conv(C, 1, norm=True, act=False)``); None: refused (``ConfigError``).
    spike_delay: ``() -> module`` after the neurons (or the recurrent layer) of a ``Linear(spike_delay=1)``: its
        spikes reach the next layer one step late (``layers.spike_delay``); None: refused (``ConfigError``).
    lone_activation: ``(per-sample shape) -> module`` for an ``Activation`` layer. Unlike ``activation``'s, its input
        is no fresh layer output (a membrane shortcut reads it too), so the module must not overwrite it; None:
        refused (``ConfigError``; membrane-shortcut nets need a time-stepped rate method).
    """

    activation: Callable[[Shape], nn.Module]
    wrap: Callable[[nn.Module], nn.Module] = _identity
    dropout: Callable[[float], nn.Module] = nn.Dropout
    pool: Callable[[Pool, Shape], nn.Module] | None = None
    channel_dim: int = 1
    sequential: Callable[..., nn.Sequential] = nn.Sequential
    norm: Callable[[Shape], nn.Module] | None = None
    recurrent: Callable[[nn.Module, Shape], nn.Module] | None = None
    delayed: Callable[[int, int, int, bool], nn.Module] | None = None
    attention_neuron: Callable[[float, Shape], nn.Module] | None = None
    lone_activation: Callable[[Shape], nn.Module] | None = None
    spike_delay: Callable[[], nn.Module] | None = None


def default_pool(spec: Pool) -> nn.Module:
    """``nn.MaxPool2d``/``nn.AvgPool2d`` for ``spec``, ``[N, C, H, W] -> [N, C, H', W']``.

    ``H' = floor((H + 2p - k) / s) + 1``. Max pads with ``-inf`` (padding never wins, also for 0/1 spikes);
    average divides by ``k^2`` including the padding (``count_include_pad=True``): ``y = (1/k^2) sum_real x``,
    a fixed-weight ``1/k^2`` layer whose padding is a zero (silent) input: the reading a spiking net and
    ANN-to-SNN conversion give it (a converted pool's input rates average exactly like the ANN's).
    The average pool is ``LeanAvgPool2d`` (saves only shapes for backward: the spikes it reads are freed).
    """
    if spec.kind == "avg":  # LeanAvgPool2d: nn.AvgPool2d that does not keep its input for backward
        return LeanAvgPool2d(spec.kernel_size, spec.step, spec.padding, count_include_pad=True)
    return nn.MaxPool2d(spec.kernel_size, spec.step, spec.padding)


def build_body(arch: Architecture, rules: BuildRules) -> nn.Sequential:
    """Modules for ``arch.layers`` under ``rules``; returns an ``nn.Sequential`` (``rules.sequential``)."""
    if rules.attention_neuron is None and arch.contains(Attention):  # before its batch-norms are refused
        raise ConfigError(f"model {arch.name!r} has spiking self-attention, which this method cannot build; "
                          "attention needs a time-stepped rate method (method stbp)")
    if rules.lone_activation is None and arch.contains(Activation):
        raise ConfigError(f"model {arch.name!r} has lone Activation layers (a membrane-shortcut net), which this "
                          "method cannot build; they need a time-stepped rate method (method stbp)")
    modules, _ = walk(arch.layers, arch.input_shape, _ModuleFold(rules))
    return rules.sequential(*modules)


class _ModuleFold(SpecFold[nn.Module]):
    """The walk's fold into modules: each layer's module, then ``rules.activation`` where ``visit.activated``."""

    def __init__(self, rules: BuildRules) -> None:
        self.rules = rules

    def layer(self, visit: Visit) -> list[nn.Module]:
        if getattr(visit.layer, "recurrent", False):
            return [self._recurrent(visit), *self._spike_delay(visit)]
        if isinstance(visit.layer, Attention):
            return [self._attention(visit)]
        if isinstance(visit.layer, Activation):  # build_body refused it without lone_activation
            return [self.rules.lone_activation(visit.output_shape)]
        return [self._module(visit), *self._norm(visit), *self._activation(visit), *self._spike_delay(visit)]

    def _spike_delay(self, visit: Visit) -> list[nn.Module]:
        if not getattr(visit.layer, "spike_delay", 0):
            return []
        if self.rules.spike_delay is None:
            raise ConfigError(f"layer {visit.path} ({visit.layer}) delays its spikes by one step (model.args."
                              "spike_delay), which this method cannot build; it needs method stbp")
        return [self.rules.spike_delay()]

    def _recurrent(self, visit: Visit) -> nn.Module:
        if self.rules.recurrent is None:
            raise ConfigError(f"layer {visit.path} ({visit.layer}) is recurrent, which this method cannot build; "
                              "recurrent layers need a time-stepped rate method (method stbp)")
        return self.rules.recurrent(self._module(visit), visit.output_shape)

    def _attention(self, visit: Visit) -> nn.Module:
        """``SpikingSelfAttention`` (SSA) with four ``Conv(C, 1, norm=True)`` projections built by this fold's rules,
        ``SpikeDrivenSelfAttention`` (SDSA), whose output projection is ``Conv(C, 1, norm=True, act=False)``, or
        ``QKAttention`` (three projections)."""
        layer, shape = visit.layer, visit.input_shape  # build_body refused attention without attention_neuron

        def projection(act: bool = True) -> nn.Module:
            return self.rules.sequential(*walk((Conv(shape[0], 1, norm=True, act=act),), shape, self)[0])

        if layer.mixing == "sdsa":
            attend = self.rules.attention_neuron(layer.attention_threshold, (shape[0], 1, 1))
            return SpikeDrivenSelfAttention(projection(), projection(), projection(), TokenSum(), attend,
                                            projection(act=False))
        if layer.mixing in ("qk_token", "qk_channel"):
            sums = QuerySum(layer.heads, "channels" if layer.mixing == "qk_token" else "tokens")
            sums_shape = (layer.heads, *shape[1:]) if sums.over == "channels" else (shape[0], 1, 1)
            attend = self.rules.attention_neuron(layer.attention_threshold, sums_shape)
            return QKAttention(projection(), projection(), sums, attend, projection())
        product = AttentionProduct(layer.heads, layer.scale)
        return SpikingSelfAttention(projection(), projection(), projection(), product,
                                    self.rules.attention_neuron(layer.attention_threshold, shape), projection())

    def _norm(self, visit: Visit) -> list[nn.Module]:
        if not getattr(visit.layer, "norm", False):
            return []
        if self.rules.norm is None:
            raise ConfigError(
                f"layer {visit.path} ({visit.layer}) has a batch-norm, which this method cannot build; "
                "use a model without batch-norm (model.args.batch_norm=false where the model has it)"
            )
        norm = self.rules.norm(visit.output_shape)
        scale = getattr(visit.layer, "norm_scale", 1.0)
        if scale != 1.0:  # the spec's initial batch-norm weight (layer_specs.Conv)
            with torch.no_grad():
                for module in norm.modules():
                    if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
                        _trained_weight(module).mul_(scale)
        return [norm]

    def block(self, visit: Visit, branches: list[list[nn.Module]]) -> list[nn.Module]:
        chains = [self.rules.sequential(*branch) for branch in branches]
        if isinstance(visit.layer, Residual) and visit.layer.connect is not None:
            return [SewBlock(*chains, visit.layer.connect)]  # spikes joined by g, no activation after
        if isinstance(visit.layer, Residual):
            return [ResidualBlock(*chains, self.rules.activation(visit.output_shape))]  # the junction's
        return [ConcatBranches(chains, self.rules.channel_dim)]

    def _activation(self, visit: Visit) -> list[nn.Module]:
        return [self.rules.activation(visit.output_shape)] if visit.activated else []

    def _module(self, visit: Visit) -> nn.Module:
        """The module of one layer without branches (the walk hands only conv/linear/pool/flatten/dropout)."""
        layer, shape, rules = visit.layer, visit.input_shape, self.rules
        if isinstance(layer, Conv):
            return rules.wrap(nn.Conv2d(shape[0], layer.out_channels, layer.kernel_size, layer.stride,
                                        layer.padding, bias=layer.bias))
        if isinstance(layer, Linear) and layer.delayed:
            if rules.delayed is None:
                raise ConfigError(f"layer {visit.path} ({layer}) has synaptic delays, which this method cannot "
                                  "build; delayed layers need a time-stepped rate method (method stbp)")
            return rules.delayed(shape[0], layer.out_features, layer.delays, layer.bias)
        if isinstance(layer, Linear):
            return rules.wrap(nn.Linear(shape[0], layer.out_features, bias=layer.bias))
        if isinstance(layer, Pool):
            return rules.pool(layer, shape) if rules.pool is not None else rules.wrap(default_pool(layer))
        if isinstance(layer, Flatten):
            return rules.wrap(nn.Flatten())
        return rules.dropout(layer.p)


def _trained_weight(bn: nn.modules.batchnorm._BatchNorm) -> torch.Tensor:
    """The parameter behind ``bn.weight``: itself, or under a parametrisation (tdBN's ``gamma = alpha V_th lambda``,
    ``layers.temporal_batchnorm``) the trained ``lambda``, so that scaling it scales ``gamma`` (``bn.weight`` there is
    a tensor computed on each read: scaling it in place changed nothing)."""
    if parametrize.is_parametrized(bn, "weight"):
        return bn.parametrizations.weight.original
    return bn.weight

"""Turn an architecture spec into modules, with method-specific rules for the parts that differ.

The same walk serves the ANN (``[B, ...]`` tensors, ReLU) and rate-coded SNNs (``[T, B, ...]``
tensors, stateless layers wrapped in ``TimeDistributed``, spiking neurons as activations). The
final ``act=False`` layer gets no activation: the method adds its readout after the body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from deepspike.layers.containers import ConcatBranches, ResidualBlock
from deepspike.layers.lean_avg_pool import LeanAvgPool2d
from deepspike.models.spec import (
    Architecture,
    Concat,
    Conv,
    Dropout,
    Flatten,
    Layer,
    Linear,
    Pool,
    Residual,
    Shape,
    output_shape,
)


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
    """

    activation: Callable[[Shape], nn.Module]
    wrap: Callable[[nn.Module], nn.Module] = _identity
    dropout: Callable[[float], nn.Module] = nn.Dropout
    pool: Callable[[Pool, Shape], nn.Module] | None = None
    channel_dim: int = 1
    sequential: Callable[..., nn.Sequential] = nn.Sequential


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
    modules, _ = _build(arch.layers, arch.input_shape, rules)
    return rules.sequential(*modules)


def _build(layers: tuple[Layer, ...], shape: Shape, rules: BuildRules) -> tuple[list[nn.Module], Shape]:
    modules: list[nn.Module] = []
    for layer in layers:
        out = output_shape(layer, shape)
        if isinstance(layer, Conv):
            conv = nn.Conv2d(
                shape[0], layer.out_channels, layer.kernel_size, layer.stride, layer.padding, bias=layer.bias
            )
            modules.append(rules.wrap(conv))
            if layer.act:
                modules.append(rules.activation(out))
        elif isinstance(layer, Linear):
            modules.append(rules.wrap(nn.Linear(shape[0], layer.out_features, bias=layer.bias)))
            if layer.act:
                modules.append(rules.activation(out))
        elif isinstance(layer, Pool):
            if rules.pool is not None:
                modules.append(rules.pool(layer, shape))
            else:
                modules.append(rules.wrap(default_pool(layer)))
        elif isinstance(layer, Flatten):
            modules.append(rules.wrap(nn.Flatten()))
        elif isinstance(layer, Dropout):
            modules.append(rules.dropout(layer.p))
        elif isinstance(layer, Residual):
            body, _ = _build(layer.body, shape, rules)
            shortcut, _ = _build(layer.shortcut, shape, rules)
            modules.append(
                ResidualBlock(rules.sequential(*body), rules.sequential(*shortcut), rules.activation(out))
            )
        elif isinstance(layer, Concat):
            branches = [rules.sequential(*_build(b, shape, rules)[0]) for b in layer.branches]
            modules.append(ConcatBranches(branches, rules.channel_dim))
        else:
            raise TypeError(f"unhandled layer spec {layer!r}")
        shape = out
    return modules, shape

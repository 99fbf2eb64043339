"""Build a TTFS network from an architecture spec: images ``[B, C, H, W]`` -> output spike times ``[B, K]``.

The walk is ``methods.build.build_body`` with TTFS rules: its ``nn.Conv2d``/``nn.Linear`` are swapped for
``TTFSConv2d``/``TTFSLinear`` of the same shape by the ``wrap`` hook (the TTFS layer fires by itself, so the
activation is the identity, or the time-domain batch-norm after conv layers); pooling becomes the earliest
spike (max; padding = no spike) or zhou2021's average neuron (padded only with kernel relpsp: with exp a
window touching the padding never fires); dropout removes spikes. The classifier (``act=False``) is a TTFS
layer as well: its spike times are the output, and the earliest output spike is the decision.
``Residual`` blocks are rejected: a sum of spike times has no TTFS meaning (``Concat`` is fine).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepspike.coding.ttfs_input import TTFSInput
from deepspike.core.errors import ConfigError
from deepspike.methods.build import BuildRules, build_body
from deepspike.models.spec import Architecture, Pool, Residual, Shape
from deepspike.ttfs.batchnorm import TTFSBatchNorm
from deepspike.ttfs.layers import TTFSAvgPool2d, TTFSConv2d, TTFSDropout, TTFSLinear, TTFSMaxPool2d


@dataclass
class TTFSConfig:
    """Neuron and layer settings shared by every layer of a TTFS network."""

    kernel: str = "exp"
    theta: float = 1.0
    tau: float = 1.0
    bias: bool = True
    backend: str = "auto"
    init_scale: float = 8.0
    batchnorm: bool = False


class TTFSNetwork(nn.Module):
    """``encoder`` (images -> input spike times), then ``body`` (TTFS layers) -> output times ``[B, K]``."""

    def __init__(self, encoder: nn.Module, body: nn.Sequential) -> None:
        super().__init__()
        self.encoder = encoder
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.encoder(x))

    def neuron_layers(self) -> list[nn.Module]:
        """The trainable TTFS neuron layers (``TTFSLinear``/``TTFSConv2d``) in forward order."""
        return [m for m in self.modules() if isinstance(m, (TTFSLinear, TTFSConv2d))]


def _reject_residual(arch: Architecture) -> None:
    if arch.contains(Residual):
        raise ConfigError(
            "TTFS methods (ttfs, stdbp) cannot build Residual blocks: adding spike times has no "
            "meaning; use a model without residual connections (Concat branches are supported)"
        )


def _swap(cfg: TTFSConfig):
    """``wrap`` hook: ``nn.Conv2d``/``nn.Linear`` -> TTFS layer of the same shape; others unchanged."""

    def wrap(module: nn.Module) -> nn.Module:
        common = dict(bias=cfg.bias, kernel=cfg.kernel, theta=cfg.theta, tau=cfg.tau, backend=cfg.backend,
                      init_scale=cfg.init_scale)
        if isinstance(module, nn.Conv2d):
            return TTFSConv2d(module.in_channels, module.out_channels, module.kernel_size[0],
                              module.stride[0], module.padding[0], **common)
        if isinstance(module, nn.Linear):
            return TTFSLinear(module.in_features, module.out_features, **common)
        return module

    return wrap


def _activation(cfg: TTFSConfig):
    def act(shape: Shape) -> nn.Module:
        if cfg.batchnorm and len(shape) == 3:  # after conv layers (channels on dim 1)
            return TTFSBatchNorm(shape[0], tau=cfg.tau)
        return nn.Identity()

    return act


def _pool(cfg: TTFSConfig):
    """``pool`` hook: earliest spike (max) or zhou2021's average neuron; padding is "no spike" (+inf)."""

    def pool(spec: Pool, shape: Shape) -> nn.Module:
        if spec.kind == "max":
            return TTFSMaxPool2d(spec.kernel_size, spec.step, spec.padding)
        if spec.padding and cfg.kernel == "exp":
            raise ConfigError(
                f"ttfs/stdbp with kernel exp cannot build {spec}: the average neuron (weights theta/(N-1)) "
                "needs all N window inputs, so every window touching the padding would never fire; use "
                "padding 0, a max pool, or kernel relpsp"
            )
        return TTFSAvgPool2d(spec.kernel_size, spec.step, cfg.kernel, cfg.theta, cfg.tau, cfg.backend,
                             spec.padding)

    return pool


def build_ttfs_body(arch: Architecture, cfg: TTFSConfig) -> nn.Sequential:
    """TTFS layers for ``arch`` (times ``[B, C, H, W]`` -> ``[B, K]``) by ``build_body`` with TTFS rules."""
    _reject_residual(arch)
    rules = BuildRules(activation=_activation(cfg), wrap=_swap(cfg), dropout=TTFSDropout, pool=_pool(cfg),
                       channel_dim=1)
    return build_body(arch, rules)


def build_ttfs_network(arch: Architecture, cfg: TTFSConfig, encoder: TTFSInput) -> TTFSNetwork:
    """The whole model: ``encoder`` + ``build_ttfs_body(arch, cfg)``."""
    return TTFSNetwork(encoder, build_ttfs_body(arch, cfg))


@torch.no_grad()
def init_from_ann(model: nn.Module, ann_state: dict[str, torch.Tensor]) -> int:
    """Copy a trained ANN's conv/linear weights (same architecture, ``methods.ann``) into ``model`` in order.

    zhang2021 initialises its SNNs from a trained ANN of the same shape. The ANN's state dict holds the
    weights of its ``nn.Conv2d``/``nn.Linear`` layers in forward order (keys ``*.weight`` of rank 2 or 4,
    with ``*.bias`` when present); they go to the TTFS neuron layers in the same order. TTFS bias weights
    without an ANN bias keep their initial values. Returns the number of layers copied; ``ConfigError``
    when the counts or shapes differ.
    """
    layers = [m for m in model.modules() if isinstance(m, (TTFSLinear, TTFSConv2d))]
    weights = [(k, v) for k, v in ann_state.items() if k.endswith("weight") and v.dim() in (2, 4)]
    if len(weights) != len(layers):
        raise ConfigError(
            f"ANN initialisation: the ANN has {len(weights)} conv/linear weights, the TTFS net {len(layers)} "
            "layers; train the ANN on the same model (method ann)"
        )
    for layer, (key, w) in zip(layers, weights):
        if tuple(w.shape) != tuple(layer.weight.shape):
            raise ConfigError(
                f"ANN initialisation: {key} has shape {tuple(w.shape)}, TTFS layer needs "
                f"{tuple(layer.weight.shape)}"
            )
        layer.weight.copy_(w)
        bias = ann_state.get(key[: -len("weight")] + "bias")
        if bias is not None and layer.bias is not None:
            layer.bias.copy_(bias)
    return len(layers)

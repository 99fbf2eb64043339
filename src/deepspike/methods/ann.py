"""Method ``ann``: the architecture as an ordinary ReLU network (baseline, and the source for conversion)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.options import check_unused
from deepspike.layers.containers import ResidualBlock
from deepspike.layers.qcfs import QCFS
from deepspike.layers.temporal_batchnorm import batch_norm
from deepspike.methods.base import Method
from deepspike.methods.build import BuildRules, build_body
from deepspike.methods.losses import LOSSES, classification_loss
from deepspike.methods.rate_network import as_weight_dtype
from deepspike.methods.registry import register_method
from deepspike.models.spec import Architecture

INITS = ("default", "sengupta")
ACTIVATIONS = ("relu", "qcfs")


@dataclass
class AnnOptions:
    """``loss``: "ce" or "mse"; ``init``: "default" (PyTorch's) or "sengupta" (sengupta2019 section 7.1:
    conv/linear weights ~ N(0, sigma^2) with the paper's sigma for plain and residual layers, see
    ``sengupta_init_``); ``activation``: "relu" or "qcfs" (Bu et al. 2022, ``layers.qcfs``: ``levels`` L and the
    trainable threshold's start ``qcfs_threshold``; the ANN to convert at a few time steps)."""

    loss: str = "ce"
    init: str = "default"
    activation: str = "relu"
    levels: int = 8
    qcfs_threshold: float = 8.0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(f"bad value {self.loss!r} for method.loss; valid: {', '.join(LOSSES)}")
        if self.init not in INITS:
            raise ConfigError(f"bad value {self.init!r} for method.init; valid: {', '.join(INITS)}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"bad value {self.activation!r} for method.activation; valid: {', '.join(ACTIVATIONS)}")
        if self.levels < 1:
            raise ConfigError(f"method.levels must be >= 1, got {self.levels}")
        if not 0 < self.qcfs_threshold < math.inf:
            raise ConfigError(f"method.qcfs_threshold must be finite and > 0, got {self.qcfs_threshold}")


def _input_as_weight_dtype(model: nn.Module, args: tuple) -> tuple:
    """Forward pre-hook of an ann net: its input in the weights' dtype outside autocast (``as_weight_dtype``, as the
    rate-coded and converted nets take it; float64 images stopped in the first layer)."""
    return (as_weight_dtype(model, args[0]), *args[1:]) if args else args


def sengupta_init_(model: nn.Module) -> nn.Module:
    """In place, sengupta2019 section 7.1, for every ``Conv2d`` (k x k kernel, n output channels) and
    ``Linear`` (k = 1, n output features): ``w ~ N(0, sigma^2)`` with

        sigma = sqrt(2 / (k^2 n))      plain (non-residual) layers
        sigma = sqrt(2) / (k^2 n)      layers inside a residual unit's non-identity path

    (the paper: "for residual convolutional layers, the standard deviation ... was sqrt(2)/(k^2 n)"); the
    much smaller residual weights keep the unnormalised sums of a deep BN-free ResNet from exploding.
    Shortcut projections count as plain layers. Biases (if any) are set to 0. Returns ``model``.
    """
    residual = {id(m) for block in model.modules() if isinstance(block, ResidualBlock) for m in block.body.modules()}
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan = (m.weight[0, 0].numel() if isinstance(m, nn.Conv2d) else 1) * m.weight.shape[0]
            std = math.sqrt(2.0) / fan if id(m) in residual else math.sqrt(2.0 / fan)
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


@register_method
class AnnMethod(Method):
    """ReLU (or QCFS) after every ``act=True`` layer and every residual junction, batch-norm where the spec has
    ``norm=True``; scores are the last layer's output. Floating-point input is cast to the weights' dtype outside
    autocast (``as_weight_dtype``, a forward pre-hook), as the rate-coded and converted nets do."""

    name = "ann"
    Options = AnnOptions
    description = "plain ReLU ANN of the same architecture (baseline; source for conversion)"

    def build(self, arch: Architecture) -> nn.Module:
        o = self.options
        if o.activation == "qcfs":
            activation = lambda shape: QCFS(o.levels, o.qcfs_threshold)  # noqa: E731
        else:
            activation = lambda shape: nn.ReLU()  # noqa: E731
        model = build_body(arch, BuildRules(activation=activation, norm=batch_norm))
        model.register_forward_pre_hook(_input_as_weight_dtype)  # float64 images of the float32 net
        return sengupta_init_(model) if self.options.init == "sengupta" else model

    def check_options_used(self) -> None:
        """``method.levels`` and ``method.qcfs_threshold`` (the QCFS layers' L and threshold start) set with
        ``activation: relu``, where no layer reads them: refused for new runs (``core.options.check_unused``; the
        base's ``check_new_run`` calls this), so runs saved with one load."""
        o = self.options
        check_unused(o, ((("levels", "qcfs_threshold"), o.activation == "qcfs", "method.activation=qcfs"),))

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return classification_loss(self.options.loss, output, target)

    def class_scores(self, output: torch.Tensor) -> torch.Tensor:
        """The logits ``[B, K]`` themselves."""
        return output

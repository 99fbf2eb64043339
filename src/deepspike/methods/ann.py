"""Method ``ann``: the architecture as an ordinary ReLU network (baseline, and the source for conversion)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepspike.errors import ConfigError
from deepspike.methods.base import Method
from deepspike.methods.build import BuildRules, build_body
from deepspike.methods.losses import LOSSES, classification_loss
from deepspike.methods.registry import register_method
from deepspike.models.spec import Architecture


@dataclass
class AnnOptions:
    loss: str = "ce"

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(f"bad value {self.loss!r} for method.loss; valid: {', '.join(LOSSES)}")


@register_method
class AnnMethod(Method):
    """ReLU after every ``act=True`` layer and every residual junction; scores are the last layer's output."""

    name = "ann"
    Options = AnnOptions
    description = "plain ReLU ANN of the same architecture (baseline; source for conversion)"

    def build(self, arch: Architecture) -> nn.Module:
        return build_body(arch, BuildRules(activation=lambda shape: nn.ReLU()))

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return classification_loss(self.options.loss, output, target)

"""Containers for branching topologies: residual blocks and inception-style concatenation."""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """``act(body(x) + shortcut(x))``; an empty ``shortcut`` is the identity (shapes must match)."""

    def __init__(self, body: nn.Module, shortcut: nn.Module, act: nn.Module) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class ConcatBranches(nn.Module):
    """Run every branch on ``x`` and concatenate the outputs on ``dim`` (the channel axis)."""

    def __init__(self, branches: list[nn.Module], dim: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=self.dim)

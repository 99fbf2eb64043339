"""Classification losses on score vectors ``[B, K]`` shared by several methods."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deepspike.core.errors import ConfigError

LOSSES = ("ce", "mse")


def classification_loss(name: str, scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``ce``: cross-entropy of softmax(scores); ``mse``: mean over B and K of (scores - onehot(target))^2.

    ``mse`` is the rate-coded papers' loss (wu2019 on firing rates, lee2020 on V(T)/T); note it averages
    over the K classes as ``torch.nn.functional.mse_loss`` does.
    """
    if name == "ce":
        return F.cross_entropy(scores, target)
    if name == "mse":
        onehot = F.one_hot(target, scores.shape[1]).to(scores.dtype)
        return F.mse_loss(scores, onehot)
    raise ConfigError(f"unknown loss {name!r}; valid: {', '.join(LOSSES)}")

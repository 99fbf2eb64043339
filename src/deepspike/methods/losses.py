"""Classification losses on score vectors ``[B, K]`` shared by several methods, TET on ``[T, B, K]`` and the
spike-count MSE on output spikes ``[T, B, K]`` (or their rates ``[B, K]`` over a known T)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deepspike.core.errors import ConfigError
from deepspike.core.precision import at_least_float32

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


def tet_loss(outputs: torch.Tensor, target: torch.Tensor, weight: float = 0.0, phi: float = 1.0) -> torch.Tensor:
    """Temporal efficient training (Deng et al., ICLR 2022, eq. 8-10) on per-step outputs ``[T, B, K]``:

        L = (1 - lambda) (1/T) sum_t CE(o_t, y)  +  lambda (1/(T B K)) sum_{t,b,k} (o_t[b, k] - phi)^2

    (``weight`` = lambda, the MSE regulariser that keeps the outputs near the constant ``phi``; lambda = 0 is
    plain TET). All steps' cross-entropies come from one call on the ``[T*B, K]`` batch (every step has B
    samples, so its mean is the mean of the per-step means). ``outputs [B, K]`` counts as one step.
    """
    steps = outputs.reshape(-1, outputs.shape[-1])  # [T, B, K] -> [T*B, K]
    labels = target.repeat(steps.shape[0] // max(len(target), 1))  # [T*B]: step-major like ``steps``
    loss = F.cross_entropy(steps, labels)
    if weight:
        loss = (1.0 - weight) * loss + weight * F.mse_loss(steps, torch.full_like(steps, phi))
    return loss


def mse_count_loss(outputs: torch.Tensor, target: torch.Tensor, correct_rate: float = 1.0,
                   incorrect_rate: float = 0.0, steps: int | None = None) -> torch.Tensor:
    """Spike-count MSE (snnTorch's ``mse_count_loss``, after SLAYER) on the output layer's spikes:

        c[b, k] = sum_t s_t[b, k],   c*[b, k] = T (correct_rate if k = y_b else incorrect_rate),
        L = (1/(B K)) sum_{b,k} (c[b, k] - c*[b, k])^2 / T  =  T (1/(B K)) sum_{b,k} (r[b, k] - r*[b, k])^2

    ``outputs``: the spikes ``[T, B, K]`` (T from the shape), or their mean rates ``r = c / T`` ``[B, K]`` over
    ``steps`` = T steps (a ``ConfigError`` without it). snnTorch rounds the targets down to whole counts
    (``int(T * rate)``); here they are ``T * rate`` exactly (the same where that is a whole number).
    """
    if outputs.dim() == 3:
        steps = outputs.shape[0]  # [T, B, K] -> counts [B, K], summed in float32 at least: bfloat16 (autocast)
        counts = outputs.sum(dim=0, dtype=at_least_float32(outputs.dtype))  # rounds from 256 on
    elif steps is None:
        raise ConfigError("mse_count needs the spikes [T, B, K] or the number of steps T of the rates [B, K]")
    else:
        counts = outputs * steps
    onehot = F.one_hot(target, counts.shape[1]).to(counts.dtype)
    wanted = steps * (incorrect_rate + (correct_rate - incorrect_rate) * onehot)  # [B, K]
    return F.mse_loss(counts, wanted) / max(steps, 1)

"""Evaluation: accuracy and mean loss of a model over a batch iterator, reproducibly."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from deepspike.methods.base import Method

EVAL_SEED = 1234


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    method: Method,
    batches: Iterable,
    seed: int = EVAL_SEED,
    reduce: Callable[[list[float]], list[float]] | None = None,
) -> dict[str, float]:
    """``{"accuracy": fraction correct, "loss": mean loss, "samples": N}`` over ``batches``.

    Stochastic models (Poisson input) draw from a generator seeded with ``seed`` inside
    ``torch.random.fork_rng``, so the same checkpoint always scores the same and the training random
    stream is left untouched. ``reduce`` sums ``[correct, loss_sum, n]`` over data-parallel ranks.
    """
    was_training = model.training
    model.eval()
    correct, loss_sum, n = 0.0, 0.0, 0.0
    device = next(model.parameters()).device
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for x, y in batches:
            if len(y) == 0:
                continue
            out = model(x)
            loss_sum += float(method.loss(out, y)) * len(y)
            correct += int((method.predict(out) == y).sum())
            n += len(y)
    model.train(was_training)
    if reduce is not None:
        correct, loss_sum, n = reduce([correct, loss_sum, n])
    if n == 0:
        return {"accuracy": float("nan"), "loss": float("nan"), "samples": 0}
    return {"accuracy": correct / n, "loss": loss_sum / n, "samples": int(n)}

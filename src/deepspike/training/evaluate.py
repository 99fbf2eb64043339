"""Evaluation: a reproducible no-grad pass, and accuracy/loss of a model over a batch iterator."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import torch

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_whole
from deepspike.methods.base import Method
from deepspike.training.runtime import autocast, check_steps_fit

EVAL_SEED = 1234


@contextlib.contextmanager
def eval_pass(model: torch.nn.Module, seed: int = EVAL_SEED) -> Iterator[None]:
    """Run the block with ``model`` in eval mode, without gradients, on a private random stream.

    Inside ``torch.random.fork_rng`` the generator is seeded with ``seed``, so stochastic models (Poisson
    input) draw the same numbers every time (the same checkpoint always scores the same) and the caller's
    random stream is left untouched. The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    params = next(model.parameters(), None)
    devices = [params.device] if params is not None and params.device.type == "cuda" else []
    model.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield
    finally:
        model.train(was_training)


def limit_samples(batches: Iterable, limit: int | None) -> Iterator:
    """Yield ``(x, y)`` batches until ``limit`` samples (the last batch cut short); all of them when None."""
    n = 0
    for x, y in batches:
        if limit is not None and n + len(y) > limit:
            x, y = x[: limit - n], y[: limit - n]
        if len(y) == 0:
            return
        yield x, y
        n += len(y)


def evaluate(
    model: torch.nn.Module,
    method: Method,
    batches: Iterable,
    seed: int = EVAL_SEED,
    reduce: Callable[[list[float]], list[float]] | None = None,
    timesteps: int | None = None,
    precision: torch.dtype | None = None,
) -> dict[str, float]:
    """``{"accuracy": fraction correct, "loss": mean loss, "samples": N}`` over ``batches`` in an ``eval_pass``.

    ``reduce`` sums ``[correct, loss_sum, n]`` over data-parallel ranks; ``timesteps`` overrides T of a
    time-stepped network (``model(x, timesteps=T)``; the loss is the method's at that T, ``Method.loss_at``),
    refused before anything is allocated when one batch's input over T steps cannot fit in memory
    (``check_timesteps_fit``); ``precision`` an autocast dtype
    (None: float32). A ``timesteps`` that is not None must be an integer >= 1 (a ``ConfigError``: 0 ran the net at
    its own T, and a caller wrote that score down as T = 0's).
    """
    if timesteps is not None and not is_whole(timesteps, 1):
        raise ConfigError(f"evaluation time steps must be an integer >= 1, got {timesteps!r}")
    correct, loss_sum, n = 0.0, 0.0, 0.0
    with eval_pass(model, seed):
        for x, y in batches:
            if len(y) == 0:
                continue
            if timesteps is not None:  # an encoder that widens the input (population coding) widens [T, B, ...]
                check_timesteps_fit(x, timesteps, getattr(getattr(model, "encoder", None), "widening", 1))
            with autocast(x.device, precision):
                out = model(x) if timesteps is None else model(x, timesteps=timesteps)
                loss = method.loss_at(out, y, timesteps)  # a loss of counts (mse_count) counts over this T
            loss_sum += float(loss) * len(y)
            correct += int((method.predict(out) == y).sum())
            n += len(y)
    if reduce is not None:
        correct, loss_sum, n = reduce([correct, loss_sum, n])
    if n == 0:
        return {"accuracy": float("nan"), "loss": float("nan"), "samples": 0}
    return {"accuracy": correct / n, "loss": loss_sum / n, "samples": int(n)}


def check_timesteps_fit(x: torch.Tensor, timesteps: int, widening: int = 1) -> None:
    """A one-line ``ConfigError`` when the input of batch ``x [B, ...]`` over ``timesteps`` steps, the
    ``[T, B, ...]`` tensor a time-stepped network encodes it into (``widening`` times as many values per step
    for an encoder that widens it), would alone exceed the memory of ``x``'s device (its activations need at least
    as much): the bound is derived from memory, not a fixed T."""
    check_steps_fit(x.numel() * x.element_size() * widening, timesteps, x.device,
                    f"one batch's [T, B, ...] input ({len(x)} samples of shape {list(x.shape[1:])})", "inference ")

"""One training epoch: the step every training path runs (the Trainer, quantization-aware retraining).

Optionally under ``torch.autocast`` (bf16 convolutions and matrix products; the closed-form TTFS kernels and
the fused IF/LIF and learnable-neuron kernels keep their float32 arithmetic on bf16 inputs, see
``neurons.fused_low_precision``) and with channels-last image batches.

Per batch: ``loss = method.loss(model(x), y) + method.penalty(net)``; under data parallelism the loss is
scaled by ``n_rank * world / n_global`` (see ``training.distributed``); ``backward``;
``method.after_backward(net)``; optional gradient-norm clipping; optimizer step; scheduler step; optional
weight-average update; a non-finite loss stops training (``TrainingDiverged``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import nullcontext
from itertools import islice

import torch
from torch import nn
from tqdm import tqdm

from deepspike.core.errors import ConfigError
from deepspike.core.options import FLOAT32_MAX
from deepspike.core.spike_tally import SpikeTally, counting_spikes
from deepspike.data.mixing import correct as correct_predictions
from deepspike.data.mixing import mixed_loss
from deepspike.methods.base import Method
from deepspike.training.distill import Distillation
from deepspike.training.divergence import check_finite_loss
from deepspike.training.ema import WeightAverage
from deepspike.training.runtime import autocast
from deepspike.training.temporal_grad import ONLINE, online_step

ONE_VALUE_PER_CHANNEL = "Expected more than 1 value per channel when training"  # torch's batch-norm's words


def train_epoch(
    model: nn.Module,
    method: Method,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    batches,
    *,
    net: nn.Module | None = None,
    grad_clip: float | None = None,
    max_steps: int | None = None,
    world_size: int = 1,
    reduce: Callable[[list[float]], list[float]] | None = None,
    progress: str | None = None,
    precision: torch.dtype | None = None,
    channels_last: bool = False,
    ema: WeightAverage | None = None,
    epoch: int | None = None,
    temporal_grad: str = "bptt",
    sltt_steps: int | None = None,
    distill: Distillation | None = None,
) -> dict[str, float]:
    """Train ``model`` for one pass over ``batches``; returns ``train_loss``, ``train_accuracy`` and ``lr``, the
    rate (first parameter group) of the pass's last optimizer step (the schedule's next one when no step ran). A
    method that ``learns_locally`` gets each batch through ``method.learn`` (no backward, no step, no ``lr``).
    ``method.end_training_pass(net, batches)`` follows them (the same batches, ``max_steps`` of them at most).

    model: what runs the batches (possibly a DistributedDataParallel wrapper); net: the bare network the
    method hooks see (default ``model``); max_steps: stop after this many batches; reduce: sums
    ``[correct, loss_sum, n]`` over ranks; progress: a tqdm label, or None for no bar (off when not a TTY);
    precision: autocast dtype of the forward pass and loss (e.g. ``torch.bfloat16``), None for float32;
    channels_last: feed image batches in ``torch.channels_last`` memory format; ema: a weight average
    updated from ``net`` after every optimizer step; epoch: the 0-based epoch, named when a step's loss is
    not finite (``TrainingDiverged``, see ``training.divergence``); temporal_grad, sltt_steps: how the gradient
    goes through time (``training.temporal_grad``; the online modes run the batch step by step); distill: a
    teacher whose soft targets blend into the loss (``training.distill``; not with the online modes).
    """
    model.train()
    net = model if net is None else net
    global_sizes = [len(c) for c in batches.global_batches()] if world_size > 1 else None
    totals = [0.0, 0.0, 0.0]  # loss sum, correct, samples
    tally, lr = SpikeTally(), optimizer.param_groups[0]["lr"]
    bar = tqdm(batches, desc=progress, leave=False, dynamic_ncols=True, disable=None if progress else True)
    for step, (x, y) in enumerate(bar):
        if max_steps is not None and step >= max_steps:
            break
        if method.learns_locally:  # a local rule, no gradient (checked at setup: one process, no weight average)
            out, loss = _learn_locally(method, net, x, y)
        else:
            scale = len(y) * world_size / global_sizes[step] if global_sizes else 1.0
            optimizer.zero_grad(set_to_none=True)
            with counting_spikes(net, tally) if not bar.disable else nullcontext():
                out, loss = _backward(model, method, net, x, y, scale, precision, channels_last, temporal_grad,
                                      sltt_steps, distill)
            lr = _update(model, net, method, optimizer, scheduler, grad_clip, ema)
        _add_batch(totals, method, out, loss, y, epoch, step)
        if not bar.disable:
            _show(bar, *totals, tally)
    method.end_training_pass(net, batches if max_steps is None else islice(batches, max_steps))
    stats = _epoch_stats(totals, reduce)
    return stats if method.learns_locally else {**stats, "lr": lr}


def _epoch_stats(totals: list[float], reduce: Callable[[list[float]], list[float]] | None) -> dict[str, float]:
    """``train_loss`` and ``train_accuracy`` of the pass from ``totals`` ``[loss sum, correct, samples]``, summed
    over ranks by ``reduce`` when given."""
    loss_sum, correct, n = totals
    if reduce is not None:
        correct, loss_sum, n = reduce([correct, loss_sum, n])
    return {"train_loss": loss_sum / max(n, 1), "train_accuracy": correct / max(n, 1)}


def _learn_locally(method: Method, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor,
                                                                                              torch.Tensor]:
    """``(out, loss)`` of a batch a method that ``learns_locally`` learns from (``method.learn``, no gradient)."""
    with torch.no_grad():
        out = method.learn(net, x, y)
        return out, method.loss(out, y)


def _add_batch(totals: list[float], method: Method, out: torch.Tensor, loss: torch.Tensor, y: torch.Tensor,
               epoch: int | None, step: int) -> None:
    """Add the batch's loss sum, correct predictions and samples to ``totals``; a non-finite loss stops training."""
    with torch.no_grad():
        loss_value = float(loss)
        check_finite_loss(loss_value, epoch, step)
        totals[0] += loss_value * len(y)
        totals[1] += correct_predictions(method.predict(out), y)
        totals[2] += len(y)


def _update(model: nn.Module, net: nn.Module, method: Method, optimizer: torch.optim.Optimizer, scheduler,
            grad_clip: float | None, ema: WeightAverage | None) -> float:
    """After the backward pass: the method's hook, gradient clipping, the optimizer and schedule steps and the
    weight average; returns the learning rate the step took (first parameter group), before the schedule moves on."""
    lr = optimizer.param_groups[0]["lr"]
    method.after_backward(net)
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    _optimizer_step(optimizer)
    scheduler.step()
    if ema is not None:
        ema.update(net)
    return lr


def _optimizer_step(optimizer: torch.optim.Optimizer) -> None:
    """``optimizer.step()``; a one-line ``ConfigError`` instead when a number the step multiplies by is past float32's
    range: an infinite learning rate (a schedule's ``gamma ** k``, ``training.optim``), or one torch refuses with its
    RuntimeError "value cannot be converted to type float without overflow": the learning rate (``optim.lr`` times the
    schedule's factor, a delay group's ``lr_scale``; Adam's step ``lr / (1 - beta1^k)`` is 10 lr at its first step with
    beta1 = 0.9) or the weight decay."""
    overflow = not all(math.isfinite(g["lr"]) for g in optimizer.param_groups)
    try:
        if not overflow:
            optimizer.step()
    except RuntimeError as e:
        if "without overflow" not in str(e):
            raise
        overflow = True
    if overflow:
        rates = ", ".join(f"{g['lr']:.4g}" for g in optimizer.param_groups)
        decays = ", ".join(f"{g.get('weight_decay', 0.0):.4g}" for g in optimizer.param_groups)
        raise ConfigError(f"the optimizer step at learning rate {rates} (weight decay {decays}) overflows float32, "
                          f"whose largest number is {FLOAT32_MAX:.4g}: lower optim.lr, optim.weight_decay or "
                          "schedule.gamma")


def _show(bar, loss_sum: float, correct: float, n: float, tally: SpikeTally) -> None:
    """The bar's running loss, accuracy, spikes per sample (spiking nets) and samples per second."""
    shown = {"loss": f"{loss_sum / max(n, 1):.4f}", "acc": f"{correct / max(n, 1):.3f}"}
    if tally.reporters:
        shown["spikes"] = f"{tally.total / max(n, 1):,.0f}/sample"
    shown["samples"] = f"{n / max(bar.format_dict['elapsed'], 1e-9):.0f}/s"
    bar.set_postfix(shown)


def _backward(model: nn.Module, method: Method, net: nn.Module, x: torch.Tensor, y: torch.Tensor, scale: float,
              precision: torch.dtype | None, channels_last: bool, temporal_grad: str,
              sltt_steps: int | None, distill: Distillation | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(out, loss)`` of the batch, with ``scale`` times the loss's gradient accumulated in ``.grad``: in one
    backward pass, or step by step (``training.temporal_grad``, online modes)."""
    online = temporal_grad in ONLINE
    try:
        if online:
            x = x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x
            return online_step(model, net, method, x, y, temporal_grad, scale, sltt_steps, precision)
        out, loss = _forward(model, method, net, x, y, precision, channels_last, distill)
    except ValueError as e:  # torch's batch-norm on a batch of one value per channel: say what to change
        if ONE_VALUE_PER_CHANNEL not in str(e):
            raise
        cause, remedy = ((f"train.temporal_grad={temporal_grad} normalises one step at a time",
                          "train.temporal_grad=bptt with more than one time step") if online
                         else ("a last batch of one sample at T = 1?", "more time steps"))
        raise ConfigError(f"a training batch of {len(y)} sample(s) gives a batch-norm one value per channel, which it "
                          f"cannot normalise ({cause}): pick a train.batch_size that leaves no batch of one, or "
                          f"{remedy}") from None
    (loss * scale).backward()
    return out, loss


def _forward(model: nn.Module, method: Method, net: nn.Module, x: torch.Tensor, y: torch.Tensor,
             precision: torch.dtype | None, channels_last: bool,
             distill: Distillation | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(out, loss)`` of batch ``x [B, ...]``, ``y [B]``: ``loss = method.loss(out, y) + method.penalty(net)``
    (0 for an empty batch), the first term blended with a teacher's soft targets by ``distill``
    (``training.distill``), under autocast with ``precision``."""
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    with autocast(x.device, precision):
        out = model(x)
        loss = mixed_loss(method.loss, out, y) if len(y) else out.sum() * 0.0
        if distill is not None and len(y):
            loss = distill.blend(loss, method.class_scores(out), x)
        penalty = method.penalty(net)
        if penalty is not None:
            loss = loss + penalty
    return out, loss

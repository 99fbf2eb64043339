"""Optimizers and learning-rate schedules from the ``optim`` and ``schedule`` config sections.

Schedules are a factor of the base learning rate as a function of the fractional epoch ``e`` (stepped
every iteration, so warm-up and cosine are smooth):

- step: ``gamma ** floor(e / step_size)``; multistep: ``gamma ** #{m in milestones : e >= m}``
- cosine: ``f + (1 - f) (1 + cos(pi e / E)) / 2``; linear: ``1 - (1 - f) e / E`` with ``f = min_factor``
- warm-up multiplies by ``min(1, (e + 1/steps) / warmup_epochs)`` during the first ``warmup_epochs``.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable

import torch

from deepspike.config.schema import OptimConfig, ScheduleConfig


def make_optimizer(cfg: OptimConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), Adam or AdamW with ``cfg.lr`` and ``cfg.weight_decay``. A parameter carrying an
    ``lr_scale`` attribute (the positions of learnable delays, ``layers.delays``) learns in a group of its own at
    ``cfg.lr * lr_scale`` without weight decay; schedules scale every group alike."""
    params = [p for p in params if p.requires_grad]
    scales = sorted({float(p.lr_scale) for p in params if hasattr(p, "lr_scale")})
    if scales:
        plain = [p for p in params if not hasattr(p, "lr_scale")]
        params = [{"params": plain}] + [{"params": [p for p in params if getattr(p, "lr_scale", None) == scale],
                                         "lr": cfg.lr * scale, "weight_decay": 0.0} for scale in scales]
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
        )
    cls = torch.optim.Adam if cfg.name == "adam" else torch.optim.AdamW
    return cls(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


def idle_optimizer(cfg: OptimConfig) -> torch.optim.Optimizer:
    """An optimizer over no parameters (its step moves nothing) for a method that learns without gradients
    (``Method.learns_locally``): the schedule and the checkpoint keep their one shape for every method."""
    return torch.optim.SGD([{"params": []}], lr=cfg.lr)


def schedule_factor(cfg: ScheduleConfig, epoch: float, total_epochs: int, steps_per_epoch: int) -> float:
    """Learning-rate factor at fractional ``epoch`` (see the module docstring)."""
    if cfg.name == "step":
        factor = _power(cfg.gamma, math.floor(epoch / cfg.step_size))
    elif cfg.name == "multistep":
        factor = _power(cfg.gamma, bisect_right(sorted(cfg.milestones), epoch))
    elif cfg.name == "cosine":
        factor = cfg.min_factor + (1 - cfg.min_factor) * (1 + math.cos(math.pi * epoch / total_epochs)) / 2
    elif cfg.name == "linear":
        factor = 1 - (1 - cfg.min_factor) * epoch / total_epochs
    else:
        factor = 1.0
    if cfg.warmup_epochs > 0 and epoch < cfg.warmup_epochs:
        factor *= min(1.0, (epoch + 1.0 / steps_per_epoch) / cfg.warmup_epochs)
    return factor


def _power(gamma: float, times: int) -> float:
    """``gamma ** times``, ``inf`` where it is past float range (a ``gamma > 1`` raised often: Python's ``**`` raises
    ``OverflowError`` there; an infinite rate then stops the run in one line, ``training.loop``)."""
    try:
        return gamma**times
    except OverflowError:
        return math.inf


def make_scheduler(
    cfg: ScheduleConfig, optimizer: torch.optim.Optimizer, total_epochs: int, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-iteration ``LambdaLR`` following ``schedule_factor``."""
    steps = max(1, steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: schedule_factor(cfg, step / steps, total_epochs, steps)
    )

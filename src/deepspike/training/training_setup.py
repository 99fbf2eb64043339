"""Everything a training run builds before its first epoch, in one fixed order.

seed (``train.seed + rank``) -> data (Python's ``random`` is put back as seeded after it, whatever a library imported
at its first use drew) -> method, architecture, model -> batch iterators of the train, val and
test splits (each rank its part) -> optimizer -> per-iteration schedule -> channels-last weights ->
``torch.compile`` (``train.compile``) -> DistributedDataParallel wrapper -> weight average. The order is part of
the behaviour: model initialisation draws from the seeded generators, and the weight average starts from the
weights the DDP wrapper broadcast.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from deepspike.config.schema import RunConfig, check_settings_used
from deepspike.core.errors import ConfigError
from deepspike.core.messages import warn
from deepspike.data import BatchIterator
from deepspike.methods.registry import method_from_options
from deepspike.training.compiled import compiled_model
from deepspike.training.distill import Distillation, load_teacher, near_uniform_warning
from deepspike.training.distributed import DistContext, all_reduce_sums, wrap_data_parallel
from deepspike.training.ema import WeightAverage
from deepspike.training.optim import idle_optimizer, make_optimizer, make_scheduler
from deepspike.training.reload import build_new_run
from deepspike.training.run_setup import RunParts, build_run, load_data, make_batches
from deepspike.training.runtime import autocast_dtype, check_steps_fit, seed_everything
from deepspike.training.temporal_grad import prepare_temporal_grad

SPLITS = ("train", "val", "test")


@dataclass
class TrainingSetup:
    """parts: method, architecture, the bare model and data; model: what runs the training batches (the bare
    model, its compiled form, or a DDP wrapper of either); scorer: what runs the validation and test batches (the
    bare model or its compiled form, ``training.compiled``); batches: one iterator per split (None for an absent
    split); ema: the weight average (None without ``train.ema_decay``); precision: the autocast dtype (None:
    float32); reduce: sums ``[correct, loss_sum, n]`` over the ranks; distill: the teacher of ``train.distill_from``
    (None without one)."""

    parts: RunParts
    model: nn.Module
    scorer: nn.Module
    batches: dict[str, BatchIterator | None]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    ema: WeightAverage | None
    precision: torch.dtype | None
    reduce: Callable[[list[float]], list[float]]
    distill: Distillation | None = None


def steps_per_epoch(config: RunConfig, train_batches: BatchIterator) -> int:
    """Optimizer steps per epoch: the training batches, at most ``train.max_steps_per_epoch``."""
    steps = len(train_batches)
    limit = config.train.max_steps_per_epoch
    return steps if limit is None else min(steps, limit)


def check_training_steps_fit(config: RunConfig, input_shape: tuple[int, ...], device: torch.device,
                             world_size: int = 1, samples: tuple[int | None, int | None] = (None, None)) -> None:
    """A one-line ``ConfigError`` when a rank's part of a training batch (``train.batch_size`` is the global batch,
    split over ``world_size`` ranks), over the method's ``timesteps`` steps, or of an evaluation batch
    (``train.eval_batch_size``) over its ``eval_timesteps`` (default: ``timesteps``), would alone exceed ``device``'s
    memory (``runtime.check_steps_fit``): refused before the first epoch, not after it, where the first scoring pass
    failed in the allocator. ``samples``: the training split's size and the largest scored split's (None: not known);
    no batch holds more samples than its split, so a batch size beyond it is bounded by the split."""
    options = config.method.options
    timesteps = getattr(options, "timesteps", None)
    passes = ((timesteps, config.train.batch_size, samples[0], "training ", ""),
              (getattr(options, "eval_timesteps", None) or timesteps, config.train.eval_batch_size, samples[1],
               "inference ", "evaluation "))
    for steps, size, split, which, kind in passes:
        size = size if split is None else min(size, max(split, 1))  # a batch is at most the whole split
        batch = -(-size // world_size)  # the largest rank part
        if steps:
            check_steps_fit(4 * batch * math.prod(input_shape), steps, device,
                            f"one {kind}batch's [T, B, ...] input ({batch} samples of shape {list(input_shape)})",
                            which)


def check_local_learning(config: RunConfig, world_size: int) -> None:
    """A one-line ``ConfigError`` for settings a method that learns without gradients (``Method.learns_locally``:
    sample by sample, in order) cannot honour: several processes, a weight average, ``torch.compile``, a temporal
    gradient mode, a gradient clip, bf16 autocast."""
    t, name = config.train, config.method.name
    refusals = ((world_size > 1, f"runs in one process (torchrun started {world_size})"),
                (t.ema_decay is not None, "keeps no weight average (train.ema_decay must be null)"),
                (t.compile is not False, "is not compiled (train.compile must be false)"),
                (t.temporal_grad != "bptt", "takes no gradient (train.temporal_grad must be bptt)"),
                (t.grad_clip is not None, "has no gradient to clip (train.grad_clip must be null)"),
                (t.precision != "fp32", "runs no autocast (train.precision must be fp32)"),
                (t.distill_from is not None, "has no loss a teacher could blend into (train.distill_from must be "
                                             "null)"))
    for refused, why in refusals:
        if refused:
            raise ConfigError(f"method {name} learns sample by sample without gradients, so it {why}")


def build_training(config: RunConfig, ctx: DistContext, device: torch.device, resume: bool,
                   teacher: dict[str, str] | None = None) -> TrainingSetup:
    """Build the run of ``config`` on ``device`` (module docstring). ``resume``: the checkpoint will supply
    the weights, so a ``method.init_from`` ANN run is not read. ``teacher``: what the checkpoint resumed records of
    the run's teacher (``distill.TEACHER_FIELD``; ``distill.load_teacher``)."""
    seed_everything(config.train.seed + ctx.rank, config.train.deterministic)
    method = method_from_options(config.method.name, config.method.options)
    if not resume:  # what the options alone refuse, before the data is read (or downloaded); the rest: build_new_run
        check_settings_used(config)
        method.check_options_used()
    if method.learns_locally:
        check_local_learning(config, ctx.world_size)
    python_stream = random.getstate()  # as seeded: a library the data set imports at first use may draw from it
    data = load_data(config)  # (sklearn.datasets imports rich.style, which takes 24 bits)
    random.setstate(python_stream)  # so the stream does not depend on what this process imported before
    seen = method.input_shape(tuple(data.input_shape))
    scored = max(len(split) for split in (data.val, data.test) if split is not None)
    # the input as the net sees it (population coding: wider), in batches no larger than their split
    check_training_steps_fit(config, seen, device, ctx.world_size, (len(data.train), scored))
    parts = (build_run if resume else build_new_run)(config, device, data)
    t = config.train
    prepare_temporal_grad(parts.model, t.temporal_grad, t.time_segment, config.method.name, t.eprop_feedback,
                          t.seed, t.eprop_readout_decay, t.sltt_steps)
    batches = {split: make_batches(config, data, split, device, ctx.rank, ctx.world_size) for split in SPLITS}
    optimizer = idle_optimizer(config.optim) if method.learns_locally else make_optimizer(config.optim,
                                                                                          parts.model.parameters())
    epochs, steps = config.train.epochs, steps_per_epoch(config, batches["train"])
    scheduler = make_scheduler(config.schedule, optimizer, epochs, steps)
    if config.train.channels_last:
        parts.model.to(memory_format=torch.channels_last)  # 4-D weights (convolutions) only
    scorer = compiled_model(parts.model, config.train.compile)
    model = wrap_data_parallel(scorer, ctx, device)
    decay = config.train.ema_decay
    distill = load_teacher(config, parts, device, teacher)
    warnings = (near_uniform_warning(config), distill and near_uniform_warning(config, distill.source))
    for warning in warnings if ctx.is_main else ():
        if warning:
            warn(warning)
    return TrainingSetup(
        parts=parts,
        model=model,
        scorer=scorer,
        batches=batches,
        optimizer=optimizer,
        scheduler=scheduler,
        ema=WeightAverage(parts.model, decay) if decay is not None else None,
        precision=autocast_dtype(config.train.precision),
        reduce=partial(all_reduce_sums, ctx=ctx, device=device),
        distill=distill,
    )

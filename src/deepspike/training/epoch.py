"""One epoch of the Trainer: train on the epoch's shuffled batches, then score the model.

The epoch's record (one ``metrics.jsonl`` line), in this key order: ``epoch`` (1-based), ``train_loss``,
``train_accuracy``, ``lr`` (the learning rate of the epoch's last optimizer step, not the next epoch's first); with
a weight average ``test_accuracy_raw`` (the raw weights' test accuracy); with a validation split ``val_accuracy``,
``val_loss``; then ``test_accuracy``, ``test_loss``, ``epoch_seconds`` (training and evaluation), ``train_seconds``
(training passes of all epochs so far) and the method's measures. Validation, test and measures score the weight
average when there is one. A non-finite loss or weights stop the epoch before it is scored (``TrainingDiverged``).
Before scoring, every rank takes rank 0's buffers (batch-norm running statistics) and weight average
(``share_rank0_state``), so each scores its part with the weights rank 0 checkpoints. Each rank scores its part of a
split on the random stream ``EVAL_SEED + rank`` (``evaluate.eval_pass``): one process
scores as ``deepspike eval`` does, and no two ranks draw the same Poisson spikes for different samples.
"""

from __future__ import annotations

import copy
import time
from contextlib import nullcontext
from functools import partial
from typing import Any

from deepspike.config.schema import RunConfig
from deepspike.data import BatchIterator
from deepspike.training.distributed import DistContext, broadcast_from_rank0
from deepspike.training.divergence import check_finite_weights
from deepspike.training.evaluate import EVAL_SEED, evaluate
from deepspike.training.loop import train_epoch
from deepspike.training.progress import TrainingProgress
from deepspike.training.training_setup import TrainingSetup

EPOCH_KEYS = ("epoch", "train_loss", "train_accuracy", "lr", "test_accuracy_raw", "val_accuracy", "val_loss",
              "test_accuracy", "test_loss", "epoch_seconds", "train_seconds")


def method_measures(record: dict[str, Any]) -> dict[str, Any]:
    """The method's measures in an epoch's record (a ``metrics.jsonl`` line): every key but ``EPOCH_KEYS``."""
    return {k: v for k, v in record.items() if k not in EPOCH_KEYS}


def run_epoch(
    setup: TrainingSetup, config: RunConfig, ctx: DistContext, epoch: int, progress: TrainingProgress
) -> dict[str, Any]:
    """Train and score epoch ``epoch`` (0-based); returns its record and moves ``progress`` on: epochs done,
    training time, best validation accuracy."""
    t0 = time.perf_counter()
    begin_epoch(setup.parts.model, epoch, config.train.epochs)
    train_stats = _train(setup, config, ctx, epoch)
    share_rank0_state(setup, ctx)
    check_finite_weights(setup.parts.model, epoch)
    progress.train_seconds += time.perf_counter() - t0
    record = {"epoch": epoch + 1, **train_stats}
    record.update(_score(setup, ctx, record, progress, t0))
    progress.epochs_done = epoch + 1
    return record


def share_rank0_state(setup: TrainingSetup, ctx: DistContext) -> None:
    """Give every rank rank 0's buffers and weight average (nothing for one process). The parameters agree after
    each step (the same averaged gradient), but each rank's batch-norms updated their running statistics from its own
    part of the batch, which DistributedDataParallel overwrites with rank 0's only at the next training forward pass
    (never in the online temporal-gradient modes): the other ranks scored their parts of the validation and test
    splits with statistics of their own, not those of the checkpoint rank 0 writes. The weight average copies the
    buffers (``training.ema``), so its copies are shared too."""
    broadcast_from_rank0(setup.parts.model.buffers(), ctx)
    if setup.ema is not None:
        broadcast_from_rank0(setup.ema.average.values(), ctx)


def begin_epoch(model, epoch: int, epochs: int) -> None:
    """Tell the layers that follow a per-epoch schedule (a ``begin_epoch(epoch, epochs)`` method: the Gaussian
    width of learnable delays, ``layers.delays``) that 0-based ``epoch`` of ``epochs`` starts; a function of the two
    only, so a resumed run sets what the uncut run set."""
    for m in epoch_scheduled(model):
        m.begin_epoch(epoch, epochs)


def epoch_scheduled(model) -> list:
    """The modules of ``model`` on a per-epoch schedule: those with a ``begin_epoch(epoch, epochs)`` method."""
    return [m for m in model.modules() if callable(getattr(m, "begin_epoch", None))]


def _train(setup: TrainingSetup, config: RunConfig, ctx: DistContext, epoch: int) -> dict[str, float]:
    setup.batches["train"].set_epoch(epoch)
    show = config.train.progress and ctx.is_main
    return train_epoch(
        setup.model,
        setup.parts.method,
        setup.optimizer,
        setup.scheduler,
        setup.batches["train"],
        net=setup.parts.model,
        grad_clip=config.train.grad_clip,
        max_steps=config.train.max_steps_per_epoch,
        world_size=ctx.world_size,
        reduce=setup.reduce,
        progress=f"epoch {epoch + 1}/{config.train.epochs}" if show else None,
        precision=setup.precision,
        channels_last=config.train.channels_last,
        ema=setup.ema,
        epoch=epoch,
        temporal_grad=config.train.temporal_grad,
        sltt_steps=config.train.sltt_steps,
        distill=setup.distill,
    )


def _score(setup: TrainingSetup, ctx: DistContext, record: dict[str, Any], progress: TrainingProgress,
           t0: float) -> dict[str, float]:
    """Add the evaluation keys to ``record``; returns the method's measures, of the whole test split on every rank
    (``whole_split``). Rank ``r`` draws from ``EVAL_SEED + r``: with one seed, every rank drew the same numbers."""
    model, method, batches, ema = setup.parts.model, setup.parts.method, setup.batches, setup.ema
    score = partial(evaluate, setup.scorer, method, seed=EVAL_SEED + ctx.rank, reduce=setup.reduce,
                    precision=setup.precision)
    if ema is not None:  # the raw weights' score, for comparison; the average is what is reported
        record.update(test_accuracy_raw=score(batches["test"])["accuracy"])
    with ema.swapped(model) if ema is not None else nullcontext():
        if batches["val"] is not None:
            val = score(batches["val"])
            record.update(val_accuracy=val["accuracy"], val_loss=val["loss"])
            progress.best_val = max(progress.best_val, val["accuracy"])
        test = score(batches["test"])
        measures = method.epoch_measures(model, whole_split(batches["test"]))  # counted in epoch_seconds
        record.update(
            test_accuracy=test["accuracy"],
            test_loss=test["loss"],
            epoch_seconds=time.perf_counter() - t0,
            train_seconds=progress.train_seconds,
        )
        return measures


def whole_split(batches: BatchIterator) -> BatchIterator:
    """``batches``, one rank's part of a split, as one process iterates it: every sample, in the same batches. The
    method's measures (dead fractions, latencies) are no sums that a reduction over the ranks could combine: measured
    on rank 0's part alone, a 2-rank ttfs_window run logged dead_fraction 0.090 where one process logged 0.074."""
    if batches.world_size == 1:
        return batches
    whole = copy.copy(batches)
    whole.rank, whole.world_size = 0, 1
    return whole


def epoch_line(record: dict[str, Any], epochs: int) -> str:
    """One line per finished epoch for the console and logs, e.g.
    ``epoch 3/10  train_loss 0.4123  train_acc 0.8571  test_acc 0.8628  (41.2 s)``."""
    parts = [
        f"epoch {record['epoch']}/{epochs}",
        f"train_loss {record['train_loss']:.4f}",
        f"train_acc {record['train_accuracy']:.4f}",
    ]
    if record.get("val_accuracy") is not None:
        parts.append(f"val_acc {record['val_accuracy']:.4f}")
    parts.append(f"test_acc {record['test_accuracy']:.4f}  ({record['epoch_seconds']:.1f} s)")
    return "  ".join(parts)

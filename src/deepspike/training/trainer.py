"""The one Trainer: every method trains through this loop.

Per epoch: train on shuffled batches (the order depends only on seed and epoch), evaluate on the
validation and test splits, append a line to ``metrics.jsonl``, then atomically write ``checkpoint.pt``.
``resume=True`` restores the checkpoint (weights, optimizer, scheduler, every rank's RNG states) and
continues; on the CPU the resumed run ends bit-for-bit where the uninterrupted run would. Which folders
may be trained into, and which config changes a resume accepts, is ``run_open``'s to say. A non-finite
loss or non-finite weights stop the run with ``TrainingDiverged`` before the epoch is logged or
checkpointed (``divergence``), so the last good checkpoint stays and no summary is written. At the end
``summary.json`` holds ``method``, ``model``, ``dataset``, ``test_accuracy`` (a fraction), ``epochs`` and
``train_seconds`` among others. Under ``torchrun`` the model is wrapped in DistributedDataParallel (see
``training.distributed``); rank 0 alone writes files and shows progress. With ``train.ema_decay`` the
validation and test scores and the measures are those of the weight average (``train.ema``); the raw
weights' test accuracy is logged as ``test_accuracy_raw``.

The parts: ``training_setup`` (seed, data, model, optimizer, schedule, DDP wrapper), ``resume`` (restore a
checkpoint), ``epoch`` (train and score one epoch), ``checkpoint`` (the payload), ``summary``; the files
are those of ``runs``. The Trainer owns the data-parallel life cycle: it joins the process group (unless
given a context), keeps the ranks in step after every epoch and leaves the group when ``fit`` ends.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from deepspike.config.schema import RunConfig
from deepspike.core.atomic import check_output_dir
from deepspike.core.errors import ConfigError, UserError
from deepspike.methods import check_trainable
from deepspike.training.checkpoint import training_checkpoint
from deepspike.training.compiled import check_compile
from deepspike.training.distill import TEACHER_FIELD, check_distill_mode
from deepspike.training.distributed import DistContext, barrier, gather_objects, init_distributed, shutdown
from deepspike.training.epoch import epoch_line, run_epoch
from deepspike.training.metric_sinks import MetricSinks
from deepspike.training.progress import TrainingProgress
from deepspike.training.random_streams import rng_state
from deepspike.training.resume import restore_training
from deepspike.training.run_lock import RunLock
from deepspike.training.run_open import (
    CONTINUE,
    NEW,
    check_checkpoint_config,
    check_epoch_schedules,
    check_resumed_epochs,
    config_digest,
    open_mode,
)
from deepspike.training.runs import RunDir
from deepspike.training.runtime import resolve_device
from deepspike.training.summary import run_summary
from deepspike.training.temporal_grad import check_settings_before_data
from deepspike.training.training_setup import TrainingSetup, build_training

EpochCallback = Callable[["Trainer", dict[str, Any]], None]


class Trainer:
    """Train ``config`` into ``out_dir``. ``callbacks`` run after each epoch's checkpoint is written.

    dist_context: the data-parallel context (default: joined from torchrun's environment, one process
    without it). ``fit`` leaves the process group at its end.
    """

    def __init__(
        self,
        config: RunConfig,
        out_dir: str | Path,
        resume: bool = False,
        callbacks: tuple[EpochCallback, ...] = (),
        dist_context: DistContext | None = None,
    ) -> None:
        check_trainable(config.method.name)
        check_compile(config)
        check_settings_before_data(config)  # not after the data is read (or downloaded)
        check_distill_mode(config)
        self.config = config
        self.run = RunDir(check_output_dir(out_dir, "--out"))  # "" is refused, not read as the current folder
        self.out_dir = self.run.path
        self.resume = resume
        self.mode = open_mode(self.run, config, resume)  # every rank: rank 0 writes only after all ranks met in DDP
        self.created_folder = False
        self.resumed: dict[str, Any] | None = None  # the checkpoint a resume continues, from fit to _open_run
        self.resumed_stamp: tuple[int, int, int] | None = None  # its file as read (checked again under the lock)
        self.lock: RunLock | None = None
        self.callbacks = callbacks
        device = resolve_device(config.train.device)
        self.dist = dist_context if dist_context is not None else init_distributed(device.type == "cuda")
        if device.type == "cuda" and self.dist.enabled:
            device = torch.device("cuda", self.dist.local_rank)
        self.device = device

    def fit(self) -> dict[str, Any]:
        """Train the remaining epochs; returns the summary (also written to ``summary.json`` by rank 0). A resume
        reads the checkpoint first: it names the teacher of a distilled run (``distill.TEACHER_FIELD``)."""
        self.resumed_stamp = self.run.checkpoint_stamp() if self.mode == CONTINUE else None
        self.resumed = self.run.read_checkpoint(self.device) if self.mode == CONTINUE else None
        teacher = None if self.resumed is None else self.resumed.get(TEACHER_FIELD)
        setup = build_training(self.config, self.dist, self.device, self.mode == CONTINUE, teacher)
        self.parts = setup.parts
        self.lock = self._lock_run()
        try:
            return self._train(setup)
        finally:
            if self.lock is not None:
                self.lock.release()

    def _lock_run(self) -> RunLock | None:
        """Rank 0 makes the folder and takes its lock (``training.run_lock``), then checks again, under the lock,
        what the folder holds: another process may have started the same run, or written the checkpoint a resume
        read before the lock (``fit``), while this one loaded its data. Every
        rank gets rank 0's refusal, so that all stop with its one line."""
        lock, refusal = None, None
        if self.dist.is_main:
            self.created_folder = self.run.create()
            try:
                lock = RunLock(self.run.path)
                if open_mode(self.run, self.config, self.resume) != self.mode or (
                        self.mode == CONTINUE and self.run.checkpoint_stamp() != self.resumed_stamp):
                    raise ConfigError(f"{self.run.path} changed while this process started (another process "
                                      "trained it); run the command again")
            except UserError as e:
                if lock is not None:
                    lock.release()
                refusal = e
        message = gather_objects(None if refusal is None else str(refusal), self.dist)[0]
        if refusal is not None:
            raise refusal
        if message is not None:
            raise ConfigError(message)
        return lock

    def _train(self, setup: TrainingSetup) -> dict[str, Any]:
        """Open the run (``_open_run``), train its remaining epochs and write the summary; returns it."""
        cfg, ctx = self.config, self.dist
        progress = self._open_run(setup)
        self.sinks, record = None, {}
        try:
            if ctx.is_main:  # a sink that cannot open (tensorboard not installed) is refused as in the first epoch
                logged = None if self.mode == NEW else self.run.metrics.read()  # a restart's: none, kept
                self.sinks = MetricSinks(self.out_dir, tuple(cfg.train.log), logged)
            for epoch in range(progress.epochs_done, cfg.train.epochs):
                record = run_epoch(setup, cfg, ctx, epoch, progress)
                self._end_epoch(setup, record, progress)
        except UserError:
            self._discard_if_unfinished()
            raise
        finally:  # also when a resumed run fails (its folder stays): no log file is left open
            if self.sinks is not None:
                self.sinks.close()
        if not record:  # resumed a finished run: report from the log
            logged = self.run.metrics.read()
            record = logged[-1] if logged else {}
        built = setup.parts.method.built_architecture(setup.parts.arch)  # the classifier stbp's voting widened
        summary = run_summary(cfg, record, progress, built, setup.parts.model, self.device,
                              ctx.world_size)
        if ctx.is_main:
            self.run.write_summary(summary)
        shutdown(ctx)
        return summary

    def _open_run(self, setup: TrainingSetup) -> TrainingProgress:
        """Restore the checkpoint (``CONTINUE``) or start at epoch 0 (``NEW``, ``RESTART``); rank 0 then
        drops the log's lines past the checkpoint, clears temporary files of killed writes, marks the folder
        as a started run, writes ``config.yaml`` and removes the summary and reproduction report of a finished run
        that trains on (both are written when the run ends). Returns where training continues."""
        ctx = self.dist
        progress = TrainingProgress()
        state, self.resumed = self.resumed, None  # the checkpoint read by fit; not kept (on a GPU: the device's memory)
        if self.mode == CONTINUE:
            progress = restore_training(setup, state, ctx, self.run.checkpoint_path)
            check_checkpoint_config(self.run, self.config, state)
            check_resumed_epochs(self.run, self.config, progress.epochs_done)
            check_epoch_schedules(self.run.read_config(), self.config, setup.parts.model)
        if ctx.is_main:
            self.run.remove_stale_temps()
            self.run.metrics.truncate_after(progress.epochs_done)
            self.run.mark_started()
            self.run.write_config(self.config)
            if progress.epochs_done < self.config.train.epochs:
                self.run.remove_reports()
        return progress

    def _discard_if_unfinished(self) -> None:
        """A new run refused before its first epoch ended (input that only training could check, such as event
        frames a recipe's data does not give) leaves nothing behind: rank 0 takes back what it wrote."""
        folder_ours = self.lock is None or self.lock.held()  # never remove a folder another run made meanwhile
        if self.mode == NEW and self.dist.is_main and not self.run.has_checkpoint() and folder_ours:
            if self.sinks is not None:
                self.sinks.close()
            self.run.discard_unfinished(self.created_folder)

    def _end_epoch(self, setup: TrainingSetup, record: dict[str, Any], progress: TrainingProgress) -> None:
        """Rank 0 prints the epoch line, logs the record and writes the checkpoint (with every rank's
        generators); all ranks wait for it, then the callbacks run."""
        rngs = gather_objects(rng_state(), self.dist)
        if self.dist.is_main:
            print(epoch_line(record, self.config.train.epochs), file=sys.stderr, flush=True)
            self.lock.check_held()
            self.run.metrics.append(record)
            self.sinks.write(self.run.metrics.read())
            self.run.write_checkpoint(training_checkpoint(setup, progress, rngs, config_digest(self.config)))
        barrier(self.dist)
        for callback in self.callbacks:
            callback(self, record)


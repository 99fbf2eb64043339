"""The one Trainer: every method trains through this loop.

Per epoch: train on shuffled batches (the order depends only on seed and epoch), evaluate on the
validation and test splits, append a line to ``metrics.jsonl``, then atomically write ``checkpoint.pt``.
``resume=True`` restores the checkpoint (weights, optimizer, scheduler, every rank's RNG states) and
continues; on the CPU the resumed run ends bit-for-bit where the uninterrupted run would. At the end
``summary.json`` holds ``method``, ``model``, ``dataset``, ``test_accuracy`` (a fraction), ``epochs`` and
``train_seconds`` among others. Under ``torchrun`` the model is wrapped in DistributedDataParallel (see
``train.distributed``); rank 0 alone writes files and shows progress. With ``train.ema_decay`` the
validation and test scores and the measures are those of the weight average (``train.ema``); the raw
weights' test accuracy is logged as ``test_accuracy_raw``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from deepspike.config.load import save_config
from deepspike.config.schema import RunConfig
from deepspike.core.atomic import atomic_write_text
from deepspike.core.errors import ConfigError
from deepspike.models.costs import count_parameters
from deepspike.training.checkpoint import (
    CHECKPOINT_NAME,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from deepspike.training.distributed import (
    DistContext,
    all_reduce_sums,
    barrier,
    gather_objects,
    init_distributed,
)
from deepspike.training.ema import WeightAverage
from deepspike.training.evaluate import evaluate
from deepspike.training.loop import train_epoch
from deepspike.training.metrics import MetricsLog
from deepspike.training.optim import make_optimizer, make_scheduler
from deepspike.training.reload import build_new_run
from deepspike.training.run_setup import build_run, load_data, make_batches
from deepspike.training.runtime import autocast_dtype, resolve_device, seed_everything

EpochCallback = Callable[["Trainer", dict[str, Any]], None]


class Trainer:
    """Train ``config`` into ``out_dir``. ``callbacks`` run after each epoch's checkpoint is written."""

    def __init__(
        self,
        config: RunConfig,
        out_dir: str | Path,
        resume: bool = False,
        callbacks: tuple[EpochCallback, ...] = (),
        dist_context: DistContext | None = None,
    ) -> None:
        self.config = config
        self.out_dir = Path(out_dir)
        self.resume = resume
        self.callbacks = callbacks
        self.dist = dist_context if dist_context is not None else init_distributed()
        device = resolve_device(config.train.device)
        if device.type == "cuda" and self.dist.enabled:
            device = torch.device("cuda", self.dist.local_rank)
        self.device = device
        self.checkpoint_path = self.out_dir / CHECKPOINT_NAME
        self.metrics = MetricsLog(self.out_dir / "metrics.jsonl")
        if resume and not self.checkpoint_path.is_file():
            raise ConfigError(f"--resume given but {self.checkpoint_path} does not exist")
        if not resume and self.checkpoint_path.is_file():
            raise ConfigError(f"{self.out_dir} already holds a run; use --resume to continue it or pick another --out")

    def fit(self) -> dict[str, Any]:
        cfg, ctx = self.config, self.dist
        seed_everything(cfg.train.seed + ctx.rank, cfg.train.deterministic)
        data = load_data(cfg)
        parts = (build_run if self.resume else build_new_run)(cfg, self.device, data)
        self.parts = parts
        model, method = parts.model, parts.method
        batches = {
            split: make_batches(cfg, data, split, self.device, ctx.rank, ctx.world_size)
            for split in ("train", "val", "test")
        }
        optimizer = make_optimizer(cfg.optim, model.parameters())
        steps_per_epoch = len(batches["train"])
        if cfg.train.max_steps_per_epoch is not None:
            steps_per_epoch = min(steps_per_epoch, cfg.train.max_steps_per_epoch)
        scheduler = make_scheduler(cfg.schedule, optimizer, cfg.train.epochs, steps_per_epoch)
        precision = autocast_dtype(cfg.train.precision)
        if cfg.train.channels_last:
            model.to(memory_format=torch.channels_last)  # 4-D weights (convolutions) only
        if ctx.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = DistributedDataParallel(model, device_ids=ids)
        reduce = partial(all_reduce_sums, ctx=ctx, device=self.device)
        ema = WeightAverage(parts.model, cfg.train.ema_decay) if cfg.train.ema_decay is not None else None

        start_epoch, train_seconds, best_val = 0, 0.0, float("-inf")
        if self.resume:
            state = load_checkpoint(self.checkpoint_path, self.device)
            parts.model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            start_epoch, train_seconds = state["epoch"], state["train_seconds"]
            best_val = state.get("best_val", best_val)
            if ema is not None:
                if "ema" not in state:
                    raise ConfigError(f"{self.checkpoint_path} has no weight average; resume without train.ema_decay")
                ema.load_state_dict(state["ema"])
            rngs = state["rng_per_rank"]
            set_rng_state(rngs[ctx.rank] if ctx.rank < len(rngs) else rngs[0])
            if ctx.is_main:
                self.metrics.truncate_after(start_epoch)
        elif ctx.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.metrics.path.unlink(missing_ok=True)
        if ctx.is_main:
            save_config(cfg, self.out_dir / "config.yaml")

        record: dict[str, Any] = {}
        self._measure_keys: set[str] = set()
        for epoch in range(start_epoch, cfg.train.epochs):
            t0 = time.perf_counter()
            batches["train"].set_epoch(epoch)
            show = cfg.train.progress and ctx.is_main
            train_stats = train_epoch(
                model,
                method,
                optimizer,
                scheduler,
                batches["train"],
                net=parts.model,
                grad_clip=cfg.train.grad_clip,
                max_steps=cfg.train.max_steps_per_epoch,
                world_size=ctx.world_size,
                reduce=reduce,
                progress=f"epoch {epoch + 1}/{cfg.train.epochs}" if show else None,
                precision=precision,
                channels_last=cfg.train.channels_last,
                ema=ema,
            )
            train_seconds += time.perf_counter() - t0
            record = {"epoch": epoch + 1, **train_stats, "lr": optimizer.param_groups[0]["lr"]}
            if ema is not None:  # the raw weights' score, for comparison; the average is what is reported
                raw = evaluate(parts.model, method, batches["test"], reduce=reduce, precision=precision)
                record.update(test_accuracy_raw=raw["accuracy"])
            with ema.swapped(parts.model) if ema is not None else nullcontext():
                if batches["val"] is not None:
                    val = evaluate(parts.model, method, batches["val"], reduce=reduce, precision=precision)
                    record.update(val_accuracy=val["accuracy"], val_loss=val["loss"])
                    best_val = max(best_val, val["accuracy"])
                test = evaluate(parts.model, method, batches["test"], reduce=reduce, precision=precision)
                record.update(
                    test_accuracy=test["accuracy"],
                    test_loss=test["loss"],
                    epoch_seconds=time.perf_counter() - t0,
                    train_seconds=train_seconds,
                )
                # Method-specific measures (under DDP: on rank 0's part of the test split).
                measures = method.epoch_measures(parts.model, batches["test"])
            self._measure_keys.update(measures)
            record.update(measures)
            rngs = gather_objects(rng_state(), ctx)
            if ctx.is_main:
                print(epoch_line(record, cfg.train.epochs), file=sys.stderr, flush=True)
                self.metrics.append(record)
                save_checkpoint(
                    self.checkpoint_path,
                    {
                        "model": parts.model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "epoch": epoch + 1,
                        "train_seconds": train_seconds,
                        "best_val": best_val,
                        "rng_per_rank": rngs,
                        "world_size": ctx.world_size,
                        **({"ema": ema.state_dict()} if ema is not None else {}),
                    },
                )
            barrier(ctx)
            for callback in self.callbacks:
                callback(self, record)

        if not record:  # resumed a finished run: report from the log
            logged = self.metrics.read()
            record = logged[-1] if logged else {}
        summary = {
            "method": cfg.method["name"],
            "model": cfg.model.name,
            "dataset": cfg.data.name,
            "test_accuracy": record.get("test_accuracy"),
            "val_accuracy": record.get("val_accuracy"),
            "best_val_accuracy": best_val if best_val > float("-inf") else None,
            "epochs": cfg.train.epochs,
            "ema_decay": cfg.train.ema_decay,
            "train_seconds": round(train_seconds, 3),
            "parameters": count_parameters(parts.arch),
            "device": str(self.device),
            "world_size": ctx.world_size,
            **{k: v for k, v in record.items() if k in self._measure_keys},
        }
        if ctx.is_main:
            atomic_write_text(self.out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        return summary


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

"""The one Trainer: every method trains through this loop.

Per epoch: train on shuffled batches (the order depends only on seed and epoch), evaluate on the
validation and test splits, append a line to ``metrics.jsonl``, then atomically write ``checkpoint.pt``.
``resume=True`` restores the checkpoint (weights, optimizer, scheduler, RNG states) and continues; on
the CPU the resumed run ends bit-for-bit where the uninterrupted run would. At the end ``summary.json``
holds ``method``, ``model``, ``dataset``, ``test_accuracy`` (a fraction), ``epochs`` and
``train_seconds`` among others.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from deepspike.analysis.costs import count_parameters
from deepspike.config.load import save_config
from deepspike.config.schema import RunConfig
from deepspike.errors import ConfigError
from deepspike.train.atomic import atomic_write_text
from deepspike.train.checkpoint import (
    CHECKPOINT_NAME,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from deepspike.train.evaluate import evaluate
from deepspike.train.metrics import MetricsLog
from deepspike.train.optim import make_optimizer, make_scheduler
from deepspike.train.run_setup import build_run, load_data, make_batches
from deepspike.train.runtime import resolve_device, seed_everything

EpochCallback = Callable[["Trainer", dict[str, Any]], None]


class Trainer:
    """Train ``config`` into ``out_dir``. ``callbacks`` run after each epoch's checkpoint is written."""

    def __init__(
        self,
        config: RunConfig,
        out_dir: str | Path,
        resume: bool = False,
        callbacks: tuple[EpochCallback, ...] = (),
    ) -> None:
        self.config = config
        self.out_dir = Path(out_dir)
        self.resume = resume
        self.callbacks = callbacks
        self.device = resolve_device(config.train.device)
        self.checkpoint_path = self.out_dir / CHECKPOINT_NAME
        self.metrics = MetricsLog(self.out_dir / "metrics.jsonl")
        if resume and not self.checkpoint_path.is_file():
            raise ConfigError(f"--resume given but {self.checkpoint_path} does not exist")
        if not resume and self.checkpoint_path.is_file():
            raise ConfigError(
                f"{self.out_dir} already holds a run; use --resume to continue it or pick another --out"
            )

    def fit(self) -> dict[str, Any]:
        cfg = self.config
        seed_everything(cfg.train.seed, cfg.train.deterministic)
        data = load_data(cfg)
        parts = build_run(cfg, self.device, data)
        self.parts = parts
        model, method = parts.model, parts.method
        train_batches = make_batches(cfg, data, "train", self.device)
        val_batches = make_batches(cfg, data, "val", self.device)
        test_batches = make_batches(cfg, data, "test", self.device)
        optimizer = make_optimizer(cfg.optim, model.parameters())
        scheduler = make_scheduler(cfg.schedule, optimizer, cfg.train.epochs, len(train_batches))

        self.out_dir.mkdir(parents=True, exist_ok=True)
        start_epoch, train_seconds, best_val = 0, 0.0, float("-inf")
        if self.resume:
            state = load_checkpoint(self.checkpoint_path, self.device)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            start_epoch, train_seconds = state["epoch"], state["train_seconds"]
            best_val = state.get("best_val", best_val)
            set_rng_state(state["rng"])
            self.metrics.truncate_after(start_epoch)
        else:
            self.metrics.path.unlink(missing_ok=True)
        save_config(cfg, self.out_dir / "config.yaml")

        record: dict[str, Any] = {}
        for epoch in range(start_epoch, cfg.train.epochs):
            t0 = time.perf_counter()
            train_batches.set_epoch(epoch)
            train_stats = self._train_epoch(model, method, optimizer, scheduler, train_batches, epoch)
            train_seconds += time.perf_counter() - t0
            record = {"epoch": epoch + 1, **train_stats, "lr": optimizer.param_groups[0]["lr"]}
            if val_batches is not None:
                val = evaluate(model, method, val_batches)
                record.update(val_accuracy=val["accuracy"], val_loss=val["loss"])
                best_val = max(best_val, val["accuracy"])
            test = evaluate(model, method, test_batches)
            record.update(
                test_accuracy=test["accuracy"],
                test_loss=test["loss"],
                epoch_seconds=time.perf_counter() - t0,
                train_seconds=train_seconds,
            )
            self.metrics.append(record)
            save_checkpoint(
                self.checkpoint_path,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "epoch": epoch + 1,
                    "train_seconds": train_seconds,
                    "best_val": best_val,
                    "rng": rng_state(),
                },
            )
            for callback in self.callbacks:
                callback(self, record)

        if not record:  # resumed a finished run: report from the checkpoint
            record = self.metrics.read()[-1] if self.metrics.read() else {}
        summary = {
            "method": cfg.method["name"],
            "model": cfg.model.name,
            "dataset": cfg.data.name,
            "test_accuracy": record.get("test_accuracy"),
            "val_accuracy": record.get("val_accuracy"),
            "best_val_accuracy": best_val if best_val > float("-inf") else None,
            "epochs": cfg.train.epochs,
            "train_seconds": round(train_seconds, 3),
            "parameters": count_parameters(parts.arch),
            "device": str(self.device),
        }
        atomic_write_text(self.out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        return summary

    def _train_epoch(self, model, method, optimizer, scheduler, batches, epoch: int) -> dict[str, float]:
        model.train()
        clip = self.config.train.grad_clip
        loss_sum, correct, n = 0.0, 0, 0
        bar = tqdm(
            batches,
            desc=f"epoch {epoch + 1}/{self.config.train.epochs}",
            leave=False,
            disable=not self.config.train.progress,
            dynamic_ncols=True,
        )
        for x, y in bar:
            out = model(x)
            loss = method.loss(out, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            scheduler.step()
            with torch.no_grad():
                loss_sum += float(loss) * len(y)
                correct += int((method.predict(out) == y).sum())
                n += len(y)
            bar.set_postfix(loss=f"{loss_sum / n:.4f}", acc=f"{correct / n:.3f}")
        return {"train_loss": loss_sum / max(n, 1), "train_accuracy": correct / max(n, 1)}

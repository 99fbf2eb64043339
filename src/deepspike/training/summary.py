"""The run's ``summary.json``: what it trained and the final scores.

``method``, ``model``, ``dataset``; ``test_accuracy`` and ``val_accuracy`` of the last epoch (fractions;
None when absent), ``best_val_accuracy`` over the epochs (None without a validation split), ``epochs``,
``ema_decay``, ``train_seconds`` (rounded to ms), ``parameters`` (the conv and linear weights and biases of
the model spec, the same for every method: ``models.costs.count_parameters``), ``trainable_parameters`` (every
tensor the optimizer trains in the built model: also batch-norm scales and shifts and learnable neuron
parameters such as PLIF's decay), ``device``, ``world_size``, then the method's measures of the last epoch.
"""

from __future__ import annotations

from typing import Any

import torch

from deepspike.config.schema import RunConfig
from deepspike.models import Architecture
from deepspike.models.costs import count_parameters
from deepspike.training.epoch import method_measures
from deepspike.training.progress import TrainingProgress


def run_summary(
    config: RunConfig,
    last_record: dict[str, Any],
    progress: TrainingProgress,
    arch: Architecture,
    model: torch.nn.Module,
    device: torch.device,
    world_size: int,
) -> dict[str, Any]:
    """The summary of a run whose last epoch logged ``last_record`` (module docstring); the method's measures
    are the record's keys beyond the epoch's own (``epoch.method_measures``), so a finished run resumed
    without training reports the same summary from its log."""
    return {
        "method": config.method.name,
        "model": config.model.name,
        "dataset": config.data.name,
        "test_accuracy": last_record.get("test_accuracy"),
        "val_accuracy": last_record.get("val_accuracy"),
        "best_val_accuracy": progress.best_val if progress.best_val > float("-inf") else None,
        "epochs": config.train.epochs,
        "ema_decay": config.train.ema_decay,
        "train_seconds": round(progress.train_seconds, 3),
        "parameters": count_parameters(arch),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "device": str(device),
        "world_size": world_size,
        **method_measures(last_record),
    }

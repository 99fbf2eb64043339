"""How far a training run has got: what a checkpoint carries over from one epoch (or process) to the next."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainingProgress:
    """``epochs_done``: finished epochs; ``train_seconds``: time spent in training passes (evaluation not
    counted); ``best_val``: the best validation accuracy so far (-inf before any, or without a val split)."""

    epochs_done: int = 0
    train_seconds: float = 0.0
    best_val: float = float("-inf")

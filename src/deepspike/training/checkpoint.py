"""Training checkpoints: everything needed to continue a run bit-for-bit on the CPU.

A checkpoint holds the model, optimizer and scheduler state, the number of finished epochs, the best
validation score so far and every random generator's state (Python, NumPy, torch CPU and CUDA) of every
rank, so that the epoch after a resume draws exactly the same random numbers (Poisson spikes, dropout
masks, augmentation) as it would have without the interruption. The file itself is written and read by
``training.runs``, in the format of ``training.checkpoint_format`` (tensors and plain values only, checksummed).
"""

from __future__ import annotations

from typing import Any

from deepspike.training.distill import TEACHER_FIELD
from deepspike.training.progress import TrainingProgress
from deepspike.training.training_setup import TrainingSetup


def training_checkpoint(
    setup: TrainingSetup, progress: TrainingProgress, rng_per_rank: list[dict[str, Any]], config_sha256: str
) -> dict[str, Any]:
    """The checkpoint payload after ``progress.epochs_done`` epochs; ``rng_per_rank``: every rank's
    ``rng_state()`` (rank order); ``config_sha256``: the run's config as ``run_open.config_digest`` gives it. ``ema``
    only when the run keeps a weight average, ``teacher`` only when it is taught (``distill.TEACHER_FIELD``)."""
    payload = {
        "model": setup.parts.model.state_dict(),
        "optimizer": setup.optimizer.state_dict(),
        "scheduler": setup.scheduler.state_dict(),
        "epoch": progress.epochs_done,
        "train_seconds": progress.train_seconds,
        "best_val": progress.best_val,
        "rng_per_rank": rng_per_rank,
        "world_size": len(rng_per_rank),
        "config_sha256": config_sha256,
    }
    if setup.ema is not None:
        payload["ema"] = setup.ema.state_dict()
    if setup.distill is not None:
        payload[TEACHER_FIELD] = setup.distill.record
    return payload

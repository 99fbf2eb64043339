"""Training checkpoints: everything needed to continue a run bit-for-bit on the CPU.

A checkpoint holds the model, optimizer and scheduler state, the number of finished epochs, the best
validation score so far and every random generator's state (Python, NumPy, torch CPU and CUDA) of every
rank, so that the epoch after a resume draws exactly the same random numbers (Poisson spikes, dropout
masks, augmentation) as it would have without the interruption. The file itself is written and read by
``training.runs``, in the format of ``training.checkpoint_format`` (tensors and plain values only, checksummed).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from deepspike.training.progress import TrainingProgress
from deepspike.training.training_setup import TrainingSetup


def rng_state() -> dict[str, Any]:
    """Snapshot of every global random generator, in plain values a weights-only ``torch.load`` accepts:

    ``python``: ``random.getstate()`` (a tuple of ints); ``numpy``: the legacy ``np.random.get_state()``
    tuple ``("MT19937", keys, pos, has_gauss, cached_gaussian)`` with its 624 uint32 ``keys`` as a list of
    ints; ``torch`` / ``cuda``: the byte tensors of the CPU and every CUDA generator."""
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state()  # noqa: NPY002 (user code draws from it)
    state = {
        "python": random.getstate(),
        "numpy": (name, keys.tolist(), pos, has_gauss, cached_gaussian),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore a snapshot taken by ``rng_state`` (NumPy's keys may also be an array, as older checkpoints
    hold them: ``np.random.set_state`` takes either). The torch states go back from the CPU, where torch's
    setters take them: a checkpoint read with ``map_location`` a GPU holds them there. CUDA devices this machine
    lacks (a checkpoint of a machine with more GPUs) are left out: torch's setter raised an IndexError for them."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"][:torch.cuda.device_count()]])


def training_checkpoint(
    setup: TrainingSetup, progress: TrainingProgress, rng_per_rank: list[dict[str, Any]], config_sha256: str
) -> dict[str, Any]:
    """The checkpoint payload after ``progress.epochs_done`` epochs; ``rng_per_rank``: every rank's
    ``rng_state()`` (rank order); ``config_sha256``: the run's config as ``run_open.config_digest`` gives it. ``ema``
    only when the run keeps a weight average."""
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
    return payload

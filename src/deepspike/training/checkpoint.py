"""Training checkpoints: everything needed to continue a run bit-for-bit on the CPU.

A checkpoint holds the model, optimizer and scheduler state, the number of finished epochs, the best
validation score so far and every random generator's state (Python, NumPy, torch CPU and CUDA), so that
the epoch after a resume draws exactly the same random numbers (Poisson spikes, dropout masks,
augmentation) as it would have without the interruption.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepspike.core.atomic import atomic_write
from deepspike.core.errors import DataCorruptError, DataNotFoundError

CHECKPOINT_NAME = "checkpoint.pt"


def rng_state() -> dict[str, Any]:
    """Snapshot of every global random generator."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002 (the global state is what user code draws from)
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore a snapshot taken by ``rng_state``."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Atomically write ``payload`` (tensors and plain Python values) to ``path``."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write(Path(path), lambda f: f.write(buffer.getbuffer()))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``; one-line errors when missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"no checkpoint at {path}")
    try:
        # weights_only=False: the payload holds RNG states (numpy arrays, tuples); files are our own.
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:
        raise DataCorruptError(f"cannot read checkpoint {path}: {str(e).splitlines()[0]}") from None

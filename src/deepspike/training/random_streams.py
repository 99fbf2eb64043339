"""Snapshots of every global random generator (Python, NumPy, torch CPU and CUDA): what a checkpoint keeps so that a
resumed run draws the numbers the uncut run drew, and what a step that must not disturb the streams (reading a
teacher run, ``training.distill``) restores."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


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

"""Load a checkpoint's weights into a freshly built model, only if every tensor fits.

A checkpoint of another model or width (copied into a run, or a run whose ``config.yaml`` was edited) is a
one-line ``DataCorruptError`` naming the checkpoint and the first key that is missing, unexpected or of
another shape, instead of ``load_state_dict``'s multi-line size-mismatch report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepspike.core.errors import DataCorruptError


def payload_entry(state: Any, key: str, source: Path) -> Any:
    """``state[key]`` of the checkpoint read from ``source``, or a one-line ``DataCorruptError``."""
    if not isinstance(state, dict) or key not in state:
        raise DataCorruptError(f"{source} has no {key!r} entry: it is not a deepspike training checkpoint")
    return state[key]


def load_weights(model: nn.Module, weights: Any, source: Path) -> None:
    """Load the state dict ``weights`` (read from ``source``) into ``model``; a ``DataCorruptError`` naming
    ``source`` and the first key that does not fit when they differ."""
    mismatch = first_mismatch(model.state_dict(), weights)
    if mismatch is not None:
        raise DataCorruptError(f"{source} does not fit the model its run's config.yaml builds: {mismatch} "
                               "(a checkpoint of another model or width?)")
    model.load_state_dict(weights)


def first_mismatch(expected: dict[str, torch.Tensor], weights: Any) -> str | None:
    """None when ``weights`` has exactly ``expected``'s keys with tensors of the same shapes and dtypes, else what
    differs first (in the model's key order, then the checkpoint's extra keys). ``load_state_dict`` would cast a
    tensor of another dtype in silence (an int64 weight, a float in a uint8 buffer wrapping modulo 256)."""
    if not isinstance(weights, dict):
        return f"the weights are a {type(weights).__name__}, not a state dict"
    for key, value in expected.items():
        if key not in weights:
            return f"{key} is missing"
        got = weights[key]
        if not isinstance(got, torch.Tensor) or got.shape != value.shape:
            shape = list(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            return f"{key} has shape {shape} in the checkpoint, {list(value.shape)} in the model"
        if got.dtype != value.dtype:
            return f"{key} has dtype {got.dtype} in the checkpoint, {value.dtype} in the model"
    extra = next((key for key in weights if key not in expected), None)
    return None if extra is None else f"{extra} is in the checkpoint but not in the model"

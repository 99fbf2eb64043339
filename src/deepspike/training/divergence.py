"""Stop a run that diverged: a non-finite loss in any step, or non-finite weights after an epoch.

Both raise ``TrainingDiverged`` (a ``UserError``: the CLI prints one line and exits 2) naming the epoch and
step, before the epoch is logged or checkpointed, so the run keeps its last good checkpoint and writes no
summary; a checkpoint read back with such weights is therefore corrupt (``check_loaded_weights_finite``). Cost:
the loss is checked on the Python float the loop computes for its running mean anyway (no extra device
synchronisation); the weights once per epoch, with one synchronisation for all tensors.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from deepspike.core.errors import DataCorruptError, TrainingDiverged

ADVICE = "nothing of this epoch was logged or checkpointed; lower optim.lr or set train.grad_clip"


def _where(epoch: int | None, step: int | None) -> str:
    """``epoch 3, step 7`` (both 1-based); either part left out when unknown."""
    parts = ([f"epoch {epoch + 1}"] if epoch is not None else []) + ([f"step {step + 1}"] if step is not None else [])
    return ", ".join(parts)


def check_finite_loss(loss: float, epoch: int | None, step: int) -> None:
    """``TrainingDiverged`` when ``loss`` (a step's loss) is inf or nan; ``epoch``, ``step``: 0-based."""
    if not math.isfinite(loss):
        raise TrainingDiverged(f"training diverged at {_where(epoch, step)}: the loss is {loss}; {ADVICE}")


def check_finite_weights(model: nn.Module, epoch: int) -> None:
    """``TrainingDiverged`` when a floating-point parameter or buffer of ``model`` holds inf or nan after
    epoch ``epoch`` (0-based), naming the first such tensor."""
    bad = nonfinite_tensor(model.state_dict())
    if bad is not None:
        raise TrainingDiverged(f"training diverged in {_where(epoch, None)}: {bad} holds inf or nan; {ADVICE}")


def check_loaded_weights_finite(model: nn.Module, path: Path) -> None:
    """``DataCorruptError`` when ``model``, just loaded from ``path``, holds inf or nan: training stops at
    non-finite weights (``check_finite_weights``) before it saves them, so no run or export writes such a file."""
    bad = nonfinite_tensor(model.state_dict())
    if bad is not None:
        raise DataCorruptError(f"{path} is corrupt: its {bad} holds inf or nan")


def nonfinite_tensor(state: dict[str, torch.Tensor]) -> str | None:
    """The name of the first floating-point tensor of ``state`` (a state dict) that holds inf or nan, None when
    every one is finite; one synchronisation for all tensors."""
    tensors = {k: v for k, v in state.items() if v.is_floating_point() and v.numel()}
    if not tensors:
        return None
    finite = torch.stack([torch.isfinite(v).all() for v in tensors.values()]).tolist()  # one sync
    return next((name for name, ok in zip(tensors, finite, strict=True) if not ok), None)

"""Resume: load a checkpoint payload (``train.checkpoint``) into a freshly built run.

The weights, optimizer and scheduler state, the weight average and this rank's random generators come back
as they were after the checkpointed epoch, so the next epoch continues bit-for-bit (on the CPU). A run
checkpointed by more ranks than are resuming it hands each rank its own generators; extra ranks take rank 0's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepspike.core.errors import ConfigError
from deepspike.training.checkpoint import set_rng_state
from deepspike.training.distributed import DistContext
from deepspike.training.progress import TrainingProgress
from deepspike.training.training_setup import TrainingSetup


def restore_training(
    setup: TrainingSetup, state: dict[str, Any], ctx: DistContext, checkpoint_path: Path
) -> TrainingProgress:
    """Load checkpoint ``state`` (read from ``checkpoint_path``, named in errors) into ``setup``; returns the
    progress to continue from."""
    setup.parts.model.load_state_dict(state["model"])
    setup.optimizer.load_state_dict(state["optimizer"])
    setup.scheduler.load_state_dict(state["scheduler"])
    if setup.ema is not None:
        if "ema" not in state:
            raise ConfigError(f"{checkpoint_path} has no weight average; resume without train.ema_decay")
        setup.ema.load_state_dict(state["ema"])
    rngs = state["rng_per_rank"]
    set_rng_state(rngs[ctx.rank] if ctx.rank < len(rngs) else rngs[0])
    return TrainingProgress(state["epoch"], state["train_seconds"], state.get("best_val", float("-inf")))

"""Resume: load a checkpoint payload (``training.checkpoint``) into a freshly built run.

The weights, optimizer and scheduler state, the weight average and this rank's random generators come back
as they were after the checkpointed epoch, so the next epoch continues bit-for-bit (on the CPU). A run
checkpointed by more ranks than are resuming it hands each rank its own generators; extra ranks take rank 0's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepspike.core.errors import ConfigError, DataCorruptError
from deepspike.data.paths import one_line
from deepspike.training.checkpoint import set_rng_state
from deepspike.training.distributed import DistContext
from deepspike.training.progress import TrainingProgress
from deepspike.training.training_setup import TrainingSetup
from deepspike.training.weights import first_mismatch, load_weights, payload_entry


def restore_training(
    setup: TrainingSetup, state: dict[str, Any], ctx: DistContext, checkpoint_path: Path
) -> TrainingProgress:
    """Load checkpoint ``state`` (read from ``checkpoint_path``, named in errors) into ``setup``; returns the
    progress to continue from. A checkpoint that does not fit the run is a one-line ``DataCorruptError``."""
    load_weights(setup.parts.model, payload_entry(state, "model", checkpoint_path), checkpoint_path)
    optimizer, scheduler = (payload_entry(state, key, checkpoint_path) for key in ("optimizer", "scheduler"))
    try:
        setup.optimizer.load_state_dict(optimizer)
        setup.scheduler.load_state_dict(scheduler)
    except (KeyError, TypeError, ValueError) as e:
        raise DataCorruptError(f"{checkpoint_path}: its optimizer or schedule state does not fit the run's "
                               f"config.yaml ({one_line(e)})") from None
    if setup.ema is not None:
        if "ema" not in state:
            raise ConfigError(f"{checkpoint_path} has no weight average; resume without train.ema_decay")
        mismatch = first_mismatch(setup.ema.average, state["ema"].get("average"))  # its form: checkpoint_payload
        if mismatch is not None:
            raise DataCorruptError(f"{checkpoint_path}: its weight average does not fit the model ({mismatch})")
        setup.ema.load_state_dict(state["ema"])
    rngs = payload_entry(state, "rng_per_rank", checkpoint_path)
    set_rng_state(rngs[ctx.rank] if ctx.rank < len(rngs) else rngs[0])
    epoch = payload_entry(state, "epoch", checkpoint_path)
    return TrainingProgress(epoch, state.get("train_seconds", 0.0), state.get("best_val", float("-inf")))

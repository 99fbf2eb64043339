"""Resume: load a checkpoint payload (``training.checkpoint``) into a freshly built run.

The weights, optimizer and scheduler state, the weight average and this rank's random generators come back
as they were after the checkpointed epoch, so the next epoch continues bit-for-bit (on the CPU). A run
checkpointed by more ranks than are resuming it hands each rank its own generators; a rank the checkpoint holds none
for keeps those it was seeded with (``train.seed + rank``, ``training_setup``): had it taken rank 0's, the two would
draw the same Poisson spikes and dropout masks for different samples. A resume on another number of ranks is
therefore not bit-for-bit the uncut run where the net draws random numbers (the ranks' draws differ from the start).

The optimizer's per-parameter state must be what a step of the run's optimizer keeps (``optimizer_state_problem``:
the slots of a step on a stand-in parameter, each the parameter's shape or one number, a step count >= 1), its groups'
settings those the run's config gives (``CONFIG_SETTINGS``) and the schedule must have one base rate per parameter
group: a state that does not fit (a file made by hand, or an old one without checksum)
is a one-line ``DataCorruptError`` before anything trains, not a traceback at the first step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from deepspike.core.errors import ConfigError, DataCorruptError, one_line
from deepspike.core.options import shown_value
from deepspike.training.distributed import DistContext
from deepspike.training.progress import TrainingProgress
from deepspike.training.random_streams import set_rng_state
from deepspike.training.training_setup import TrainingSetup
from deepspike.training.weights import first_mismatch, load_weights, payload_entry


def restore_training(
    setup: TrainingSetup, state: dict[str, Any], ctx: DistContext, checkpoint_path: Path
) -> TrainingProgress:
    """Load checkpoint ``state`` (read from ``checkpoint_path``, named in errors) into ``setup``; returns the
    progress to continue from. A checkpoint that does not fit the run is a one-line ``DataCorruptError``."""
    load_weights(setup.parts.model, payload_entry(state, "model", checkpoint_path), checkpoint_path)
    optimizer, scheduler = (payload_entry(state, key, checkpoint_path) for key in ("optimizer", "scheduler"))
    settings = _group_settings(setup.optimizer)  # the run's config's, before the checkpoint's replace them
    try:
        setup.optimizer.load_state_dict(optimizer)
        setup.scheduler.load_state_dict(scheduler)
    except (KeyError, TypeError, ValueError) as e:
        raise DataCorruptError(f"{checkpoint_path}: its optimizer or schedule state does not fit the run's "
                               f"config.yaml ({one_line(e)})") from None
    problem = (_settings_problem(setup.optimizer, settings) or optimizer_state_problem(setup.optimizer)
               or _schedule_problem(setup.scheduler, setup.optimizer))  # settings first: a step probes the slots
    if problem is not None:
        raise DataCorruptError(f"{checkpoint_path}: its optimizer or schedule state does not fit the run ({problem})")
    if setup.ema is not None:
        if "ema" not in state:
            raise ConfigError(f"{checkpoint_path} has no weight average; resume without train.ema_decay")
        mismatch = first_mismatch(setup.ema.average, state["ema"].get("average"))  # its form: checkpoint_payload
        if mismatch is not None:
            raise DataCorruptError(f"{checkpoint_path}: its weight average does not fit the model ({mismatch})")
        setup.ema.load_state_dict(state["ema"])
    rngs = payload_entry(state, "rng_per_rank", checkpoint_path)
    if ctx.rank < len(rngs):
        set_rng_state(rngs[ctx.rank])
    epoch = payload_entry(state, "epoch", checkpoint_path)
    return TrainingProgress(epoch, state.get("train_seconds", 0.0), state.get("best_val", float("-inf")))


def optimizer_state_problem(optimizer: torch.optim.Optimizer) -> str | None:
    """What first differs between the loaded per-parameter state of ``optimizer`` and what one step of it keeps, or
    None. Expected: for each parameter either no state (not stepped yet) or exactly the slots a step of the same
    optimizer and group settings gives a stand-in parameter of shape ``[2]`` on the group's device: a slot of the
    stand-in's shape must have the parameter's shape, a scalar slot (Adam's ``step``) one value, a None slot stays None.
    Group settings with which torch refuses to step there (a ``capturable`` of True on the CPU) are the problem too."""
    for g, group in enumerate(optimizer.param_groups):
        try:
            slots = _slots_of_a_step(type(optimizer), group)
        except (AssertionError, RuntimeError, TypeError, ValueError) as e:  # capturable=True on the CPU: an assertion
            return f"group {g}'s settings fail a step of {type(optimizer).__name__} on this device ({one_line(e)})"
        for i, param in enumerate(group["params"]):
            state = optimizer.state.get(param)
            if not state:
                continue
            where = f"parameter {i} of group {g}"
            if set(state) != set(slots):
                return f"{where} has the slots {sorted(state)}, a step keeps {sorted(slots)}"
            for name, kind in slots.items():
                problem = _slot_problem(state[name], kind, param, name)
                if problem is not None:
                    return f"{where}'s {name} {problem}"
    return None


CONFIG_SETTINGS = ("momentum", "nesterov", "weight_decay", "betas")
"""The parameter-group settings ``training.optim`` takes from the run's config (where the optimizer has them); the
others are torch's defaults, which a checkpoint of another torch version may hold otherwise."""


def _group_settings(optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """Each parameter group's ``CONFIG_SETTINGS``: what a resumed optimizer must have as the run's config gives them
    (its parameters and learning rates are the checkpoint's, the schedule's)."""
    return [{k: v for k, v in group.items() if k in CONFIG_SETTINGS} for group in optimizer.param_groups]


def _settings_problem(optimizer: torch.optim.Optimizer, expected: list[dict[str, Any]]) -> str | None:
    """The first setting of a loaded parameter group that is not the one ``expected`` (``_group_settings`` of the
    run's optimizer) holds, or None. A checkpoint's groups replace the run's when loaded: a file made by hand with betas
    of None failed at the first step with a TypeError traceback."""
    def plain(value: Any) -> Any:
        return value.tolist() if isinstance(value, torch.Tensor) else list(value) if isinstance(value, tuple) else value

    for g, (group, settings) in enumerate(zip(optimizer.param_groups, expected)):
        for key, value in settings.items():
            if key not in group or plain(group[key]) != plain(value):
                loaded = shown_value(group[key]) if key in group else "missing"
                return f"group {g}'s {key} is {loaded}, where the run's config gives {shown_value(value)}"
    return None


def _slot_problem(value: Any, kind: str | None, param: torch.Tensor, name: str = "") -> str | None:
    """Why a loaded slot ``value`` (named ``name``) is not of ``kind`` (``_slots_of_a_step``) for parameter ``param``,
    or None; a ``step`` slot must count one step at least."""
    shape = list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
    if kind is None:
        return None if value is None else f"is {shape}, where a step keeps None"
    if kind == "per element":
        fits = isinstance(value, torch.Tensor) and value.shape == param.shape
        return None if fits else f"is {shape}, the parameter {list(param.shape)}"
    fits = isinstance(value, int | float) or (isinstance(value, torch.Tensor) and value.numel() == 1)
    if not fits:
        return f"is {shape}, not one number"
    number = float(value)
    if name == "step" and not (number >= 1 and number.is_integer()):  # Adam's count: at 0 its bias correction was 1 / 0
        return f"is {number:g}, not a count of steps >= 1"
    return None


def _slots_of_a_step(cls: type, group: dict[str, Any]) -> dict[str, str | None]:
    """The state slots one step of optimizer ``cls`` with ``group``'s settings keeps for a parameter: "per element",
    "scalar" or None (a slot it keeps as None)."""
    device = group["params"][0].device if group["params"] else None
    stand_in = torch.zeros(2, device=device, requires_grad=True)
    probe = cls([{**group, "params": [stand_in]}])
    stand_in.grad = torch.zeros(2, device=device)
    probe.step()
    kinds = {}
    for name, value in probe.state[stand_in].items():
        if value is None:
            kinds[name] = None
        else:
            per_element = isinstance(value, torch.Tensor) and value.shape == stand_in.shape
            kinds[name] = "per element" if per_element else "scalar"
    return kinds


def _schedule_problem(scheduler, optimizer: torch.optim.Optimizer) -> str | None:
    """Whether the loaded schedule has one base rate (and one last rate) per parameter group of ``optimizer``."""
    groups = len(optimizer.param_groups)
    for name in ("base_lrs", "_last_lr"):
        rates = getattr(scheduler, name, None)
        if rates is not None and len(rates) != groups:
            return f"the schedule's {name} has {len(rates)} rates for {groups} parameter group(s)"
    return None

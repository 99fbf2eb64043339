"""What each field of a checkpoint payload must hold, checked on every load (``training.checkpoint_format``).

A checksum proves that a file holds what deepspike wrote, not that the writer got it right, and the checkpoints
of older versions carry none: so the fields that evaluating or resuming a run reads are checked on every load,
and one that is not of its form below is a one-line ``DataCorruptError`` naming it, instead of a traceback (or a
resumed run that rewrites its log) later. A field may be missing (a converted run's checkpoint has no optimizer,
zoo weights have only ``model``): the code that needs it says so (``weights.payload_entry``). Other keys are left
alone. ``training.checkpoint.training_checkpoint`` writes these fields:

    model          a state dict: parameter name (str) -> tensor
    ema            {"average": a state dict, "updates": int >= 0, "decay": number}
    optimizer      torch's optimizer state: {"state": {int: {str: tensor | number | None}}, "param_groups": a
                   non-empty list of {"params": [int], setting: number | bool | None | scalar tensor | numbers}}
    scheduler      torch's LambdaLR state: base_lrs and _last_lr lists of numbers, last_epoch int >= -1,
                   lr_lambdas a list of None (a lambda's state is not saved); no "optimizer"; other keys plain values
    epoch          finished epochs: int >= 1 in a training checkpoint (one with an optimizer or generator states:
                   it is written after each finished epoch), int >= 0 in others (a converted run)
    train_seconds  a finite number >= 0
    best_val       a number (-inf before any validation)
    rng_per_rank   a non-empty list of ``checkpoint.rng_state()`` dicts whose Python, NumPy and torch states a
                   fresh generator of each kind accepts; "cuda", when there, a list of byte tensors
    world_size     len(rng_per_rank)
    source_run     str (converted runs)
    config_sha256  str: the config it was trained with, ``run_open.config_digest`` (training checkpoints since
                   session 30; a resume with another config.yaml is refused)
    quant_bits     int >= 1 (quantization-aware retraining stages)
    teacher        {"run": str, "checkpoint_sha256": str}: the teacher of a distilled run (``training.distill``)
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from deepspike.core.options import shown_value
from deepspike.data.paths import one_line

Check = Callable[[Any], "str | None"]  # a field's check: None when the value is fine, else " is ..." (or "[k] is ...")
# What the generators' setters raise on a state of the wrong form (found by trying them on malformed states).
_SETTER_ERRORS = (TypeError, ValueError, KeyError, IndexError, OverflowError, RuntimeError)
_NUMERIC_SETTINGS = ("lr", "initial_lr", "weight_decay", "eps", "momentum", "dampening")


def payload_problem(payload: dict[str, Any]) -> str | None:
    """The first field of ``payload`` that is not of its form (module docstring), said as "FIELD is ... , not
    ..."; None when every field present is."""
    training = "optimizer" in payload or "rng_per_rank" in payload
    checks: dict[str, Check] = {
        "model": _state_dict,
        "ema": _ema,
        "optimizer": _optimizer,
        "scheduler": _scheduler,
        "epoch": lambda v: _integer(v, 1 if training else 0),
        "train_seconds": _seconds,
        "best_val": _number,
        "rng_per_rank": _rng_states,
        "world_size": lambda v: _world_size(v, payload.get("rng_per_rank")),
        "source_run": _string,
        "config_sha256": _string,
        "quant_bits": lambda v: _integer(v, 1),
        "teacher": _teacher,
    }
    for key, check in checks.items():
        problem = check(payload[key]) if key in payload else None
        if problem is not None:
            return key + problem
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _a(value: Any) -> str:
    """``value`` named for a message: a short repr for plain values, "a TYPE" for anything else."""
    if value is None or isinstance(value, bool | int | float | str):
        return shown_value(value)
    return f"a {type(value).__name__}"


def _integer(value: Any, minimum: int) -> str | None:
    return None if _is_int(value) and value >= minimum else f" is {_a(value)}, not an integer >= {minimum}"


def _number(value: Any) -> str | None:
    return None if _is_number(value) else f" is {_a(value)}, not a number"


def _seconds(value: Any) -> str | None:
    return None if _is_number(value) and 0 <= value < math.inf else f" is {_a(value)}, not a finite number >= 0"


def _string(value: Any) -> str | None:
    return None if isinstance(value, str) else f" is {_a(value)}, not a string"


def _teacher(value: Any) -> str | None:
    ok = isinstance(value, dict) and set(value) == {"run", "checkpoint_sha256"} and all(
        isinstance(v, str) for v in value.values())
    return None if ok else f" is {_a(value)}, not {{'run': str, 'checkpoint_sha256': str}}"


def _numbers(value: Any) -> str | None:
    ok = isinstance(value, list | tuple) and all(_is_number(x) for x in value)
    return None if ok else f" is {_a(value)}, not a list of numbers"


def _world_size(value: Any, rngs: Any) -> str | None:
    problem = _integer(value, 1)
    if problem is None and isinstance(rngs, list) and value != len(rngs):
        return f" is {_a(value)}, but rng_per_rank holds {len(rngs)} states"
    return problem


def _fields(value: Any, checks: dict[str, Check], what: str, optional: tuple[str, ...] = ()) -> str | None:
    """``value`` is a dict holding each key of ``checks`` (those in ``optional`` may be missing) that passes its
    check; ``what`` names such a dict in the message."""
    if not isinstance(value, dict):
        return f" is {_a(value)}, not {what}"
    for key, check in checks.items():
        if key not in value:
            if key in optional:
                continue
            return f" has no {key!r} entry: it is not {what}"
        problem = check(value[key])
        if problem is not None:
            return f"[{key!r}]{problem}"
    return None


def _state_dict(value: Any) -> str | None:
    if not isinstance(value, dict):
        return f" is {_a(value)}, not a state dict (parameter names to tensors)"
    for key, tensor in value.items():
        if not isinstance(key, str):
            return f" has the key {_a(key)}, not a parameter name"
        if not isinstance(tensor, torch.Tensor):
            return f"[{_a(key)}] is {_a(tensor)}, not a tensor"
    return None


def _ema(value: Any) -> str | None:
    checks = {"average": _state_dict, "updates": lambda v: _integer(v, 0), "decay": _number}
    return _fields(value, checks, "a weight average state")


def _optimizer(value: Any) -> str | None:
    return _fields(value, {"state": _optimizer_slots, "param_groups": _param_groups}, "an optimizer state")


def _optimizer_slots(value: Any) -> str | None:
    """``optimizer["state"]``: parameter index -> {name: tensor | number | None} (momentum, Adam's moments)."""
    if not isinstance(value, dict):
        return f" is {_a(value)}, not a dict of parameter states"
    for index, slots in value.items():
        if not _is_int(index):
            return f" has the key {_a(index)}, not a parameter index"
        if not isinstance(slots, dict):
            return f"[{_a(index)}] is {_a(slots)}, not a dict"
        for name, slot in slots.items():
            if not isinstance(name, str) or not (slot is None or _is_number(slot) or isinstance(slot, torch.Tensor)):
                return f"[{_a(index)}][{_a(name)}] is {_a(slot)}, not a tensor or number"
    return None


def _param_groups(value: Any) -> str | None:
    if not isinstance(value, list) or not value:
        return f" is {_a(value)}, not a non-empty list of parameter groups"
    for i, group in enumerate(value):
        problem = _fields(group, {"params": _param_indices}, "a parameter group") or _settings(group)
        if problem is not None:
            return f"[{i}]{problem}"
    return None


def _param_indices(value: Any) -> str | None:
    ok = isinstance(value, list) and all(_is_int(i) for i in value)
    return None if ok else f" is {_a(value)}, not a list of parameter indices"


def _settings(group: dict) -> str | None:
    """A parameter group's settings but ``params``: numbers (the learning rate, decay, ...: a number or a scalar
    tensor), flags, None or tuples of numbers (Adam's betas)."""
    for key, value in group.items():
        scalar = _is_number(value) or (isinstance(value, torch.Tensor) and value.numel() == 1)
        if key in _NUMERIC_SETTINGS:
            ok = scalar
        else:
            ok = key == "params" or scalar or value is None or isinstance(value, bool) or _numbers(value) is None
        if not ok:
            return f"[{_a(key)}] is {_a(value)}, not a {'number' if key in _NUMERIC_SETTINGS else 'setting'}"
    return None


def _scheduler(value: Any) -> str | None:
    """LambdaLR's state (``load_state_dict`` sets every key as an attribute: no ``optimizer``, only plain values)."""
    checks = {"base_lrs": _numbers, "last_epoch": lambda v: _integer(v, -1), "lr_lambdas": _no_lambda_state,
              "_last_lr": _numbers, "_step_count": lambda v: _integer(v, 0)}
    problem = _fields(value, checks, "a learning-rate schedule state", optional=("_last_lr", "_step_count"))
    if problem is not None:
        return problem
    for key, item in value.items():
        plain = item is None or isinstance(item, bool | int | float | str)
        if key == "optimizer" or (key not in checks and not plain):
            return f"[{_a(key)}] is {_a(item)}, not a plain value of a schedule state"
    return None


def _no_lambda_state(value: Any) -> str | None:
    ok = isinstance(value, list) and all(item is None for item in value)
    return None if ok else f" is {_a(value)}, not a list of None (a schedule function's state is not saved)"


def _rng_states(value: Any) -> str | None:
    if not isinstance(value, list) or not value:
        return f" is {_a(value)}, not a non-empty list of random generator states"
    checks = {"python": _python_rng, "numpy": _numpy_rng, "torch": _torch_rng, "cuda": _cuda_rngs}
    for rank, state in enumerate(value):
        problem = _fields(state, checks, "a random generator state", optional=("cuda",))
        if problem is not None:
            return f"[{rank}]{problem}"
    return None


def _accepted(setter: Callable[[Any], Any], state: Any, what: str) -> str | None:
    """None when ``setter`` (of a fresh generator) takes ``state``, else why not."""
    try:
        setter(state)
    except _SETTER_ERRORS as e:
        return f" is not a state of {what} ({one_line(e) or type(e).__name__})"
    return None


def _python_rng(value: Any) -> str | None:
    if not (isinstance(value, tuple) and len(value) == 3 and (value[2] is None or isinstance(value[2], float))):
        return f" is {_a(value)}, not a state of Python's random module (random.getstate())"
    return _accepted(random.Random().setstate, value, "Python's random module")


def _numpy_rng(value: Any) -> str | None:
    return _accepted(np.random.RandomState(0).set_state, value, "NumPy's legacy generator")


def _torch_rng(value: Any) -> str | None:
    state = value.cpu() if isinstance(value, torch.Tensor) else value  # loaded onto the run's device
    return _accepted(torch.Generator().set_state, state, "torch's CPU generator")


def _cuda_rngs(value: Any) -> str | None:
    ok = isinstance(value, list) and all(isinstance(t, torch.Tensor) and t.dtype == torch.uint8 for t in value)
    return None if ok else f" is {_a(value)}, not a list of CUDA generator states (byte tensors)"

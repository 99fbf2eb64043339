"""Model registry: ``register_model`` / ``create_architecture`` / ``list_models``.

Every model factory takes the same core arguments ``num_classes``, ``input_shape`` ``(C, H, W)`` and
``width`` (a channel multiplier, e.g. 0.25 for tiny test nets) and returns a tuple of layer specs
(``deepspike.models.spec``). ``deepspike.methods.create_model`` hands the resulting ``Architecture`` to a
training method, which builds its own kind of network (ANN, rate-coded SNN, TTFS SNN) from it.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

from deepspike.core.errors import ConfigError, unknown_choice
from deepspike.core.options import is_finite, is_whole
from deepspike.core.registration import check_registration
from deepspike.models.spec import Architecture, Layer, Shape


@dataclass(frozen=True)
class ModelEntry:
    name: str
    factory: Callable[..., tuple[Layer, ...]]
    default_input_shape: Shape
    paper: str
    description: str


_MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, default_input_shape: Shape, paper: str = "") -> Callable:
    """Decorator registering ``factory(num_classes, input_shape, width, **kwargs) -> tuple[Layer, ...]``.
    ``TypeError`` for a name that is not a string, a shape that is not positive ints, or a factory that cannot be
    called with ``num_classes``, ``input_shape`` and ``width`` alone (an option without a default): a bad entry would
    break every later ``list_models`` / ``model_table``; ``ConfigError`` for a name another factory has
    (``core.registration``)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"register_model: the name must be a non-empty string, got {name!r}")
    if not isinstance(default_input_shape, tuple | list) or not default_input_shape or not all(
            is_whole(n, 1) for n in default_input_shape):
        raise TypeError(f"register_model: default_input_shape must be positive ints, e.g. (1, 28, 28), got "
                        f"{default_input_shape!r}")

    def wrap(factory: Callable[..., tuple[Layer, ...]]) -> Callable[..., tuple[Layer, ...]]:
        _check_signature(name, factory)
        check_registration("model", name, _MODELS[name].factory if name in _MODELS else None, factory)
        doc = (factory.__doc__ or "").strip().splitlines()
        _MODELS[name] = ModelEntry(name, factory, tuple(default_input_shape), paper, doc[0] if doc else "")
        return factory

    return wrap


def list_models() -> list[ModelEntry]:
    """All registered models, sorted by name."""
    return [_MODELS[k] for k in sorted(_MODELS)]


def get_model_entry(name: str) -> ModelEntry:
    if name not in _MODELS:
        raise unknown_choice("model", name, _MODELS)
    return _MODELS[name]


def create_architecture(
    name: str,
    num_classes: int = 10,
    input_shape: Shape | None = None,
    width: float = 1.0,
    **kwargs,
) -> Architecture:
    """Resolve ``name`` to an ``Architecture`` for the given classes, input shape and width (a channel multiplier
    in ``(0, MAX_SIZE_ARG]``)."""
    entry = get_model_entry(name)
    if not is_whole(num_classes, -math.inf):
        raise ConfigError(f"num_classes must be a whole number, got {num_classes!r}")
    if num_classes < 2:
        raise ConfigError(f"num_classes must be >= 2, got {num_classes}")
    if not is_finite(width) or not 0 < width <= MAX_SIZE_ARG:  # 1e308 channels per channel overflowed round()
        raise ConfigError(f"model width must be a finite number > 0 and at most {MAX_SIZE_ARG}, got {width!r}")
    shape = check_input_shape(name, entry.default_input_shape if input_shape is None else input_shape)
    _check_kwargs(entry, kwargs)
    layers = entry.factory(num_classes=num_classes, input_shape=shape, width=width, **kwargs)
    if not isinstance(layers, tuple | list) or not layers:
        raise ConfigError(f"model {name!r}: its factory returned {type(layers).__name__}, not a non-empty tuple of "
                          "layer specs (deepspike.models.spec)")
    return Architecture(name, tuple(layers), shape, num_classes)


def check_input_shape(name: str, shape) -> tuple[int, ...]:
    """``shape`` as a tuple, or a one-line ``ConfigError`` for model ``name`` unless it is a non-empty list or tuple
    of whole numbers from 1 to ``MAX_SIZE_ARG`` (784 meant as ``(784,)`` was a TypeError)."""
    if not isinstance(shape, tuple | list) or not shape or not all(_whole(size, 1) for size in shape):
        raise ConfigError(f"model {name!r}: input shape must be whole numbers from 1 to {MAX_SIZE_ARG}, got "
                          f"{list(shape) if isinstance(shape, tuple | list) else shape!r}")
    return tuple(shape)


def scaled(channels: int, width: float) -> int:
    """Channel count scaled by the width multiplier, at least 1."""
    return max(1, int(round(channels * width)))


MAX_SIZE_ARG = 65536
"""The largest whole number a model argument takes (a channel count, a depth): beyond any net that trains here."""
MAY_BE_ZERO = ("pools", "depths")
"""Model arguments whose whole numbers may be 0 (no pool, a stage of no blocks)."""
MAY_BE_EMPTY = ("hidden",)
"""List model arguments that may be empty (no hidden layer)."""


CORE_ARGS = ("num_classes", "input_shape", "width")
"""The arguments every factory takes from the recipe's other keys, never from ``model.args``."""
CORE_ARG_SOURCES = {"num_classes": "the data set sets it (create_model's num_classes)",
                    "input_shape": "the data set sets it (create_model's input_shape)",
                    "width": "set model.width instead (create_model's width)",
                    "name": "set model.name instead (create_model's name)"}
"""Where each of ``CORE_ARGS`` and ``name`` (``create_architecture``'s own) comes from, for the refusal of one given
in ``model.args``."""


def refuse_core_args(args, where: str = "model.args") -> None:
    """A one-line ``ConfigError`` when ``args`` (``model.args``) holds one of ``CORE_ARGS`` or ``name``: passed on
    beside the recipe's own value, it was a TypeError ('got multiple values for (keyword) argument')."""
    clash = sorted(set(args) & set(CORE_ARG_SOURCES))
    if clash:
        raise ConfigError(f"{where}.{clash[0]} is not a model option: {CORE_ARG_SOURCES[clash[0]]}")


def _check_signature(name: str, factory: Callable) -> None:
    """``TypeError`` unless ``factory(num_classes=..., input_shape=..., width=...)`` binds: every other argument has a
    default (``deepspike models`` builds each model so; a recipe sets only what it changes)."""
    try:
        inspect.signature(factory).bind(**dict.fromkeys(CORE_ARGS))
    except TypeError as e:
        raise TypeError(f"register_model({name!r}): the factory must take num_classes, input_shape and width and "
                        f"give every other argument a default ({e})") from None
    except ValueError:  # no signature to read (a builtin): it is called as it is
        pass


def _check_kwargs(entry: ModelEntry, kwargs: dict) -> None:
    """``kwargs`` (``model.args``) against the factory's signature: each a named argument of the right kind (a factory
    with ``**options`` also takes any other key, unchecked)."""
    params = inspect.signature(entry.factory).parameters
    named = {k: p for k, p in params.items()
             if k not in CORE_ARGS and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    for key, value in kwargs.items():
        if key not in named and (key in CORE_ARGS or not takes_any):
            valid = ", ".join(named) or "none"
            raise ConfigError(f"model {entry.name!r} has no argument {key!r}; valid: {valid}")
        problem = _kind_problem(key, value, named[key].default) if key in named else None
        if problem:
            raise ConfigError(f"model {entry.name!r}: bad value {value!r} for model.args.{key}: expected {problem}")


def _kind_problem(key: str, value, default) -> str | None:
    """What ``value`` should be, judged by the factory's ``default`` for it (a bool, a whole number, a number, text,
    or a list of whole numbers nested as deep as the default); None when it fits or the default says nothing."""
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(default, int):
        low = min(default, 0 if key in MAY_BE_ZERO else 1)  # a factory's own default is always taken
        return None if _whole(value, low) else f"a whole number from {low} to {MAX_SIZE_ARG}"
    if isinstance(default, float):
        return None if is_finite(value) else "a finite number"
    if isinstance(default, str):
        if isinstance(value, bool | int | float):  # "pooling=0011" reaches a factory as the number 9
            return (f"text; YAML reads unquoted digits as a number and true/false as a flag: quote it, {key}: "
                    f"\"{default}\" in a recipe, model.args.{key}=\"'{default}'\" on the command line")
        return None if isinstance(value, str) else "text"
    if isinstance(default, tuple | list):
        depth = _list_depth(default)
        empty_ok = key in MAY_BE_EMPTY
        low = 0 if key in MAY_BE_ZERO else 1
        return None if _whole_lists(value, depth, empty_ok, low) else (
            f"a {'' if empty_ok else 'non-empty '}list{' of lists' * (depth - 1)} of whole numbers from {low} to "
            f"{MAX_SIZE_ARG}")
    return None


def _whole(value, low: int) -> bool:
    return is_whole(value, low, max(MAX_SIZE_ARG, low))


def _list_depth(default) -> int:
    """How deep a default's lists nest around its whole numbers: 1 for ``(1, 2)``, 2 for ``((32, 32), (64,))``."""
    depth = 0
    while isinstance(default, tuple | list) and default:
        depth, default = depth + 1, default[0]
    return max(depth, 1)


def _whole_lists(value, depth: int, empty_ok: bool, low: int) -> bool:
    if not isinstance(value, tuple | list) or (not value and not empty_ok):
        return False
    if depth == 1:
        return all(_whole(v, low) for v in value)
    return all(_whole_lists(v, depth - 1, False, low) for v in value)

"""Model registry: ``register_model`` / ``create_architecture`` / ``list_models``.

Every model factory takes the same core arguments ``num_classes``, ``input_shape`` ``(C, H, W)`` and
``width`` (a channel multiplier, e.g. 0.25 for tiny test nets) and returns a tuple of layer specs
(``deepspike.models.spec``). ``deepspike.methods.create_model`` hands the resulting ``Architecture`` to a
training method, which builds its own kind of network (ANN, rate-coded SNN, TTFS SNN) from it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from deepspike.core.errors import ConfigError, unknown_choice
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
    ``TypeError`` for a name that is not a string or a shape that is not positive ints: a bad entry would break
    every later ``list_models``; ``ConfigError`` for a name another factory has (``core.registration``)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"register_model: the name must be a non-empty string, got {name!r}")
    if not isinstance(default_input_shape, tuple | list) or not default_input_shape or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in default_input_shape):
        raise TypeError(f"register_model: default_input_shape must be positive ints, e.g. (1, 28, 28), got "
                        f"{default_input_shape!r}")

    def wrap(factory: Callable[..., tuple[Layer, ...]]) -> Callable[..., tuple[Layer, ...]]:
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
    """Resolve ``name`` to an ``Architecture`` for the given classes, input shape and width."""
    entry = get_model_entry(name)
    if num_classes < 2:
        raise ConfigError(f"num_classes must be >= 2, got {num_classes}")
    if width <= 0:
        raise ConfigError(f"model width must be > 0, got {width}")
    shape = tuple(input_shape) if input_shape is not None else entry.default_input_shape
    _check_kwargs(entry, kwargs)
    layers = entry.factory(num_classes=num_classes, input_shape=shape, width=width, **kwargs)
    if not isinstance(layers, tuple | list) or not layers:
        raise ConfigError(f"model {name!r}: its factory returned {type(layers).__name__}, not a non-empty tuple of "
                          "layer specs (deepspike.models.spec)")
    return Architecture(name, tuple(layers), shape, num_classes)


def scaled(channels: int, width: float) -> int:
    """Channel count scaled by the width multiplier, at least 1."""
    return max(1, int(round(channels * width)))


def _check_kwargs(entry: ModelEntry, kwargs: dict) -> None:
    params = inspect.signature(entry.factory).parameters
    allowed = [p for p in params if p not in ("num_classes", "input_shape", "width")]
    for key in kwargs:
        if key not in allowed:
            valid = ", ".join(allowed) or "none"
            raise ConfigError(f"model {entry.name!r} has no argument {key!r}; valid: {valid}")

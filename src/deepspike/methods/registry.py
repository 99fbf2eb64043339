"""Method registry: ``register_method``, ``get_method(name, options)``, ``list_methods``.

``method_options(name, values)`` validates a recipe's options once (into the method's ``Options``
dataclass); ``method_from_options(name, options)`` instantiates the method from such a validated object.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from deepspike.core.errors import ConfigError, unknown_choice
from deepspike.core.options import to_dataclass
from deepspike.core.registration import check_registration
from deepspike.methods.base import Method

_METHODS: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator adding a ``Method`` subclass under ``cls.name``; ``TypeError`` for anything else (a bad entry
    would break every later ``list_methods``); ``ConfigError`` for a name another class has (``core.registration``)."""
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise TypeError(f"register_method takes a subclass of deepspike.methods.Method, got {cls!r}")
    if not isinstance(getattr(cls, "name", None), str) or not dataclasses.is_dataclass(getattr(cls, "Options", None)):
        raise TypeError(f"register_method: {cls.__name__} needs a string `name` and a dataclass `Options`")
    check_registration("method", cls.name, _METHODS.get(cls.name), cls)
    _METHODS[cls.name] = cls
    return cls


def _method_class(name: str) -> type[Method]:
    if name not in _METHODS:
        raise unknown_choice("method", name, _METHODS)
    return _METHODS[name]


def check_trainable(name: str) -> None:
    """A one-line ``ConfigError`` when method ``name`` makes its nets without training (``Method.made_by``)."""
    made_by = _method_class(name).made_by
    if made_by:
        raise ConfigError(f"method {name!r} is not trained: its nets are made by `{made_by}` (train an ann run and "
                          "convert it)")


def learns_locally(name: str) -> bool:
    """Whether method ``name`` learns without gradients (``Method.learns_locally``: nothing for an optimizer)."""
    return _method_class(name).learns_locally


def method_options(name: str, values: dict | None = None) -> Any:
    """``values`` checked against method ``name``'s ``Options`` dataclass, defaults filled in."""
    return to_dataclass(_method_class(name).Options, values or {}, "method")


def method_from_options(name: str, options: Any) -> Method:
    """Method ``name`` with an already validated ``Options`` instance (from ``method_options``)."""
    cls = _method_class(name)
    if not isinstance(options, cls.Options):
        raise TypeError(f"method {name!r} takes {cls.Options.__name__} options, got {type(options).__name__}")
    return cls(options)


def get_method(name: str, options: dict | None = None) -> Method:
    """Instantiate method ``name`` with ``options`` checked against its ``Options`` dataclass."""
    return method_from_options(name, method_options(name, options))


def method_names() -> list[str]:
    """The registered methods' names, sorted."""
    return sorted(_METHODS)


def list_methods() -> list[type[Method]]:
    return [_METHODS[k] for k in sorted(_METHODS)]

"""Method registry: ``register_method``, ``get_method(name, options)``, ``list_methods``."""

from __future__ import annotations

from deepspike.core.errors import unknown_choice
from deepspike.core.options import to_dataclass
from deepspike.methods.base import Method

_METHODS: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator adding a ``Method`` subclass under ``cls.name``."""
    if cls.name in _METHODS:
        raise ValueError(f"method {cls.name!r} registered twice")
    _METHODS[cls.name] = cls
    return cls


def get_method(name: str, options: dict | None = None) -> Method:
    """Instantiate method ``name`` with ``options`` checked against its ``Options`` dataclass."""
    if name not in _METHODS:
        raise unknown_choice("method", name, _METHODS)
    cls = _METHODS[name]
    return cls(to_dataclass(cls.Options, options or {}, "method"))


def list_methods() -> list[type[Method]]:
    return [_METHODS[k] for k in sorted(_METHODS)]

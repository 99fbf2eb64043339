"""Registering a name twice (models, methods, data sets): the same definition again replaces the entry, another
one under a taken name is refused."""

from __future__ import annotations

from typing import Any

from deepspike.core.errors import ConfigError


def _definition(obj: Any) -> str:
    """Where ``obj`` is defined: ``module.qualified_name``."""
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def check_registration(kind: str, name: str, registered: Any, new: Any) -> None:
    """``ConfigError`` when ``name`` is already registered to ``registered`` and ``new`` is defined elsewhere.

    ``registered`` is None for a free name. The same definition run again (a notebook cell run twice,
    ``importlib.reload``) has the same module and qualified name and may replace its entry.
    """
    if registered is not None and _definition(registered) != _definition(new):
        raise ConfigError(f"{kind} {name!r} is already registered (by {_definition(registered)}); choose another "
                          "name")

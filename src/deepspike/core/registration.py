"""Registering a name twice (models, methods, data sets, neurons, encoders): the same definition again replaces the
entry, another one under a taken name is refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from deepspike.core.errors import ConfigError

F = TypeVar("F", bound=Callable)


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


def factory_registrar(api: str, kind: str, name: str, builtins: tuple[str, ...],
                      table: dict[str, Any]) -> Callable[[F], F]:
    """The decorator ``api(name)`` returns: it puts a factory into ``table`` under ``name``.

    ``TypeError`` (now) for a name that is not a non-empty string other than ``builtins``, and (when it decorates)
    for a factory that is not callable; ``ConfigError`` for a name another factory has (``check_registration``)."""
    if not isinstance(name, str) or not name or name in builtins:
        raise TypeError(f"{api}: the name must be a non-empty string other than {', '.join(builtins)}; got {name!r}")

    def wrap(factory: F) -> F:
        if not callable(factory):
            raise TypeError(f"{api}({name!r}) takes a factory function, got {factory!r}")
        check_registration(kind, name, table.get(name), factory)
        table[name] = factory
        return factory

    return wrap


def made_module(kind: str, name: str, made: Any) -> nn.Module:
    """``made``, what the factory registered as ``method.{kind}={name}`` returned, when it is a torch module; else a
    one-line ``ConfigError``."""
    if not isinstance(made, nn.Module):
        raise ConfigError(f"method.{kind}={name}: its factory returned a {type(made).__name__}, not a torch module")
    return made

"""Every key a recipe may set, read from the schema's dataclasses: the documentation's recipe reference
(``docs/build_pages.py`` writes it as ``docs/generated/recipe.md``) and its tests.

A key is ``section.field`` (``train.epochs``), nested sections joined by dots (``data.augment.hflip``); the
``method`` section's keys depend on ``method.name`` and come from that method's ``Options`` dataclass. The choices
of a method's string option are what its one-line refusal of a value no option takes lists (``...; valid: a, b``):
the check that refuses bad recipes is the one source, and the tests load every value listed.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass
from typing import Any

from deepspike.config.schema import CHOICES, RunConfig
from deepspike.core.errors import ConfigError
from deepspike.methods.registry import list_methods, method_options

NOT_AN_OPTION = "\x00"  # a value no string option takes: its refusal lists the valid ones


@dataclass(frozen=True)
class RecipeKey:
    """One key: ``key`` (dotted), ``type`` (the annotation as written, e.g. ``"int | None"``), ``default``
    (the value a recipe that leaves it out gets) and ``choices`` (the valid values of a key with a fixed set,
    else empty)."""

    key: str
    type: str
    default: Any
    choices: tuple[str, ...] = ()


def section_keys() -> dict[str, list[RecipeKey]]:
    """``{section: keys}`` for every section but ``method``, in the schema's order; a nested section
    (``data.augment``) is its own entry after its parent."""
    sections: dict[str, list[RecipeKey]] = {}
    for field in dataclasses.fields(RunConfig):
        if field.name != "method":
            _collect(field.name, field.default_factory(), sections)  # type: ignore[misc]
    return sections


def method_keys() -> dict[str, list[RecipeKey]]:
    """``{method name: its option keys}`` (``method.timesteps``, ...), methods sorted by name."""
    return {cls.name: [RecipeKey(f"method.{f.name}", str(f.type), _default(f), _probed_choices(cls.name, f))
                       for f in dataclasses.fields(cls.Options)] for cls in list_methods()}


def section_doc(section: str) -> str:
    """The docstring of ``section``'s dataclass (``"train"``, ``"data.augment"``), or ``""`` where it has none."""
    instance: Any = RunConfig()
    for name in section.split("."):
        instance = getattr(instance, name)
    doc = type(instance).__doc__ or ""
    return "" if doc.startswith(type(instance).__name__ + "(") else inspect.cleandoc(doc)  # dataclass's own


def _collect(prefix: str, instance: Any, sections: dict[str, list[RecipeKey]]) -> None:
    keys = sections.setdefault(prefix, [])
    nested = []
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        if dataclasses.is_dataclass(value):
            nested.append((f"{prefix}.{field.name}", value))
        else:
            keys.append(_key(f"{prefix}.{field.name}", field, value))
    for name, value in nested:
        _collect(name, value, sections)


def _key(key: str, field: dataclasses.Field, default: Any) -> RecipeKey:
    return RecipeKey(key, str(field.type), default, CHOICES.get(key, ()))


def _probed_choices(method: str, field: dataclasses.Field) -> tuple[str, ...]:
    """The values method ``method``'s string option ``field`` takes, from the refusal of ``NOT_AN_OPTION``."""
    if field.type != "str":
        return ()
    try:
        method_options(method, {field.name: NOT_AN_OPTION})
    except ConfigError as refusal:
        listed = re.search(r"; valid: (.+)$", str(refusal))
        return tuple(listed.group(1).split(", ")) if listed else ()
    return ()


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    return field.default_factory()  # type: ignore[misc]

"""Turn user dictionaries into typed dataclasses, with one-line errors.

OmegaConf's structured configs do the type checking and reject unknown keys; this module rewrites their
multi-line exceptions into a ``ConfigError`` naming the key, the bad value and what is valid. Every number
in the result, nested dicts and lists included, must be finite (no inf, nan) and every int fit in 64 bits
(``check_numbers``): no option has a use for either, and they would only fail later, or silently.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from deepspike.core.errors import ConfigError, UnusedOptionError

T = TypeVar("T")
INT64_MAX = 2**63 - 1
FLOAT32_MAX = 3.4028234663852886e38  # float(torch.finfo(torch.float32).max): the largest finite float32
FLOAT32_TINY = 1.1754943508222875e-38  # float(torch.finfo(torch.float32).tiny): the smallest normal float32


def to_dataclass(schema: type[T], values: Any, where: str) -> T:
    """Merge ``values`` (dict or DictConfig) over the defaults of dataclass ``schema``; return an instance.

    ``where`` names the section for messages, e.g. ``"train"`` or ``"method stbp"``.
    """
    plain = OmegaConf.to_container(values, resolve=False) if isinstance(values, DictConfig) else values
    _check_containers(schema, plain, [], where)
    base = OmegaConf.structured(schema)
    try:
        merged = OmegaConf.merge(base, values if values is not None else {})
        obj = OmegaConf.to_object(merged)
    except ConfigError:
        raise
    except ConfigKeyError as e:
        path = _key_path(e)
        owner = _schema_at(schema, path[:-1])
        valid = ", ".join(f.name for f in dataclasses.fields(owner)) if owner else "?"
        raise ConfigError(f"unknown key {shown_key(_dotted(where, path))}; valid keys: {valid}") from None
    except ValidationError as e:
        path = _key_path(e)
        owner = _schema_at(schema, path[:-1])
        expected = _expected_type(owner, path[-1]) if owner else "another type"
        got, key = shown_value(getattr(e, "value", None)), shown_key(_dotted(where, path))
        raise ConfigError(f"bad value {got} for {key}: expected {expected}") from None
    except OmegaConfBaseException as e:
        raise ConfigError(f"invalid {where} config: {str(e).splitlines()[0]}") from None
    except (TypeError, ValueError, ArithmeticError) as e:
        # __post_init__ range checks raise ConfigError (a ValueError) and are re-raised above; others:
        raise ConfigError(f"invalid {where} config: {str(e).splitlines()[0]}") from None
    check_numbers(obj, where)
    return obj  # type: ignore[return-value]


def _check_containers(schema: type, values: Any, path: list[str], where: str) -> None:
    """``ConfigError`` for a list or scalar where ``schema`` has a mapping (a nested dataclass or a dict), or a
    mapping or scalar where it has a list: OmegaConf's errors for these name no key; for anything but true or
    false where it has a ``bool`` (OmegaConf turns 2, "on" or "1" into true); and for a boolean where it has only
    text (``str``, ``str | None``): YAML 1.1 reads an unquoted ``yes``/``no``/``on``/``off`` as one, and OmegaConf
    stored it as the text "True" or "False" (``data.data_dir: off`` was the folder ``False``). Unknown keys, None
    and ``${...}`` interpolations are left to OmegaConf."""
    if not isinstance(values, dict):
        return
    fields = {f.name: f for f in dataclasses.fields(schema)}
    for name, value in values.items():
        if name not in fields or value is None or (isinstance(value, str) and "${" in value):
            continue
        tp = _resolve(schema, fields[name].type)
        nested = dataclasses.is_dataclass(tp)
        text = tp if isinstance(tp, str) else getattr(tp, "__name__", str(tp))  # "dict[str, Any]", "dict", ...
        kind = "mapping" if nested or text.startswith("dict") else "list" if text.startswith("list") else None
        if kind and not isinstance(value, dict if kind == "mapping" else list):
            key = shown_key(_dotted(where, [*path, name]))
            raise ConfigError(f"bad value {shown_value(value)} for {key}: expected a {kind}")
        if tp in (bool, "bool") and not isinstance(value, bool):  # OmegaConf would read 2, "on" or "1" as true
            key = shown_key(_dotted(where, [*path, name]))
            raise ConfigError(f"bad value {shown_value(value)} for {key}: expected true or false")
        if isinstance(value, bool) and _holds_text(tp):  # OmegaConf would store the text "True" for yes or on
            key = shown_key(_dotted(where, [*path, name]))
            raise ConfigError(f"bad value {str(value).lower()} for {key}: expected a string (YAML reads an unquoted "
                              "yes, no, on, off, true or false as a boolean: quote the text)")
        if nested:
            _check_containers(tp, value, [*path, name], where)


def _holds_text(tp: Any) -> bool:
    """The annotation ``tp`` (a type or its postponed text) is ``str``, optionally ``| None``."""
    text = tp if isinstance(tp, str) else _type_name(tp)
    return {part.strip() for part in text.split("|")} - {"None", "NoneType"} == {"str"}


def is_whole(value: Any, low: int, high: float = math.inf) -> bool:
    """``value`` is a Python int (not a bool, not a float) in ``low .. high``: a count, a size, an order."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def is_finite(value: Any) -> bool:
    """``value`` is a Python int (any size; not a bool) or a finite float: a rate, a scale, a decay before its range
    check. (``math.isfinite`` alone raises OverflowError on an int beyond float range.)"""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def is_float32(value: Any) -> bool:
    """``value`` is ``is_finite`` and at most ``FLOAT32_MAX`` in size: a number a float32 tensor holds (a larger one
    is inf there, and an int beyond float range overflows ``float()``)."""
    return is_finite(value) and abs(value) <= FLOAT32_MAX


def check_switches(**switches: Any) -> None:
    """A one-line ``ConfigError`` naming the first of ``switches`` (an API function's on/off arguments) that is not
    True, False or None: ``ds.export(run, path, check="no")`` ran the check, a text being true."""
    for name, value in switches.items():
        if value is not None and not isinstance(value, bool):
            raise ConfigError(f"{name} must be True or False, got {shown_value(value)}")


def check_numbers(value: Any, where: str) -> None:
    """``ConfigError`` naming the first non-finite float or int beyond 64 bits (``|n| > 2**63 - 1``) in
    ``value``: a dataclass instance, dict, list or tuple, searched through; ``where`` prefixes key names."""
    stack = [(value, where)]
    while stack:
        item, key = stack.pop()
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            stack.extend((getattr(item, f.name), _dotted(key, [f.name])) for f in dataclasses.fields(item))
        elif isinstance(item, dict):
            stack.extend((v, _dotted(key, [str(k)])) for k, v in item.items())
        elif isinstance(item, list | tuple):
            stack.extend((v, f"{key}[{i}]") for i, v in enumerate(item))
        elif isinstance(item, float) and not math.isfinite(item):
            raise ConfigError(f"bad value {item!r} for {shown_key(key)}: expected a finite number")
        elif isinstance(item, int) and not -INT64_MAX - 1 <= item <= INT64_MAX:
            limits = "expected an integer in [-2**63, 2**63 - 1]"
            raise ConfigError(f"bad value {shown_value(item)} for {shown_key(key)}: {limits}")


def shown_key(key: str) -> str:
    """``key`` (a dotted key path, a file name) for a one-line message: as is, or its ``repr`` when it holds a
    newline or another unprintable character."""
    return key if key.isprintable() else repr(key)


def shown_value(value: Any, width: int = 60) -> str:
    """``repr(value)`` for a one-line message, cut to about ``width`` characters (a huge int: its size)."""
    if isinstance(value, int) and value.bit_length() > 4 * width:
        return f"(an integer of {value.bit_length()} bits)"
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def as_dict(values: Any) -> dict:
    """A plain ``dict`` from a dataclass, DictConfig or dict (for saving and passing on)."""
    if dataclasses.is_dataclass(values):
        return dataclasses.asdict(values)
    if isinstance(values, DictConfig):
        return OmegaConf.to_container(values, resolve=True)  # type: ignore[return-value]
    return dict(values)


def _key_path(e: OmegaConfBaseException) -> list[str]:
    full = getattr(e, "full_key", None) or getattr(e, "key", None) or "?"
    return str(full).split(".")


def _schema_at(schema: type, path: list[str]) -> type | None:
    """The dataclass reached by following field names ``path`` from ``schema`` (None if not one)."""
    for name in path:
        fields = {f.name: f for f in dataclasses.fields(schema)}
        if name not in fields:
            return None
        resolved = _resolve(schema, fields[name].type)
        if not dataclasses.is_dataclass(resolved):
            return None
        schema = resolved
    return schema


def _resolve(owner: type, tp: Any) -> Any:
    if isinstance(tp, str):  # postponed annotations: look the name up in the owner's module
        import sys

        return getattr(sys.modules[owner.__module__], tp, tp)
    return tp


def _dotted(where: str, path: list[str]) -> str:
    return ".".join([where, *path]) if where else ".".join(path)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _expected_type(owner: type, name: str) -> str:
    """The type field ``name`` of dataclass ``owner`` holds; for an item ``name[i]`` of a list field, its items'
    type ("another type" when the field is not found)."""
    item = re.fullmatch(r"(\w+)\[\d+\]", name)
    field = {f.name: f for f in dataclasses.fields(owner)}.get(item.group(1) if item else name)
    if field is None:
        return "another type"
    tp = _type_name(field.type)
    listed = re.fullmatch(r"list\[(.+)\]", tp) if item else None
    return listed.group(1) if listed else tp


def check_ranges(options: Any, checks: tuple[tuple[bool, str, str], ...], section: str = "method") -> None:
    """``ConfigError`` for the first ``(ok, key, expected)`` of ``checks`` that is not ok, naming
    ``section.key``, its value on ``options`` and what is expected (e.g. ``"> 0 or null"``)."""
    for ok, key, expected in checks:
        if not ok:
            raise ConfigError(f"bad value {getattr(options, key)!r} for {section}.{key}: expected {expected}")


def check_unused(options: Any, uses: tuple[tuple[tuple[str, ...], bool, str], ...], section: str = "method") -> None:
    """``ConfigError`` for the first key of ``uses`` (``(keys, in_use, needs)``: options that take effect only when
    ``in_use``, which ``needs`` names, e.g. ``"method.loss=tet"``) set on dataclass ``options`` to a value other
    than its default while not ``in_use``: the setting would be ignored without a word. A default spelt out (a
    recipe or a run's config.yaml may spell every option) passes. The error is an ``UnusedOptionError`` naming
    ``section``, the key, its value, its default and ``needs``."""
    fields = {f.name: f for f in dataclasses.fields(options)}
    for keys, in_use, needs in uses:
        for key in () if in_use else keys:
            field = fields[key]
            default = field.default_factory() if field.default is dataclasses.MISSING else field.default
            value = getattr(options, key)
            if value != default:
                raise UnusedOptionError(f"{section}.{key}={shown_value(value)} has no effect unless {needs}: set that, "
                                        f"or leave {section}.{key} at its default {shown_value(default)}",
                                        section, key, value, default, needs)

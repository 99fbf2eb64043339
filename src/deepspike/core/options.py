"""Turn user dictionaries into typed dataclasses, with one-line errors.

OmegaConf's structured configs do the type checking and reject unknown keys; this module rewrites their
multi-line exceptions into a ``ConfigError`` naming the key, the bad value and what is valid.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from deepspike.core.errors import ConfigError

T = TypeVar("T")


def to_dataclass(schema: type[T], values: Any, where: str) -> T:
    """Merge ``values`` (dict or DictConfig) over the defaults of dataclass ``schema``; return an instance.

    ``where`` names the section for messages, e.g. ``"train"`` or ``"method stbp"``.
    """
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
        raise ConfigError(f"unknown key {_dotted(where, path)}; valid keys: {valid}") from None
    except ValidationError as e:
        path = _key_path(e)
        owner = _schema_at(schema, path[:-1])
        field = {f.name: f for f in dataclasses.fields(owner)}.get(path[-1]) if owner else None
        expected = _type_name(field.type) if field else "another type"
        got = getattr(e, "value", None)
        raise ConfigError(f"bad value {got!r} for {_dotted(where, path)}: expected {expected}") from None
    except OmegaConfBaseException as e:
        raise ConfigError(f"invalid {where} config: {str(e).splitlines()[0]}") from None
    except (TypeError, ValueError) as e:
        # __post_init__ range checks raise ConfigError (a ValueError) and are re-raised above; others:
        raise ConfigError(f"invalid {where} config: {str(e).splitlines()[0]}") from None
    return obj  # type: ignore[return-value]


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

"""Environment switches (``DEEPSPIKE_*`` variables that choose between a few named policies)."""

from __future__ import annotations

import os

from deepspike.core.errors import ConfigError


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """The value of environment variable ``name`` (``default`` when unset); a one-line ``ConfigError`` naming the
    valid ``choices`` for any other value."""
    value = os.environ.get(name, default)
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value

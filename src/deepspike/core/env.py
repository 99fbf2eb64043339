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


def integer_text(text: str | None) -> int | None:
    """The integer an environment variable's ``text`` holds (ASCII digits with a sign, spaces around), or None (unset,
    empty, anything else: ``int`` would also read ``1_0`` or Arabic-Indic digits)."""
    digits = None if text is None else text.strip()
    if not (digits and digits.isascii() and digits.lstrip("+-").isdigit()):
        return None
    try:
        return int(digits)
    except ValueError:  # "+-2"
        return None

"""Refusing work whose bytes would exceed this machine's memory, in one line, before anything is allocated."""

from __future__ import annotations

import os
from collections.abc import Callable

from deepspike.core.errors import ConfigError

GiB = 1 << 30


def physical_memory() -> int:
    """This machine's memory in bytes (0 where the platform does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def check_fits_memory(need: int, have: int, refusal: Callable[[str, str], str]) -> None:
    """A one-line :class:`ConfigError` when ``need`` bytes exceed ``have`` (the machine's memory, ``physical_memory``;
    0, not known, refuses nothing): ``refusal(need, have)`` with both in GiB as text with one decimal ("48.0") says
    what needed them and what to change."""
    if have and need > have:
        raise ConfigError(refusal(f"{need / GiB:.1f}", f"{have / GiB:.1f}"))

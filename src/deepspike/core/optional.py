"""Optional packages (the extras: nir, tonic, h5py, ...) imported when first needed."""

from __future__ import annotations

import importlib
import types

from deepspike.core.errors import ConfigError


def require_package(module: str, missing: str) -> types.ModuleType:
    """``import module``, or a one-line :class:`ConfigError` ``missing`` (what needs it and how to install it)."""
    try:
        return importlib.import_module(module)
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ConfigError(missing) from e

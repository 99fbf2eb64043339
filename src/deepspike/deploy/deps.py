"""Lazy imports of the optional NIR packages, with a one-line install hint when they are missing."""

from __future__ import annotations

from deepspike.core.errors import ConfigError


def require_nir():
    """``import nir`` or raise :class:`ConfigError` ``install deepspike[nir]``."""
    try:
        import nir
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ConfigError("NIR export/import needs the nir package: pip install 'deepspike[nir]'") from e
    return nir

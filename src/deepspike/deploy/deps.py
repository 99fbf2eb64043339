"""Lazy imports of the optional NIR packages, with a one-line install hint when they are missing."""

from __future__ import annotations

from deepspike.core.optional import require_package


def require_nir():
    """``import nir`` or raise :class:`ConfigError` ``install deepspike[nir]``."""
    return require_package("nir", "NIR export/import needs the nir package: pip install 'deepspike[nir]'")

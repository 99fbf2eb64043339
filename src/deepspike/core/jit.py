"""numba's ``njit`` and ``prange`` where numba is installed (the optional "fast" extra), plain Python otherwise.

A kernel module writes its loops once, over numpy arrays, and decorates them with ``njit``: with numba they are
compiled (and cached, with the dependency-stamped cache of ``core.numba_cache``); without it the decorator returns
the function unchanged and ``prange`` is ``range``, so the same loops run as Python (slow, but the same results).
"""

from __future__ import annotations

from deepspike.core.numba_cache import track_imported_sources

try:
    from numba import njit, prange

    HAVE_NUMBA = True
except ImportError:  # numba is the optional "fast" extra
    HAVE_NUMBA = False


def _identity_decorator(*args, **kwargs):
    """``njit``'s stand-in: ``@njit`` and ``@njit(...)`` both leave the function as it is."""
    if args and callable(args[0]):
        return args[0]
    return lambda f: f


if not HAVE_NUMBA:
    njit = _identity_decorator
    prange = range
else:  # numba caches go stale with any imported deepspike module (core.numba_cache)
    track_imported_sources()

__all__ = ["HAVE_NUMBA", "njit", "prange"]

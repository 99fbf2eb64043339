"""deepspike's numba kernel modules, found by their ``@njit`` decorators, and the kernels each defines: shared by the
tests of the kernels' options (``neurons/test_fused_constants.py``) and cache (``core/test_numba_cache.py``)."""

import re

from deepspike.core.numba_cache import PACKAGE_ROOT


def kernel_modules() -> list[str]:
    """The dotted names of the package's modules with an ``@njit(...)`` / ``@nb.njit(...)`` decorated function."""
    files = [p for p in PACKAGE_ROOT.rglob("*.py") if re.search(r"^@(nb\.)?njit\(", p.read_text(), re.M)]
    return sorted(".".join(p.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts) for p in files)


def own_kernels(module) -> list:
    """The numba CPU dispatchers ``module`` defines (not those it imports)."""
    from numba.core.registry import CPUDispatcher

    return [obj for obj in vars(module).values()
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == module.__name__]

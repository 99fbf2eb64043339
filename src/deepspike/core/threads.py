"""Running numba's parallel kernels with torch's thread count, without changing torch's.

numba's OpenMP threading layer shares the OpenMP runtime with torch: starting numba's pool sets the
process-wide thread count to the pool size (``NUMBA_NUM_THREADS``, by default the number of cores), which
would silently change ``torch.get_num_threads()`` (e.g. from the ``OMP_NUM_THREADS=1`` a user asked for).
"""

from __future__ import annotations

import torch

from deepspike.core.compile_support import eager_under_compile


def numba_threads() -> int:
    """Threads a numba kernel run by ``run_numba_kernel`` uses: torch's count, capped by numba's pool size
    (1 without numba)."""
    try:
        import numba
    except ImportError:
        return 1
    return max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))


@eager_under_compile  # Dynamo cannot trace a numba dispatcher (core.compile_support)
def run_numba_kernel(kernel, *args):
    """``kernel(*args)`` on ``numba_threads()`` threads; torch's thread count is left as it was. Returns the
    kernel's result."""
    try:
        import numba
    except ImportError:  # the kernels are plain Python functions then
        return kernel(*args)
    torch_threads = torch.get_num_threads()
    n = numba_threads()
    if numba.get_num_threads() != n:
        numba.set_num_threads(n)
    try:
        return kernel(*args)
    finally:
        if torch.get_num_threads() != torch_threads:
            torch.set_num_threads(torch_threads)

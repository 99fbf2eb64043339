"""numba kernel of ``layers.spike_storage``: spikes to exact ``uint8`` codes and the round-trip check in one pass.

Imported lazily (numba costs over a second to load) by ``layers.spike_storage``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from deepspike.core.numba_cache import track_imported_sources
from deepspike.neurons.fused_constants import KERNEL_OPTIONS

track_imported_sources()  # numba caches go stale with any imported deepspike module (core.numba_cache)

BLOCK = 1 << 16  # elements per parallel block


@nb.njit(parallel=True, **KERNEL_OPTIONS)
def pack_codes(x, quantum, codes):
    """``codes[i] = uint8(x[i] q)`` for the flat float32 ``x`` and ``uint8`` ``codes`` of one length; returns the
    largest code, or -1 unless every code gives ``x`` back exactly (``float32(codes[i]) / q == x[i]``, with
    ``0 <= x[i] q < 256``): the check that ``torch``'s three passes (cast, cast back, compare) make, in one."""
    n = x.shape[0]
    n_blocks = (n + BLOCK - 1) // BLOCK
    exact = np.ones(n_blocks, dtype=np.bool_)
    largest = np.zeros(n_blocks, dtype=np.int64)
    for b in nb.prange(n_blocks):
        top = 0
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            v = x[i] * quantum
            if v >= 0 and v < 256:
                c = np.uint8(v)
                codes[i] = c
                top = max(top, int(c))
                if np.float32(c) / quantum != x[i]:
                    exact[b] = False
            else:
                exact[b] = False
        largest[b] = top
    return largest.max() if exact.all() else -1

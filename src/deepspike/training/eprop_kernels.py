"""numba kernel of ``training.eprop``: a step's adaptation-eligibility correction and update in one pass.

Per layer onto adaptive neurons, at the backward of step t (``e = epsa_{t-1}``, neuron-major ``[M, B, N]``)::

    c[m, n]    -= beta sum_b g[b, m] e[m, b, n]                         the correction of the weight gradient
    e[m, b, n]  = (rho - beta psi[b, m]) e[m, b, n] + psi[b, m] pre[b, n]   epsa_t

one read and one write of ``e`` where torch takes three passes (a batched product and two in-place updates).
Imported lazily (numba costs over a second to load) by ``training.eprop``; parallel over the neurons ``m``, whose
rows of ``c`` and ``e`` no other thread touches.
"""

from __future__ import annotations

import numba as nb

from deepspike.core.numba_cache import track_imported_sources
from deepspike.neurons.fused_constants import KERNEL_OPTIONS

track_imported_sources()  # numba caches go stale with any imported deepspike module (core.numba_cache)


@nb.njit(parallel=True, **KERNEL_OPTIONS)
def correct_and_advance(e, g, psi, pre, rho, beta, c):
    """The module docstring's step on ``e [M, B, N]``, ``g``, ``psi [B, M]``, ``pre [B, N]``, ``c [M, N]``, all of
    one dtype (float32 or float64), in place."""
    m_count, b_count, n_count = e.shape
    for m in nb.prange(m_count):
        for b in range(b_count):
            weight = -beta * g[b, m]
            keep = rho - beta * psi[b, m]
            slope = psi[b, m]
            for n in range(n_count):
                old = e[m, b, n]
                c[m, n] += weight * old
                e[m, b, n] = keep * old + slope * pre[b, n]

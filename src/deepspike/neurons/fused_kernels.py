"""numba kernels of the fused IF/LIF update: the whole time loop in one call, parallel over neurons.

Both kernels work on contiguous ``[T, N]`` float32 arrays (N = every neuron of every sample) and
compute exactly the reference update of ``neurons.dynamics`` in the same float32 operations, so the
spikes agree bit for bit::

    h_t = k v_{t-1} + x_t,   s_t = 1[h_t - th >= 0],   v_t = h_t (1 - s_t) | h_t - th s_t | h_t

``lif_backward`` is BPTT through those equations, walking t = T..1 with the carried ``g_v = dL/dv_t``::

    g_s   = dL/ds_t + [not detach_reset] g_v dv_t/dr_t      (dv/dr = -h_t | -th | 0)
    g_h   = sg(h_t - th) g_s + g_v dv_t/dh_t + dL/dh_t      (dv/dh = 1 - s_t | 1 | 1)
    dL/dx_t = g_h,    g_v <- kb g_h                          (kb = k, or 1 when leak_grad is False)

with ``sg`` the surrogate derivative chosen by ``SURROGATE_CODES``. The neurons are split into blocks of
``BLOCK`` contiguous columns; each block runs its time loop on one thread (numba ``prange``). Per time
step a block calls a serial row function (``_row_*``) on contiguous 1-D slices with every mode switch
hoisted out of its loop: LLVM vectorises those loops, while loops written inline in a ``prange`` body
stay scalar (measured: about 2x slower).
"""

from __future__ import annotations

import numba as nb
import numpy as np

SURROGATE_CODES = {"rectangular": 0, "sigmoid": 1, "fast_sigmoid": 2, "arctan": 3}
RESET_CODES = {"zero": 0, "subtract": 1, "none": 2}
BLOCK = 1024  # columns per parallel work item: 4 KiB of float32 per time step

_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)


def surrogate_constants(name: str, params: dict[str, float]) -> tuple[int, np.float32, np.float32]:
    """``(code, p1, p2)`` for ``_row_surrogate`` from a surrogate's name and parameters.

    rectangular: ``p1 = 1/a`` (float32 of ``1/float32(a)``, as torch divides), ``p2 = a/2``; sigmoid:
    ``p1 = alpha``; fast_sigmoid: ``p1 = k``; arctan: ``p1 = alpha/2``, ``p2 = pi/2 alpha``.
    """
    if name == "rectangular":
        a = params["a"]
        return 0, _ONE / np.float32(a), np.float32(a / 2)
    if name == "sigmoid":
        return 1, np.float32(params["alpha"]), _ZERO
    if name == "fast_sigmoid":
        return 2, np.float32(params["k"]), _ZERO
    alpha = params["alpha"]
    return 3, np.float32(alpha / 2), np.float32(np.pi / 2 * alpha)


@nb.njit(cache=True)
def _row_forward(x, v, s, h, k, th, reset):
    """One time step of one block: 1-D contiguous rows ``x, v (in/out), s, h`` of equal length."""
    if reset == 0:
        for n in range(x.shape[0]):
            ht = k * v[n] + x[n]
            sp = _ONE if ht - th >= _ZERO else _ZERO
            s[n] = sp
            h[n] = ht
            v[n] = ht * (_ONE - sp)
    elif reset == 1:
        for n in range(x.shape[0]):
            ht = k * v[n] + x[n]
            sp = _ONE if ht - th >= _ZERO else _ZERO
            s[n] = sp
            h[n] = ht
            v[n] = ht - th * sp
    else:
        for n in range(x.shape[0]):
            ht = k * v[n] + x[n]
            s[n] = _ONE if ht - th >= _ZERO else _ZERO
            h[n] = ht
            v[n] = ht


@nb.njit(parallel=True, cache=True)
def lif_forward(x, v, s, h, k, th, reset, store_h):
    """Forward over T in one call.

    x: input currents ``[T, N]``, or ``[1, N]`` for the same currents at every step (a time-invariant
    input, e.g. direct encoding: row 0 is read at every t); v: ``[N]`` initial membrane in, final post-reset
    membrane ``v_T`` out
    (in place); s: spikes ``[T, N]`` out; h: pre-reset membrane ``[T, N]`` out when ``store_h`` (else
    unused: each block writes ``h_t`` to a one-row scratch); k, th: float32 decay and threshold;
    reset: ``RESET_CODES`` value.
    """
    steps, n_cols = s.shape
    const = x.shape[0] == 1
    n_blocks = (n_cols + BLOCK - 1) // BLOCK
    for b in nb.prange(n_blocks):
        lo = b * BLOCK
        hi = min(lo + BLOCK, n_cols)
        scratch = np.empty(0 if store_h else hi - lo, dtype=x.dtype)
        for t in range(steps):
            h_row = h[t, lo:hi] if store_h else scratch
            _row_forward(x[0 if const else t, lo:hi], v[lo:hi], s[t, lo:hi], h_row, k, th, reset)


@nb.njit(cache=True)
def _row_surrogate(h, th, code, p1, p2, out):
    """``out[n] = sg(h[n] - th)`` for 1-D rows (constants from ``surrogate_constants``)."""
    if code == 0:  # rectangular: (1/a) 1[|u| < a/2]
        for n in range(h.shape[0]):
            out[n] = p1 if abs(h[n] - th) < p2 else _ZERO
    elif code == 1:  # sigmoid: alpha sig(alpha u) (1 - sig(alpha u))
        for n in range(h.shape[0]):
            sig = _ONE / (_ONE + np.exp(-(p1 * (h[n] - th))))
            out[n] = p1 * sig * (_ONE - sig)
    elif code == 2:  # fast sigmoid: 1 / (1 + k|u|)^2
        for n in range(h.shape[0]):
            d = _ONE + p1 * abs(h[n] - th)
            out[n] = _ONE / (d * d)
    else:  # arctan: (alpha/2) / (1 + (pi/2 alpha u)^2)
        for n in range(h.shape[0]):
            c = p2 * (h[n] - th)
            out[n] = p1 / (_ONE + c * c)


@nb.njit(cache=True)
def _row_backward(h, gs, gh, gv, gx, sg, kb, th, reset, detach):
    """One reverse time step of one block (module docstring); ``sg`` holds ``sg(h - th)``, ``gv`` in/out."""
    if reset == 0 and not detach:
        for n in range(h.shape[0]):
            ht = h[n]
            g = gv[n]
            keep = _ZERO if ht - th >= _ZERO else _ONE  # 1 - s_t
            g_h = g * keep + sg[n] * (gs[n] - g * ht) + gh[n]
            gx[n] = g_h
            gv[n] = kb * g_h
    elif reset == 0:
        for n in range(h.shape[0]):
            g = gv[n]
            keep = _ZERO if h[n] - th >= _ZERO else _ONE
            g_h = g * keep + sg[n] * gs[n] + gh[n]
            gx[n] = g_h
            gv[n] = kb * g_h
    elif reset == 1 and not detach:
        for n in range(h.shape[0]):
            g = gv[n]
            g_h = g + sg[n] * (gs[n] - g * th) + gh[n]
            gx[n] = g_h
            gv[n] = kb * g_h
    else:  # subtract with detached reset, or no reset: dv/dh = 1, no path through the reset
        for n in range(h.shape[0]):
            g = gv[n]
            g_h = g + sg[n] * gs[n] + gh[n]
            gx[n] = g_h
            gv[n] = kb * g_h


@nb.njit(cache=True)
def _row_add(acc, row):
    """``acc += row`` for 1-D rows."""
    for n in range(acc.shape[0]):
        acc[n] += row[n]


@nb.njit(parallel=True, cache=True)
def lif_backward(h, gs, gh, has_gh, gv, gx, kb, th, reset, detach, code, p1, p2):
    """BPTT over T in one call (module docstring).

    h: saved pre-reset membrane ``[T, N]``; gs: ``dL/ds`` ``[T, N]``; gh: ``dL/dh`` ``[T, N]`` used when
    ``has_gh`` (else a zero row is added); gv: ``[N]`` ``dL/dv_T`` in, ``dL/dv_0`` out (in place);
    gx: ``dL/dx`` ``[T, N]`` out, or ``[1, N]`` (zeros in) for an input that was the same at every step:
    then ``gx[0] += dL/dx_t`` for t = T..1, the sum the stride-0 expansion would have taken, without a
    ``[T, N]`` buffer; kb: float32 backward leak; detach: detach_reset; code, p1, p2: the surrogate
    (``surrogate_constants``).
    """
    steps, n_cols = h.shape
    summed = gx.shape[0] == 1 and steps > 1
    n_blocks = (n_cols + BLOCK - 1) // BLOCK
    for b in nb.prange(n_blocks):
        lo = b * BLOCK
        hi = min(lo + BLOCK, n_cols)
        sg = np.empty(hi - lo, dtype=h.dtype)
        zero = np.zeros(0 if has_gh else hi - lo, dtype=h.dtype)
        step_gx = np.empty(hi - lo if summed else 0, dtype=h.dtype)
        for t in range(steps - 1, -1, -1):
            _row_surrogate(h[t, lo:hi], th, code, p1, p2, sg)
            gh_row = gh[t, lo:hi] if has_gh else zero
            out = step_gx if summed else gx[t, lo:hi]
            _row_backward(h[t, lo:hi], gs[t, lo:hi], gh_row, gv[lo:hi], out, sg, kb, th, reset, detach)
            if summed:
                _row_add(gx[0, lo:hi], step_gx)

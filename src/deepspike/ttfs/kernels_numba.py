"""Numba CPU kernels: event-sweep forward and masked backward of the closed-form TTFS layer.

Images are channels-last: a sample's input times are one flat [H*W*C] row (index ``(iy*W + ix)*C + c``) and
its outputs one [H'*W'*O] row. Forward (per sample, parallel over the batch): the sample's inputs are sorted
ONCE (``sort_numba.argsort_rows``, shared by every output neuron and every receptive field), then swept in
time order (a tie group of simultaneous inputs is checked whole, then added whole: an input arriving at ``t_g``
adds nothing to ``V(t_g)``, but checking before each of them saw the rounding of each addition). Each output keeps
the running sums of its causal set, ``a = sum w`` and ``s = sum w x`` with ``x = exp((t - ref)/tau)`` (exp
kernel, the z domain of zhou2021 relative to a moving reference ``ref``) or ``x = t - ref`` (relpsp). When an
input arrives at time ``t_g``, every output it reaches first checks whether its membrane reached theta by
``t_g`` (``a x_g - s >= theta x_g`` resp. ``a x_g - s >= theta``: the end of its inter-input interval); if so
it fires at ``ref + tau log(s/(a - theta))`` resp. ``ref + (theta + s)/a`` (kept strictly after the time of its
last input, which each output position records: ``_after_last``) and is frozen (``a = -inf``). Then
the inputs are added. After the last input, ``a > theta`` (exp) / ``a > 0`` (relpsp) means a spike after it.
``ref`` moves forward whenever ``x`` would exceed e^30, so the
exp kernel never overflows. The inner loops run over the contiguous output-channel axis.

Backward (parallel over thread-blocks of the batch, private weight- and bias-gradient buffers per thread): per
sample it forms the output coefficients ``c = dL/dt_out / D`` and their separable factors itself, then for every
input and every output it reaches, masks ``t_i < t_out`` and accumulates the dense formulas of
``deepspike.ttfs.gradients`` in a separable form (``e_i = z_i / Z_out``).

Peak temporary memory: the sort order (B*C*H*W ints) and, per thread, 2 * O*H'*W' + H'*W' floats (forward); per
thread a weight-sized gradient buffer and 2 * O*H'*W' floats (backward). Nothing of size
B x O x positions x fan_in exists.
"""

from __future__ import annotations

import math

import numpy as np

from deepspike.core.jit import HAVE_NUMBA, njit, prange  # noqa: F401 (HAVE_NUMBA: re-exported to the backends)

RESCALE_AT = 30.0  # move the exp reference when (t - ref)/tau exceeds this


# fast-math without nnan/ninf: the kernels rely on inf (no spike, frozen outputs) and NaN comparisons
_FLAGS = dict(cache=True, error_model="numpy", fastmath={"reassoc", "contract", "nsz", "arcp"})


@njit(inline="always", **_FLAGS)
def _cast(buf, value):
    """Return ``value`` converted to the dtype of the 1-element array ``buf`` (float32 loops stay float32)."""
    buf[0] = value
    return buf[0]


@njit(inline="always", **_FLAGS)
def _exp_fire_time(a, s, ref, tg, theta, tau):
    """exp kernel: the spike time ``ref + tau log(s/(a - theta))`` of sums ``a, s`` whose membrane reached theta
    by ``tg``, clamped to ``tg`` (and ``tg`` itself where the log is undefined)."""
    ratio = s / (a - theta)
    if ratio > 0.0 and ratio < np.inf:
        return min(ref + tau * math.log(ratio), tg)
    return tg


@njit(inline="always", **_FLAGS)
def _after_last(t, last, tg, pinf):
    """Spike time ``t`` (in the times' dtype) moved to just after ``last``, the time of the slot's last causal
    input, where it is not after it (and that next float is not past ``tg``, the input that revealed the crossing:
    ties); ``pinf`` is +inf in the times' dtype. ``V(last) < theta`` (else the slot fired before that input), so the
    spike is strictly later, but rounding can land the formula's value on ``last``, where backward's causal mask
    ``t_i < t_out`` then dropped that input."""
    if t <= last:
        up = np.nextafter(last, pinf)
        if up <= tg:
            return up
    return t


@njit(inline="always", **_FLAGS)
def _fire_add(a, s, lt, t_o, sl, i0, w, j0, length, n_o, x, thx, tg, ref, is_exp, theta, tau, pinf, fresh):
    """One input (group member) at time ``tg`` reaching the flat state slots ``i0 .. i0+length`` (whole output
    positions ``i0 // n_o ..``: an input reaches every channel of a position) with weights ``w[j0 .. j0+length]``:
    every slot whose membrane reached theta by ``tg`` (``a x - s >= thx``) fires and is frozen (``a = -inf``, stays
    -inf), its time kept after the time ``lt`` of its position's last input (``_after_last``), then all add the input
    and ``lt = tg``. Returns #fired.
    A tie group must be checked whole before any member is added (``V(tg)`` does not change when an input at ``tg`` is
    added, but its rounded value ``a x - s`` can, and a slot then fired partway through the group, with a slope of
    part of it): a group member (``fresh``) checks only the positions no earlier member reached (``lt != tg``), the
    same decisions, from the same sums, as checking the whole group first.
    """
    aa = a[i0 : i0 + length]  # slices: range-indexed loops over them vectorise
    ss = s[i0 : i0 + length]
    ww = w[j0 : j0 + length]
    ll = lt[i0 // n_o : (i0 + length) // n_o]  # the run's positions
    cnt = _fire(aa, ss, ll, t_o[i0 : i0 + length], sl[i0 : i0 + length], length, n_o, x, thx, tg, ref, is_exp,
                theta, tau, pinf, fresh)
    for k in range(length):  # vectorised add
        aa[k] += ww[k]
        ss[k] += ww[k] * x
    for p in range(ll.shape[0]):
        ll[p] = tg
    return cnt


@njit(inline="always", **_FLAGS)
def _fire(aa, ss, ll, tt, dd, length, n_o, x, thx, tg, ref, is_exp, theta, tau, pinf, fresh):
    """The check of ``_fire_add`` on its slices (``tt, dd``: the slots' times and slopes; ``ll``: the positions' last
    input times; ``fresh``: only positions whose last input is not at ``tg``).
    Returns #fired."""
    cnt = 0
    if fresh:
        for p in range(ll.shape[0]):
            if ll[p] != tg:
                for k in range(p * n_o, p * n_o + n_o):
                    if aa[k] * x - ss[k] >= thx:
                        cnt += 1
    else:
        for k in range(length):  # vectorised count; firing is rare
            if aa[k] * x - ss[k] >= thx:
                cnt += 1
    if cnt > 0:
        for p in range(ll.shape[0]):
            if fresh and ll[p] == tg:
                continue
            if is_exp:
                _fire_exp(aa, ss, tt, dd, p * n_o, n_o, ll[p], x, thx, tg, ref, theta, tau, pinf)
            else:
                _fire_relpsp(aa, ss, tt, dd, p * n_o, n_o, ll[p], x, thx, tg, ref, theta, pinf)
    return cnt


@njit(inline="always", **_FLAGS)
def _fire_exp(aa, ss, tt, dd, k0, n_o, last, x, thx, tg, ref, theta, tau, pinf):
    """exp kernel: the slots ``k0 .. k0+n_o`` (one position, last input at ``last``; or a run of them with
    ``last = -inf``) whose membrane reached theta by ``tg`` fire (``_fire``)."""
    for k in range(k0, k0 + n_o):
        ak = aa[k]
        sk = ss[k]
        if ak * x - sk >= thx:
            tt[k] = _exp_fire_time(ak, sk, ref, tg, theta, tau)
            tt[k] = _after_last(tt[k], last, tg, pinf)
            dd[k] = ak - theta
            aa[k] = -np.inf


@njit(inline="always", **_FLAGS)
def _fire_relpsp(aa, ss, tt, dd, k0, n_o, last, x, thx, tg, ref, theta, pinf):
    """relpsp kernel: as ``_fire_exp``, at ``ref + (theta + s)/a`` with slope ``a``. A branch per slot, as exp's: the
    branch-free loop (a NaN mark, a count and a second pass for the times not after ``last``) did not vectorise over
    one position's slots and cost more."""
    for k in range(k0, k0 + n_o):
        ak = aa[k]
        sk = ss[k]
        if ak * x - sk >= thx:
            tt[k] = min(ref + (theta + sk) / ak, tg)
            tt[k] = _after_last(tt[k], last, tg, pinf)
            dd[k] = ak
            aa[k] = -np.inf


@njit(inline="always", **_FLAGS)
def _fire_by(a, s, lt, t_o, sl, n_o, f, ref, tg, theta, tau, pinf):
    """exp kernel, before the reference moves from ``ref`` to ``tg`` (``s`` is then scaled by
    ``f = exp(-(tg - ref)/tau)``, which can underflow to 0): every slot whose membrane reached theta by ``tg``,
    ``V(tg) = a - s f >= theta``, fires now, at ``ref + tau log(s/(a - theta))`` (clamped to ``tg``), as the
    check at its next input would have found with ``s`` intact. Checked at every slot: the ones no input reached
    since their crossing too. (``a > theta or s <= 0``: with ``s > 0`` and ``a <= theta`` V stays below theta, even
    where ``s f`` underflows.) Times kept after the last input ``lt`` of the slot's position (``_after_last``).
    Returns #fired."""
    cnt = 0
    for i in range(a.shape[0]):
        ai = a[i]
        si = s[i]
        if ai > -np.inf and ai - theta >= si * f and (ai > theta or si <= 0.0):  # a = -inf: fired already
            t_o[i] = _exp_fire_time(ai, si, ref, tg, theta, tau)
            t_o[i] = _after_last(t_o[i], lt[i // n_o], tg, pinf)
            sl[i] = ai - theta
            a[i] = -np.inf
            cnt += 1
    return cnt


@njit(inline="always", **_FLAGS)
def _row(iy, c, ky, kh, kw, sh, ph, n_ho):
    """Output row ``oy`` that input row ``iy`` (channel ``c``) reaches through kernel row ``ky`` and the start of that
    kernel row in ``w_r`` (``oy = -1``: none)."""
    ny = iy + ph - ky
    if ny < 0 or ny % sh != 0 or ny // sh >= n_ho:
        return -1, 0
    return ny // sh, (c * kh + ky) * kw


@njit(inline="always", **_FLAGS)
def _cols(ix, kx, kw, sw, pw, n_wo):
    """The output columns ``ox0 .. ox0+n`` that input column ``ix`` reaches in one kernel row, from reversed kernel
    column ``kr0`` on: stride 1 all at once (``kx`` unused: ox = ix + pw - kw + 1 + kr), else through column ``kx``
    (``n`` 0 or 1)."""
    if sw == 1:
        base = ix + pw - kw + 1
        kr0 = max(0, -base)
        return base + kr0, kr0, min(kw, n_wo - base) - kr0
    nx = ix + pw - kx
    if nx < 0 or nx % sw != 0 or nx // sw >= n_wo:
        return 0, 0, 0
    return nx // sw, kw - 1 - kx, 1


@njit(inline="always", **_FLAGS)
def _input_fire_add(idx, wc, n_c, kh, kw, sh, sw, ph, pw, n_ho, n_wo, n_o, a, s, lt, t_o, sl, w_r, x, thx, tg, ref,
                    is_exp, theta, tau, pinf, fresh):
    """``_fire_add`` (its ``fresh``) at every run of output slots that input ``idx`` (channels-last flat index) of
    ``forward_kernel`` reaches, with those slots' weights. Returns #fired."""
    cnt = 0
    iy = idx // wc
    ix = (idx - iy * wc) // n_c
    c = idx - iy * wc - ix * n_c
    for ky in range(kh):
        oy, row0 = _row(iy, c, ky, kh, kw, sh, ph, n_ho)
        if oy < 0:
            continue
        if sw == 1:  # the columns in one run
            ox0, kr0, n = _cols(ix, 0, kw, 1, pw, n_wo)
            if n > 0:
                cnt += _fire_add(a, s, lt, t_o, sl, (oy * n_wo + ox0) * n_o, w_r, (row0 + kr0) * n_o, n * n_o, n_o,
                                 x, thx, tg, ref, is_exp, theta, tau, pinf, fresh)
            continue
        for kx in range(kw):
            ox0, kr0, n = _cols(ix, kx, kw, sw, pw, n_wo)
            if n > 0:
                cnt += _fire_add(a, s, lt, t_o, sl, (oy * n_wo + ox0) * n_o, w_r, (row0 + kr0) * n_o, n_o, n_o,
                                 x, thx, tg, ref, is_exp, theta, tau, pinf, fresh)
    return cnt


@njit(parallel=True, **_FLAGS)
def forward_kernel(t_in, order_in, n_w, n_c, w_r, bias, use_bias, kh, kw, sh, sw, ph, pw, n_ho, n_wo, is_exp,
                   theta, tau, t_out, slope):
    """Event sweep. t_in [B, H*W*C] channels-last times; order_in [B, H*W*C] each row's ascending argsort;
    w_r [C*kh*kw*O] weights in layout [C, kh, kw reversed, O]; bias [O]; t_out, slope [B, Ho*Wo*O]
    (pre-filled with +inf and 0) receive spike times and slopes D. State slot of output (oy, ox, o) is
    ``(oy*Wo + ox)*O + o``, so with stride 1 the outputs one input reaches in one kernel row form ONE
    contiguous run, matching a contiguous run of ``w_r``."""
    n_b = t_in.shape[0]
    n_o = bias.shape[0]
    wc = n_w * n_c
    n_pos = n_ho * n_wo
    for b in prange(n_b):
        buf = np.empty(1, dtype=t_in.dtype)
        pinf = _cast(buf, np.inf)
        flat = t_in[b]  # [H*W*C]
        order = order_in[b]
        n_fin = 0
        while n_fin < flat.size and flat[order[n_fin]] < np.inf:
            n_fin += 1
        first = flat[order[0]] if n_fin > 0 else np.inf
        if use_bias:
            first = min(first, 0.0)
        if first == np.inf:
            continue
        a = np.zeros(n_pos * n_o, dtype=t_in.dtype)
        s = np.zeros(n_pos * n_o, dtype=t_in.dtype)
        lt = np.full(n_pos, -np.inf, dtype=t_in.dtype)  # time of each output position's last input (float32 and
        # float64: a spike time rounding onto it is kept after it: backward's causal mask keeps its gradient)
        t_o = t_out[b]
        sl = slope[b]
        remaining = n_pos * n_o
        ref = first
        j = 0
        bias_pending = use_bias
        while (j < n_fin or bias_pending) and remaining > 0:
            with_bias = bias_pending and (j >= n_fin or flat[order[j]] >= 0.0)
            if with_bias:
                tg = 0.0
                j_end = j
            else:
                tg = flat[order[j]]
                j_end = j + 1
            while j_end < n_fin and flat[order[j_end]] == tg:  # the tie group [j, j_end) (and the bias at 0)
                j_end += 1
            if is_exp:
                if (tg - ref) / tau > RESCALE_AT:
                    f = _cast(buf, math.exp(-(tg - ref) / tau))
                    remaining -= _fire_by(a, s, lt, t_o, sl, n_o, f, ref, tg, theta, tau, pinf)
                    s *= f
                    ref = tg
                x = _cast(buf, math.exp((tg - ref) / tau))
                thx = _cast(buf, theta * x)
            else:
                x = _cast(buf, tg - ref)
                thx = _cast(buf, theta)
            single = j_end - j + (1 if with_bias else 0) == 1
            fresh = not single  # a group in one pass: each member checks the positions none before reached
            if with_bias:
                for pos in range(n_pos):
                    remaining -= _fire_add(a, s, lt, t_o, sl, pos * n_o, bias, 0, n_o, n_o, x, thx, tg, ref,
                                           is_exp, theta, tau, pinf, fresh)
            for jj in range(j, j_end):
                remaining -= _input_fire_add(order[jj], wc, n_c, kh, kw, sh, sw, ph, pw, n_ho, n_wo, n_o, a, s,
                                             lt, t_o, sl, w_r, x, thx, tg, ref, is_exp, theta, tau, pinf, fresh)
            bias_pending = bias_pending and not with_bias
            j = j_end
        if remaining == 0:
            continue
        for i in range(n_pos * n_o):  # spikes after an output's last input: V(inf) = a > theta / slope a > 0
            ai = a[i]
            if is_exp and ai > theta:
                ratio = s[i] / (ai - theta)
                if ratio > 0.0 and ratio < np.inf:
                    t_o[i] = ref + tau * math.log(ratio)
                    t_o[i] = _after_last(t_o[i], lt[i // n_o], pinf, pinf)
                    sl[i] = ai - theta
            elif (not is_exp) and ai > 0.0:
                t_o[i] = ref + (theta + s[i]) / ai
                t_o[i] = _after_last(t_o[i], lt[i // n_o], pinf, pinf)
                sl[i] = ai


@njit(inline="always", **_FLAGS)
def _masked_vjp(t, to, p, q, i0, w, gw, j0, length, xi, zero):
    """Slots ``i0..i0+length`` with weights/grad rows ``j0..``: returns ``sum_mask p w`` and adds
    ``x_i p - q`` to ``gw`` where ``t < t_out``."""
    too = to[i0 : i0 + length]  # slices: range-indexed loops over them vectorise
    pp = p[i0 : i0 + length]
    qq = q[i0 : i0 + length]
    ww = w[j0 : j0 + length]
    gg = gw[j0 : j0 + length]
    acc = zero
    for k in range(length):
        m = t < too[k]
        acc += pp[k] * ww[k] if m else zero
        gg[k] += (xi * pp[k] - qq[k]) if m else zero
    return acc


@njit(inline="always", **_FLAGS)
def _output_factors(t_o, sl, g, ref, is_exp, tau, p, q, gb, zero):
    """One sample's outputs ``t_o, sl, g`` [Ho*Wo*O] (spike times, slopes D, dL/dt_out) -> the separable
    factors ``p, q`` of ``_masked_vjp`` (c = g / D where the output spiked with finite g, else 0; exp:
    ``p = c exp(-(t_out - ref)/tau), q = tau c``; relpsp: ``p = c, q = c t_out``) and the bias gradient
    added to ``gb`` [O] (the bias spike at t = 0 is causal where ``t_out > 0``: exp ``c tau (exp(-t_out/tau)
    - 1)``, relpsp ``-c t_out``)."""
    n_o = gb.shape[0]
    for i in range(t_o.shape[0]):
        to = t_o[i]
        d = sl[i]
        gi = g[i]
        if to < np.inf and d != 0.0 and -np.inf < gi < np.inf:
            c = gi / d
            if is_exp:
                p[i] = c * math.exp(-(to - ref) / tau)
                q[i] = tau * c
                if to > 0.0:
                    gb[i % n_o] += c * tau * (math.exp(-to / tau) - 1.0)
            else:
                p[i] = c
                q[i] = c * to
                if to > 0.0:
                    gb[i % n_o] -= c * to
        else:
            p[i] = zero
            q[i] = zero


@njit(parallel=True, **_FLAGS)
def backward_kernel(t_in, n_w, n_c, w_r, t_out, slope, grad_out, is_exp, tau, kh, kw, sh, sw, ph, pw, n_ho,
                    n_wo, want_grad_t, grad_t, grad_w_part, grad_b_part):
    """Masked backward. t_in, grad_t [B, H*W*C] channels-last (``grad_t`` written only if ``want_grad_t``);
    w_r [C*kh*kw*O] (layout of ``forward_kernel``); t_out, slope, grad_out [B, Ho*Wo*O]; grad_w_part
    [T, C*kh*kw*O] and grad_b_part [T, O] (zeros) get one partial gradient per thread block.

    Per sample, ``ref`` is its earliest finite input time. For input i and output o with
    ``t_i < t_out[o]``: ``grad_t[i] += y_i * p[o] * w[o]`` and ``grad_w[o] += x_i * p[o] - q[o]``, with
    ``x_i = tau z_i, y_i = z_i`` (exp, ``z_i = exp((t_i-ref)/tau)``) or ``x_i = t_i, y_i = 1`` (relpsp) and
    ``p, q`` from ``_output_factors``: the exact gradients of ``deepspike.ttfs.gradients``.
    """
    n_b, n_in = t_in.shape
    n_h = n_in // (n_w * n_c)
    n_out = t_out.shape[1]
    n_o = n_out // (n_ho * n_wo)
    n_part = grad_w_part.shape[0]
    for part in prange(n_part):
        buf = np.empty(1, dtype=t_in.dtype)
        zero = _cast(buf, 0.0)
        gw = grad_w_part[part]
        p = np.empty(n_out, dtype=t_in.dtype)
        q = np.empty(n_out, dtype=t_in.dtype)
        for b in range(part * n_b // n_part, (part + 1) * n_b // n_part):
            tb = t_in[b]
            ref = tb[0]
            for i in range(1, n_in):
                ref = min(ref, tb[i])
            if not ref < np.inf:
                ref = zero  # no input spike: only the bias can have made outputs fire
            to = t_out[b]
            last = -np.inf  # the sample's last output spike: inputs from then on are causal for no output
            for i in range(n_out):
                if to[i] < np.inf:
                    last = max(last, to[i])
            _output_factors(to, slope[b], grad_out[b], ref, is_exp, tau, p, q, grad_b_part[part], zero)
            for iy in range(n_h):
                for ix in range(n_w):
                    for c in range(n_c):
                        idx = (iy * n_w + ix) * n_c + c
                        t = tb[idx]
                        if not t < last:  # (also skips t = inf) nothing to add; exp((t - ref)/tau) may overflow
                            continue
                        if is_exp:
                            y = _cast(buf, math.exp((t - ref) / tau))
                            xi = _cast(buf, tau * y)
                        else:
                            y = _cast(buf, 1.0)
                            xi = _cast(buf, t)
                        acc = zero
                        for ky in range(kh):
                            oy, row0 = _row(iy, c, ky, kh, kw, sh, ph, n_ho)
                            if oy < 0:
                                continue
                            if sw == 1:
                                ox0, kr0, n = _cols(ix, 0, kw, 1, pw, n_wo)
                                if n > 0:
                                    acc += _masked_vjp(t, to, p, q, (oy * n_wo + ox0) * n_o, w_r, gw,
                                                       (row0 + kr0) * n_o, n * n_o, xi, zero)
                                continue
                            for kx in range(kw):
                                ox0, kr0, n = _cols(ix, kx, kw, sw, pw, n_wo)
                                if n > 0:
                                    acc += _masked_vjp(t, to, p, q, (oy * n_wo + ox0) * n_o, w_r, gw,
                                                       (row0 + kr0) * n_o, n_o, xi, zero)
                        if want_grad_t:
                            grad_t[b, idx] = y * acc

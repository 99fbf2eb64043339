"""Reference simulator: integrates the ACTUAL membrane equations of a feed-forward TTFS network.

It never uses the closed-form causal set. Every neuron is a non-leaky IF neuron that fires once, at the
first time its membrane reaches ``theta``, with state ``(V, I)``:

* ``exp``:    ``dV/dt = I``, ``dI/dt = -I/tau``; an input spike of weight w makes ``I += w/tau``
  (synaptic current ``g(t) = exp(-t/tau)/tau``, zhou2021 eq. 1 with b = 0).
  Between events ``I(t0+h) = I0 e^{-h/tau}``, ``V(t0+h) = V0 + tau I0 (1 - e^{-h/tau})``.
* ``relpsp``: ``dV/dt = I``, ``dI/dt = 0``; an input spike makes ``I += w`` (zhang2021 eq. 8-9).

``method="event"``: event by event (inputs sorted; simultaneous inputs enter together), the crossing
inside each inter-event interval is solved on the true V(t) of that interval (V is monotone there).
``method="stepped"``: dense time grid, explicit Euler ``V += dt I``, ``I *= 1 - dt/tau`` (exp); input
spikes are applied at the first grid time >= their time and a spike is reported at the first grid time
with ``V >= theta``: a second reference, accurate to O(dt).

Layers are given explicitly (numpy/torch weights): ``Dense(weight [M, N], bias)``, ``Conv(weight
[O, C, kh, kw], bias, stride, padding)`` (padding = no input), ``MaxPool(k, stride, padding)`` (earliest
spike) and ``AvgPool(k, stride, padding)`` (zhou2021: a neuron with weights theta/(N-1), N = k*k; padding =
no input, as for conv). A bias is an input spike at t = 0.
Dense and conv layers are turned into explicit connection matrices by plain loops. Float64, slow, simple.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from deepspike.core.errors import ConfigError, unknown_choice
from deepspike.ttfs._validate import check_neuron_params, pool_window


@dataclass(frozen=True)
class Dense:
    """Fully connected layer: weight [M, N], optional bias [M]."""

    weight: object
    bias: object = None


@dataclass(frozen=True)
class Conv:
    """Convolution: weight [O, C, kh, kw], optional bias [O], square stride and padding."""

    weight: object
    bias: object = None
    stride: int = 1
    padding: int = 0


@dataclass(frozen=True)
class MaxPool:
    """Earliest spike of each k x k window (stride defaults to k); padding positions hold no input."""

    kernel_size: int
    stride: int | None = None
    padding: int = 0


@dataclass(frozen=True)
class AvgPool:
    """zhou2021 average pooling: a neuron per window with all weights theta/(N - 1), N = k*k (padding: none)."""

    kernel_size: int
    stride: int | None = None
    padding: int = 0


def _np(x):
    if x is None:
        return None
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _conv_matrix(weight, bias, stride, padding, in_shape):
    """Explicit connection matrix of a conv layer: W [O*Ho*Wo, C*H*W], bias [O*Ho*Wo], out shape."""
    o_n, c_n, kh, kw = weight.shape
    c_in, h, w = in_shape
    if c_in != c_n:
        raise ConfigError(f"simulate: conv expects {c_n} input channels, got {c_in}")
    ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    mat = np.zeros((o_n * ho * wo, c_n * h * w))
    b = np.zeros(o_n * ho * wo) if bias is None else np.repeat(bias, ho * wo)
    for o in range(o_n):
        for oy in range(ho):
            for ox in range(wo):
                row = (o * ho + oy) * wo + ox
                for c in range(c_n):
                    for ky in range(kh):
                        for kx in range(kw):
                            iy, ix = oy * stride + ky - padding, ox * stride + kx - padding
                            if 0 <= iy < h and 0 <= ix < w:  # outside = padding = no input
                                mat[row, (c * h + iy) * w + ix] += weight[o, c, ky, kx]
    return mat, b, (o_n, ho, wo)


def _pool_windows(k, stride, padding, in_shape):
    """List of (output index, input indices inside the map) of k x k windows per channel; out shape."""
    c_n, h, w = in_shape
    ho, wo = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    windows = []
    for c in range(c_n):
        for oy in range(ho):
            for ox in range(wo):
                idx = []
                for ky in range(k):
                    for kx in range(k):
                        iy, ix = oy * stride + ky - padding, ox * stride + kx - padding
                        if 0 <= iy < h and 0 <= ix < w:  # outside = padding = no input
                            idx.append((c * h + iy) * w + ix)
                windows.append(((c * ho + oy) * wo + ox, idx))
    return windows, (c_n, ho, wo)


def neuron_first_spike(times, weights, kernel="exp", theta=1.0, tau=1.0):
    """First threshold crossing of one neuron, event by event. times, weights: [n] (inf = no spike)."""
    fin = np.isfinite(times)
    times, weights = times[fin], weights[fin]
    order = np.argsort(times, kind="stable")
    times, weights = times[order], weights[order]
    v, cur, t0, arrived = 0.0, 0.0, -math.inf, 0.0
    k = 0
    while True:
        t1 = times[k] if k < len(times) else math.inf
        if t0 > -math.inf:
            if t1 == math.inf and kernel == "exp" and arrived <= theta:  # V only tends to the summed weights: the
                return math.inf  # exact criterion, not a rounded gap just under 1 that would give a late crossing
            t_cross = _crossing(v, cur, t0, t1, kernel, theta, tau)
            if t_cross is not None:
                return t_cross
            if t1 == math.inf:
                return math.inf
            v, cur = _advance(v, cur, t1 - t0, kernel, tau)
        elif t1 == math.inf:
            return math.inf
        w_sum = 0.0
        while k < len(times) and times[k] == t1:  # simultaneous inputs enter together
            w_sum += weights[k]
            k += 1
        arrived += w_sum
        cur += w_sum / tau if kernel == "exp" else w_sum
        t0 = t1


def _advance(v, cur, h, kernel, tau):
    if kernel == "exp":
        decay = math.exp(-h / tau)
        return v + tau * cur * (1.0 - decay), cur * decay
    return v + cur * h, cur


def _crossing(v, cur, t0, t1, kernel, theta, tau):
    """Time in [t0, t1] where V first reaches theta, or None (V is monotone within the interval)."""
    if cur <= 0.0:
        return None
    if kernel == "exp":
        gap = (theta - v) / (tau * cur)  # need 1 - e^{-h/tau} = gap < 1
        if gap >= 1.0:
            return None
        t = t0 - tau * math.log1p(-gap)
    else:
        t = t0 + (theta - v) / cur
    return t if t <= t1 else None


def _stepped_layer(t_in, mat, bias, kernel, theta, tau, dt, t_max):
    """Euler time-stepped layer: t_in [B, N] -> [B, M] (first grid time with V >= theta)."""
    bsz = t_in.shape[0]
    n_steps = int(math.ceil(t_max / dt)) + 1
    arrival = np.where(np.isfinite(t_in), np.ceil(np.where(np.isfinite(t_in), t_in, 0) / dt - 1e-9), -1)
    v = np.zeros((bsz, mat.shape[0]))
    cur = np.zeros_like(v)
    t_out = np.full_like(v, math.inf)
    scale = 1.0 / tau if kernel == "exp" else 1.0
    for k in range(n_steps):
        spikes = (arrival == k).astype(np.float64)  # [B, N] inputs arriving at grid time k*dt
        drive = spikes @ mat.T
        if k == 0:
            drive = drive + bias
        cur += scale * drive
        v += dt * cur
        if kernel == "exp":
            cur *= 1.0 - dt / tau
        fire = (v >= theta) & np.isinf(t_out)
        t_out[fire] = (k + 1) * dt
    return t_out


def simulate(t_in, layers, kernel="exp", theta=1.0, tau=1.0, method="event", dt=1e-3, t_max=None,
             return_all=False):
    """Run a feed-forward TTFS network on input spike times with the true membrane equations.

    Args:
        t_in: [B, ...] input spike times (+inf = no spike); [B, C, H, W] before conv/pool layers.
        layers: list of ``Dense``, ``Conv``, ``MaxPool``, ``AvgPool``.
        method: ``event`` (exact, event-driven) or ``stepped`` (Euler, grid ``dt`` up to ``t_max``;
            default ``t_max`` = latest finite input + 20 tau; stepped inputs must be >= 0).
    Returns:
        float64 array of the last layer's spike times (+inf = no spike), or the list of every layer's
        output when ``return_all``.
    """
    check_neuron_params(kernel, theta, tau)
    if method not in ("event", "stepped"):
        raise unknown_choice("simulation method", method, ("event", "stepped"))
    t = _np(t_in)
    if np.isnan(t).any() or (t == -math.inf).any():
        raise ConfigError("simulate: spike times contain NaN or -inf; use +inf for 'no spike'")
    if method == "stepped" and not (math.isfinite(dt) and dt > 0 and (t_max is None or math.isfinite(t_max))):
        raise ConfigError(f"simulate: the stepped method needs a finite dt > 0 and a finite t_max, got {dt}, {t_max}")
    if method == "stepped" and (t[np.isfinite(t)] < 0).any():
        raise ConfigError("simulate: the stepped method needs input times >= 0 (its grid starts at 0); use "
                          "method='event' for earlier spikes")
    if method == "stepped" and t_max is None:
        fin = t[np.isfinite(t)]
        t_max = (float(fin.max()) if fin.size else 0.0) + 20.0 * tau
    outs = []
    for layer in layers:
        t = _simulate_layer(t, layer, kernel, theta, tau, method, dt, t_max)
        outs.append(t)
    return outs if return_all else t


def _layer_matrix(layer, flat: np.ndarray, shape: tuple):
    """``(matrix [n_out, n_in], bias [n_out], has_bias, windows, out_shape)`` of a synaptic or pooling layer
    on inputs of per-sample ``shape`` (``windows``: the pooling windows, None for Dense/Conv). AvgPool's weights
    ``theta/(N-1)`` come scaled by ``(N-1)/theta``, as 1 (see ``_simulate_layer``)."""
    windows = None
    _check_layer(layer, shape)
    if isinstance(layer, (MaxPool, AvgPool)):
        stride = layer.kernel_size if layer.stride is None else layer.stride
        windows, out_shape = _pool_windows(layer.kernel_size, stride, layer.padding, shape)
    if isinstance(layer, MaxPool):
        return None, None, False, windows, out_shape
    if isinstance(layer, Dense):
        mat, bias = _np(layer.weight), _np(layer.bias)
        bias = np.zeros(mat.shape[0]) if bias is None else bias
        return mat, bias, layer.bias is not None, None, (mat.shape[0],)
    if isinstance(layer, Conv):
        mat, bias, out_shape = _conv_matrix(_np(layer.weight), _np(layer.bias), layer.stride, layer.padding, shape)
        return mat, bias, layer.bias is not None, None, out_shape
    if isinstance(layer, AvgPool):
        mat = np.zeros((len(windows), flat.shape[1]))
        for row, idx in windows:
            mat[row, idx] = 1.0
        return mat, np.zeros(len(windows)), False, windows, out_shape
    raise ConfigError(f"simulate: unknown layer {layer!r}; valid: Dense, Conv, MaxPool, AvgPool")


def _check_layer(layer, shape: tuple) -> None:
    """``ConfigError`` unless ``layer`` fits inputs of per-sample ``shape``: ``[C, H, W]`` for Conv and the pools,
    whose kernel size, stride and padding are ints with ``k, s >= 1``, ``p >= 0`` (pools: ``p <= k // 2``; AvgPool:
    ``k >= 2``, its weights are ``theta/(k*k - 1)``) and a window that fits the padded input; a Dense or Conv weight
    of rank 2 or 4 and a bias of one weight per output channel."""
    where = f"simulate: {type(layer).__name__}"
    if isinstance(layer, (Dense, Conv)):
        weight, bias = _np(layer.weight), _np(layer.bias)
        if weight.ndim != (2 if isinstance(layer, Dense) else 4):
            raise ConfigError(f"{where}: weight of shape {weight.shape} has the wrong rank")
        if bias is not None and bias.shape != weight.shape[:1]:
            raise ConfigError(f"{where}: bias of shape {bias.shape} for {weight.shape[0]} output channels")
        if not (np.isfinite(weight).all() and (bias is None or np.isfinite(bias).all())):
            raise ConfigError(f"{where}: weight or bias contains NaN or inf")
    if isinstance(layer, Dense):
        return
    if len(shape) != 3:
        raise ConfigError(f"{where}: needs inputs [B, C, H, W], got per-sample shape {tuple(shape)}")
    if isinstance(layer, Conv):
        size = layer.weight.shape[2:]
        if not (isinstance(layer.stride, int) and isinstance(layer.padding, int)) or layer.stride < 1 \
                or layer.padding < 0 or any(k > n + 2 * layer.padding for k, n in zip(size, shape[1:])):
            raise ConfigError(f"{where}: needs int stride >= 1, padding >= 0 and a kernel within the padded input "
                              f"{tuple(shape[1:])}")
        return
    if not all(isinstance(v, int) for v in (layer.kernel_size, layer.padding, layer.stride or 0)):
        raise ConfigError(f"{where}: kernel_size, stride and padding must be ints")
    pool_window(np.empty((1, *shape)), layer.kernel_size, layer.stride, layer.padding, where)
    if isinstance(layer, AvgPool) and layer.kernel_size < 2:
        raise ConfigError(f"{where}: the window needs at least 2 inputs (weight theta/(N-1))")


def _simulate_layer(t: np.ndarray, layer, kernel, theta, tau, method, dt, t_max) -> np.ndarray:
    """Spike times ``[B, ...]`` of one layer's outputs for input times ``t`` ``[B, ...]``."""
    bsz, shape = t.shape[0], t.shape[1:]
    flat = t.reshape(bsz, -1)  # [B, ...] -> [B, n_in]
    mat, bias, has_bias, windows, out_shape = _layer_matrix(layer, flat, shape)
    # AvgPool: weights theta/(N-1) against theta are weights 1 against N - 1 (V scaled by (N-1)/theta, same times);
    # whole-number sums are exact, so N - 1 inputs reach exactly the threshold (exp: never fire), where N - 1 rounded
    # theta/(N-1) could sum above theta and fire ~40 tau late
    if isinstance(layer, AvgPool):
        theta = layer.kernel_size**2 - 1.0
    if isinstance(layer, MaxPool):
        out = np.stack([flat[:, idx].min(1) for _, idx in windows], 1)  # windows are in output order
        return out.reshape((bsz,) + out_shape)
    if mat.shape[1] != flat.shape[1]:
        raise ConfigError(f"simulate: layer expects {mat.shape[1]} inputs, got {flat.shape[1]}")
    if method == "stepped":
        out = _stepped_layer(flat, mat, bias if has_bias else np.zeros_like(bias), kernel, theta, tau, dt, t_max)
    else:
        out = np.empty((bsz, mat.shape[0]))
        for b in range(bsz):
            times = np.append(flat[b], 0.0) if has_bias else flat[b]  # bias = input spike at t = 0
            for j in range(mat.shape[0]):
                weights = np.append(mat[j], bias[j]) if has_bias else mat[j]
                out[b, j] = neuron_first_spike(times, weights, kernel, theta, tau)
    return out.reshape((bsz,) + out_shape)

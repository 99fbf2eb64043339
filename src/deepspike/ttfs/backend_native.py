"""Native (C, SIMD) backend of the closed-form TTFS layer on CPU float32 tensors; same API as ``backend_numba``.

The kernels (``ttfs_native.c``, compiled on first use by ``deepspike.core.native``) keep an output position's running
sums of up to 32 channels in vector registers while they sweep that position's inputs in time order, where the
numba kernels stream every output's sums through memory once per input; results agree with the numba and torch
backends to float32 rounding (the events are visited in the same order). Work is split over samples into
``torch.get_num_threads()`` ranges, run by the library's OpenMP loop on torch's own OpenMP threads (see
``deepspike.core.native``), or, in a build without OpenMP, on Python threads (ctypes releases the GIL).

``supports(t_in, weight)`` says whether a call can run here: float32 CPU tensors, the library built, and weight
rows that fit the entry code. ``forward`` returns None when a sample's times span more exp re-reference epochs
than an entry can name (``autograd`` then uses the numba backend).
"""

from __future__ import annotations

import ctypes
import functools
import operator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from deepspike.core import native
from deepspike.core.errors import ConfigError
from deepspike.ttfs.backend_numba import _as_image, _channels_last_rows
from deepspike.ttfs.backend_torch import out_size

SOURCE = Path(__file__).with_name("ttfs_native.c")
_MAX_ROWS = 1 << 24  # ROW_BITS of the entry code


class _Geometry(ctypes.Structure):
    """Mirror of ``geom_t``."""

    _fields_ = [(name, ctypes.c_int32) for name in
                ("H", "W", "C", "O", "Op", "kh", "kw", "sh", "sw", "ph", "pw", "Ho", "Wo", "use_bias", "is_exp")]
    _fields_ += [("theta", ctypes.c_double), ("tau", ctypes.c_double)]


_lib = None
_pool: ThreadPoolExecutor | None = None


def library():
    """The loaded kernels (ctypes), or None when they cannot be built (``native.unavailable_reason(SOURCE)``)."""
    global _lib
    if _lib is None:
        lib = native.load(SOURCE)
        if lib is None:
            return None
        P, i32 = ctypes.c_void_p, ctypes.c_int
        for name, n_ptr in (("forward", 5), ("backward", 9)):
            getattr(lib, f"ttfs_{name}").argtypes = [i32, i32] + [P] * n_ptr
            getattr(lib, f"ttfs_{name}_part").argtypes = [i32, i32, i32] + [P] * n_ptr
            getattr(lib, f"ttfs_{name}").restype = getattr(lib, f"ttfs_{name}_part").restype = i32
        lib.ttfs_pack_weights.argtypes = [P] * 4
        lib.ttfs_pack_weights.restype = i32
        lib.ttfs_unpack_grads.argtypes = [P, i32] + [P] * 4
        lib.ttfs_unpack_grads.restype = None
        _lib = lib
    return _lib


def unavailable_reason() -> str:
    return native.unavailable_reason(SOURCE)


def supports(t_in: torch.Tensor, weight: torch.Tensor) -> bool:
    """True when this backend can run the layer: float32 CPU times, kernels built, fan-in below 2^24 rows."""
    if t_in.device.type != "cpu" or t_in.dtype != torch.float32:
        return False
    return weight[0].numel() < _MAX_ROWS and library() is not None


def has_openmp() -> bool:
    """True when the library was built with OpenMP (its own parallel loop on torch's OpenMP threads)."""
    return bool(library().ttfs_openmp())


def _parts(n_samples: int) -> int:
    """Number of contiguous sample ranges (threads) a call is split into: torch's intra-op thread count."""
    return max(1, min(torch.get_num_threads(), n_samples))


def _run(name: str, n_samples: int, *args) -> int:
    """Run kernel ``ttfs_<name>`` over ``n_samples`` samples in ``_parts`` ranges: in one call when the library
    has OpenMP, else one ``ttfs_<name>_part`` call per range on Python threads (ctypes releases the GIL).
    Returns the OR of the ranges' codes."""
    global _pool
    lib, parts = library(), _parts(n_samples)
    if parts == 1 or has_openmp():
        return getattr(lib, f"ttfs_{name}")(parts, n_samples, *args)
    if _pool is None or _pool._max_workers < parts:
        _pool = ThreadPoolExecutor(parts, thread_name_prefix="deepspike-native")
    part = getattr(lib, f"ttfs_{name}_part")
    codes = [c.result() for c in [_pool.submit(part, k, parts, n_samples, *args) for k in range(parts)]]
    return functools.reduce(operator.or_, codes, 0)


def _geometry(t_in, weight, bias, stride, padding, kernel, theta, tau, ho, wo) -> _Geometry:
    _, c, h, w = t_in.shape
    o, _, kh, kw = weight.shape
    return _Geometry(h, w, c, o, -(-o // 8) * 8, kh, kw, stride[0], stride[1], padding[0], padding[1], ho, wo,
                     int(bias is not None), int(kernel == "exp"), float(theta), float(tau))


def pack_weights(weight: torch.Tensor, bias: torch.Tensor | None, geom: _Geometry) -> np.ndarray:
    """[O, C, kh, kw] (+ bias [O]) -> flat float32 weights in the kernels' layout: channel blocks of 32 (the last
    ``Op - 32k`` wide), each block its rows [kh*kw*C + 1, width] (row (ky*kw + kx)*C + c, then the bias).
    Raises ConfigError if a weight or the bias is NaN or +-inf (the layer functions skip their torch scan of
    the parameters on this path)."""
    w = weight.detach().to(torch.float32).contiguous()
    b = None if bias is None else bias.detach().to(torch.float32).contiguous()
    wp = np.empty((geom.kh * geom.kw * geom.C + 1) * geom.Op, dtype=np.float32)
    code = library().ttfs_pack_weights(ctypes.byref(geom), w.data_ptr(), None if b is None else b.data_ptr(),
                                       _ptr(wp))
    if code:
        raise ConfigError("TTFS layer: weight or bias contains NaN or inf")
    return wp


def _ptr(a: np.ndarray | None) -> int | None:
    return None if a is None else a.ctypes.data


def _check(code: int, what: str) -> None:
    if code & 2:
        raise MemoryError(f"TTFS native {what}: out of memory for the kernel's scratch buffers")
    if code & 4:  # the kernels scan the inputs while sorting them; spike_times* skip their own scan here
        raise ConfigError("TTFS layer: spike times contain NaN or -inf; use +inf for 'no spike'")


def forward(t_in, weight, bias, stride, padding, kernel, theta, tau, chunk_elements=None):
    """Spike times and slopes [B, O, H', W'] (channels-last views) and the packed weights (``pack_weights``,
    for ``backward``), or None if a sample's exp span is too long. Raises ConfigError if a time is NaN or -inf
    or a parameter NaN or +-inf."""
    b, c, h, w = t_in.shape
    o, _, kh, kw = weight.shape
    ho, wo = out_size(h, kh, stride[0], padding[0]), out_size(w, kw, stride[1], padding[1])
    geom = _geometry(t_in, weight, bias, stride, padding, kernel, theta, tau, ho, wo)
    rows = _channels_last_rows(t_in)
    wp = pack_weights(weight, bias, geom)
    t_out = np.empty((b, ho * wo * o), dtype=np.float32)  # the kernels write every element
    slope = np.empty((b, ho * wo * o), dtype=np.float32)
    code = _run("forward", b, ctypes.byref(geom), _ptr(rows), _ptr(wp), _ptr(t_out), _ptr(slope))
    _check(code, "forward")
    if code:
        return None
    return _as_image(t_out, b, ho, wo, o), _as_image(slope, b, ho, wo, o), wp


def backward(t_in, weight, bias, stride, padding, kernel, tau, t_out, slope, grad_out, chunk_elements=None,
             need_input_grad=True, packed=None):
    """Exact VJP ``(grad_t [B,C,H,W] channels-last | None, grad_w [O,C,kh,kw], grad_b | None)``; ``packed``:
    the forward's packed weights (else packed here)."""
    b, c, h, w = t_in.shape
    o, _, kh, kw = weight.shape
    ho, wo = t_out.shape[2], t_out.shape[3]
    geom = _geometry(t_in, weight, bias, stride, padding, kernel, 1.0, tau, ho, wo)
    rows = _channels_last_rows(t_in)
    wp = pack_weights(weight, None, geom) if packed is None else packed
    outs = [_channels_last_rows(x.to(torch.float32)) for x in (t_out, slope, grad_out)]
    grad_t = np.empty(rows.shape, dtype=np.float32) if need_input_grad else None  # written by the kernels
    parts = _parts(b)
    gw = np.zeros((parts,) + wp.shape, dtype=np.float32)
    gb = np.zeros((parts, o))
    _check(_run("backward", b, ctypes.byref(geom), _ptr(rows), _ptr(wp), *(_ptr(x) for x in outs), _ptr(grad_t),
                _ptr(gw), _ptr(gb)), "backward")
    grad_w = torch.empty(o, c, kh, kw)
    grad_b = torch.empty(o) if bias is not None else None
    library().ttfs_unpack_grads(ctypes.byref(geom), parts, _ptr(gw), _ptr(gb), grad_w.data_ptr(),
                                None if grad_b is None else grad_b.data_ptr())
    return (_as_image(grad_t, b, h, w, c) if need_input_grad else None), grad_w, grad_b

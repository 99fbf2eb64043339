"""Native (C, SIMD) TTFS backend: builds where a compiler exists, equals the float64 torch reference and the numba
backend (forward times and slopes, all three gradients) on random layers, falls back or errors cleanly."""

import ctypes
import math
import shutil

import numpy as np
import pytest
import torch

from deepspike.core import native
from deepspike.core.errors import ConfigError
from deepspike.ttfs import backend_native, backend_numba, spike_times, spike_times_conv2d
from deepspike.ttfs.autograd import resolve_backend
from deepspike.ttfs.kernels_numba import HAVE_NUMBA

HAVE_NATIVE = backend_native.library() is not None
needs_native = pytest.mark.skipif(not HAVE_NATIVE, reason=f"native kernels unavailable: "
                                  f"{backend_native.unavailable_reason()}")

# (batch, channels, height, width, outputs, kernel size, stride, padding, bias)
GEOMETRIES = [
    (4, 1, 12, 12, 16, 5, 1, 2, True),  # first conv layer: one channel, 16 outputs, many firings per list
    (3, 3, 9, 11, 10, 3, 2, 1, True),  # stride 2, outputs not a multiple of 8
    (3, 5, 7, 7, 40, 3, 1, 0, False),  # two channel blocks (32 + 8), no bias
    (5, 64, 1, 1, 130, 1, 1, 0, True),  # dense layer (1x1 image): five channel blocks
    (2, 12, 5, 6, 9, 3, 1, 1, True),  # input channels in a group of 8 (backward's sums8) and 4 left over
]


def _layer(geom, kernel, seed=0, span=3.0):
    b, c, h, w, o, k, s, p, bias = geom
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(b, c, h, w, generator=g) * span
    t[torch.rand(t.shape, generator=g) < 0.2] = math.inf
    t.view(b, -1)[0, 1] = t.view(b, -1)[0, 0]  # a tie
    t[-1] = math.inf  # a silent sample: only the bias can fire
    wt = torch.randn(o, c, k, k, generator=g) * (8.0 / (c * k * k)) ** 0.5
    bb = torch.rand(o, generator=g) * 2.0 if bias else None
    return t, wt, bb, s, p


def _times(kernel, backend, t, w, b, s, p, dtype):
    leaves = [x.to(dtype).requires_grad_() if x is not None else None for x in (t, w, b)]
    out = spike_times_conv2d(leaves[0], leaves[1], leaves[2], stride=s, padding=p, kernel=kernel, backend=backend)
    return out, leaves


@needs_native
@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_builds_with_simd_and_openmp_here():
    """Where cc exists the library must build with its first flag set (-march=native -fopenmp): a silent
    fallback to portable flags once made the kernels 6x slower."""
    assert backend_native.has_openmp()
    assert resolve_backend("auto", torch.zeros(1, 1, 2, 2)) == "native"
    assert resolve_backend("auto", torch.zeros(1, 1, 2, 2, dtype=torch.float64)) == ("numba" if HAVE_NUMBA else "torch")


@needs_native
@pytest.mark.parametrize("kernel", ["relpsp", "exp"])
@pytest.mark.parametrize("geom", GEOMETRIES)
def test_native_equals_float64_reference_and_numba(kernel, geom):
    t, w, b, s, p = _layer(geom, kernel)
    ref, ref_leaves = _times(kernel, "torch", t, w, b, s, p, torch.float64)
    got, got_leaves = _times(kernel, "native", t, w, b, s, p, torch.float32)
    fin = torch.isfinite(ref)
    assert 0.2 < fin.float().mean() < 1.0  # a real mix of firing and silent outputs
    assert torch.equal(torch.isfinite(got), fin)
    torch.testing.assert_close(got[fin].double(), ref[fin], rtol=1e-4, atol=1e-4)
    if HAVE_NUMBA:  # same events in the same order: equal to float32 rounding
        numba_out, _ = _times(kernel, "numba", t, w, b, s, p, torch.float32)
        torch.testing.assert_close(got, numba_out, rtol=1e-5, atol=2e-5)
        slopes = [impl.forward(t, w, b, (s, s), (p, p), kernel, 1.0, 1.0)[1]
                  for impl in (backend_native, backend_numba)]
        torch.testing.assert_close(slopes[0], slopes[1], rtol=1e-6, atol=1e-6)
    upstream = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1))
    for out in (ref, got):
        (torch.where(torch.isfinite(out), out, torch.zeros_like(out)) * upstream.to(out.dtype)).sum().backward()
    for r, n in zip(ref_leaves, got_leaves):
        if r is not None:
            assert n.grad.dtype == torch.float32 and r.grad.abs().sum() > 0
            torch.testing.assert_close(n.grad.double(), r.grad, rtol=1e-3, atol=1e-3 * float(r.grad.abs().max()))


@needs_native
@pytest.mark.parametrize("kernel", ["relpsp", "exp"])
def test_threads_and_python_thread_fallback_agree(kernel, monkeypatch):
    """1 thread, 3 OpenMP threads and 3 Python threads (the path without OpenMP): identical spike times."""
    t, w, b, s, p = _layer((7, 4, 8, 8, 12, 3, 1, 1, True), kernel, seed=3)
    outs = []
    old = torch.get_num_threads()
    try:
        for threads, openmp in ((1, True), (3, True), (3, False)):
            torch.set_num_threads(threads)
            monkeypatch.setattr(backend_native, "has_openmp", lambda openmp=openmp: openmp)
            outs.append(spike_times_conv2d(t, w, b, stride=s, padding=p, kernel=kernel, backend="native"))
    finally:
        torch.set_num_threads(old)
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


@needs_native
def test_exp_long_span_uses_epochs_and_falls_back_past_their_limit():
    """exp times spanning many RESCALE_AT windows: re-referenced in epochs (equal to the reference); a span
    needing more epochs than an entry code holds makes the native forward decline, and autograd falls back."""
    g = torch.Generator().manual_seed(4)
    t = torch.sort(torch.rand(2, 40, generator=g) * 400.0, dim=1).values  # ~13 epochs of 30 tau
    w = torch.rand(5, 40, generator=g) * 0.2
    ref = spike_times(t.double(), w.double(), kernel="exp", backend="torch")
    got = spike_times(t, w, kernel="exp", backend="native")
    assert torch.isfinite(ref).any()
    torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-5)
    # 300 inputs 31 tau apart (300 epochs > 256), weight 0.01 each: the sum first exceeds theta = 1 with the
    # 101st input (t = 3100), and V(t) = 1.01 - 0.01 exp(-(t - 3100)) - O(e^-31) reaches 1 right after it.
    t_long = torch.arange(300, dtype=torch.float32).repeat(2, 1) * 31.0
    w_long = torch.full((3, 300), 0.01)
    assert backend_native.forward(t_long[:, :, None, None], w_long[:, :, None, None], None, (1, 1), (0, 0), "exp",
                                  1.0, 1.0) is None
    if HAVE_NUMBA:  # the fallback (the torch backend overflows exp(t/tau) on such spans)
        fallback = spike_times(t_long, w_long, kernel="exp", backend="native")
        torch.testing.assert_close(fallback, torch.full((2, 3), 3100.0), rtol=1e-6, atol=1e-3)


@needs_native
def test_native_rejects_what_it_cannot_run():
    with pytest.raises(ConfigError, match="float32 CPU"):
        spike_times(torch.zeros(1, 3, dtype=torch.float64), torch.ones(2, 3, dtype=torch.float64), backend="native")


def test_unbuildable_library_gives_reason_and_backend_error(monkeypatch, tmp_path):
    monkeypatch.setattr(native, "_loaded", {})
    monkeypatch.setattr(native, "_reasons", {})
    monkeypatch.setattr(backend_native, "_lib", None)
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    assert native.load(backend_native.SOURCE) is None
    assert "no C compiler" in backend_native.unavailable_reason()
    assert resolve_backend("auto", torch.zeros(1, 1, 2, 2)) == ("numba" if HAVE_NUMBA else "torch")
    with pytest.raises(ConfigError, match="'native' unavailable: no C compiler"):
        resolve_backend("native", torch.zeros(1, 1, 2, 2))
    monkeypatch.setattr(native, "_loaded", {})
    monkeypatch.setenv("DEEPSPIKE_NATIVE", "0")
    assert native.load(backend_native.SOURCE) is None
    assert native.unavailable_reason(backend_native.SOURCE) == "disabled by DEEPSPIKE_NATIVE=0"


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_compile_errors_are_one_line_and_libraries_are_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPSPIKE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(native, "_loaded", {})
    bad = tmp_path / "bad.c"
    bad.write_text("int f(void) { return }\n")
    assert native.load(bad) is None
    reason = native.unavailable_reason(bad)
    assert "failed on bad.c" in reason and "\n" not in reason
    good = tmp_path / "good.c"
    good.write_text("int answer(void) { return 42; }\n")
    assert native.load(good).answer() == 42
    built = list((tmp_path / "cache" / "native").glob("good-*.so"))
    assert len(built) == 1
    mtime = built[0].stat().st_mtime_ns
    monkeypatch.setattr(native, "_loaded", {})
    assert native.load(good).answer() == 42
    assert built[0].stat().st_mtime_ns == mtime  # reused, not rebuilt
    assert not list((tmp_path / "cache" / "native").glob("*.so.tmp*")) and len(list(built[0].parent.iterdir())) == 1


@needs_native
def test_input_arriving_at_the_spike_is_not_causal():
    """relpsp, theta = 1: t = [0, 1], w = [1, 5] fires at exactly t = 1 as the second input arrives, so that
    input is outside the causal set: dt/dw = [(0 - 1)/1, 0], dt/dt_in = [w0/a, 0] = [1, 0]."""
    t = torch.tensor([[0.0, 1.0]], requires_grad=True)
    w = torch.tensor([[1.0, 5.0]], requires_grad=True)
    out = spike_times(t, w, kernel="relpsp", backend="native")
    assert out.item() == 1.0
    out.sum().backward()
    assert w.grad.tolist() == [[-1.0, 0.0]] and t.grad.tolist() == [[1.0, 0.0]]


@needs_native
@pytest.mark.parametrize("bad", [math.nan, -math.inf])
def test_kernels_reject_nan_and_negative_infinity(bad):
    """The native path skips the torch scan of the inputs: its sort pass must catch NaN and -inf itself."""
    t = torch.rand(3, 2, 6, 6)
    t[2, 1, 4, 5] = bad
    with pytest.raises(ConfigError, match="NaN or -inf"):
        spike_times_conv2d(t, torch.ones(4, 2, 3, 3), backend="native")
    with pytest.raises(ConfigError, match="NaN or -inf"):
        spike_times(t.reshape(3, -1), torch.ones(4, 72))


@needs_native
@pytest.mark.parametrize("where", ["weight", "bias"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_kernels_reject_non_finite_parameters(where, bad):
    """The native path skips the torch scan of the parameters too: packing them must catch NaN and +-inf, in
    every channel block (here the second of two) and in the bias."""
    t = torch.rand(2, 3, 5, 5)
    w, b = torch.rand(40, 3, 3, 3), torch.rand(40)
    (w[37, 2, 1, 0] if where == "weight" else b[37]).fill_(bad)
    with pytest.raises(ConfigError, match="weight or bias contains NaN or inf"):
        spike_times_conv2d(t, w, b, backend="native")
    with pytest.raises(ConfigError, match="contains NaN or inf"):  # the torch scan of the other backends
        spike_times_conv2d(t, w, b, backend="torch")


@needs_native
def test_packed_weights_match_the_block_layout_and_gradients_unpack():
    """pack_weights against the layout written out by hand with torch ops: channel blocks of 32 (the last one
    Op - 32k wide, Op = O rounded up to 8), each its rows (ky*kw + kx)*C + c then the bias, zero padding; and
    the unpacked gradient of two partial sums equals their sum in [O, C, kh, kw]."""
    o, c, kh, kw = 42, 3, 2, 3
    w, b = torch.randn(o, c, kh, kw), torch.randn(o)
    geom = backend_native._geometry(torch.zeros(1, c, 4, 4), w, b, (1, 1), (0, 0), "relpsp", 1.0, 1.0, 3, 2)
    assert geom.Op == 48
    rows = torch.zeros(kh * kw * c + 1, 48)
    rows[:-1, :o] = w.permute(2, 3, 1, 0).reshape(-1, o)
    rows[-1, :o] = b
    expected = torch.cat([rows[:, :32].reshape(-1), rows[:, 32:].reshape(-1)])
    packed = backend_native.pack_weights(w, b, geom)
    assert torch.equal(torch.from_numpy(packed), expected)
    parts = np.stack([backend_native.pack_weights(w, b, geom), backend_native.pack_weights(2 * w, b, geom)])
    gb = np.stack([b.double().numpy(), 3 * b.double().numpy()])
    grad_w, grad_b = torch.empty(o, c, kh, kw), torch.empty(o)
    backend_native.library().ttfs_unpack_grads(ctypes.byref(geom), 2, parts.ctypes.data, gb.ctypes.data,
                                               grad_w.data_ptr(), grad_b.data_ptr())
    torch.testing.assert_close(grad_w, 3 * w)
    torch.testing.assert_close(grad_b, 4 * b)


@needs_native
def test_layers_the_kernels_decline_are_scanned_in_torch(monkeypatch):
    """A layer native cannot take (e.g. fan-in past the entry code) falls back to another backend; the value
    scans the native kernels would have done then run in torch."""
    monkeypatch.setattr(backend_native, "supports", lambda t_in, weight: False)
    t, w = torch.rand(2, 6), torch.rand(3, 6)
    torch.testing.assert_close(spike_times(t, w, backend="native"), spike_times(t, w, backend="torch"))
    with pytest.raises(ConfigError, match="weight contains NaN or inf"):
        spike_times(t, w.index_fill(1, torch.tensor([4]), math.nan), backend="native")
    with pytest.raises(ConfigError, match="NaN or -inf"):
        spike_times(t.index_fill(1, torch.tensor([2]), -math.inf), w, backend="native")

"""``autograd.layer_times``, under every layer function: an empty batch gives empty times and gradients on every
backend; float16/bfloat16 times are computed in float32 and returned in their own dtype; NaN or -inf input
times are refused with one ConfigError on every backend and layer (the scan the backends already do)."""

import math

import numpy as np
import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.ttfs import avg_pool_times, backend_native, max_pool_times, spike_times, spike_times_conv2d
from deepspike.ttfs.kernels_numba import HAVE_NUMBA
from deepspike.ttfs.layers import TTFSAvgPool2d, TTFSConv2d, TTFSLinear, TTFSMaxPool2d
from deepspike.ttfs.simulate import neuron_first_spike

CPU_BACKENDS = [
    "auto",
    "torch",
    pytest.param("numba", marks=pytest.mark.skipif(not HAVE_NUMBA, reason="numba missing")),
    pytest.param("native", marks=pytest.mark.skipif(backend_native.library() is None, reason="no native kernels")),
]


def _leaves(*shapes, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    return [(torch.rand(s, generator=g, dtype=torch.float64) * 2).to(dtype).requires_grad_() for s in shapes]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_an_empty_batch_gives_empty_times_and_zero_gradients(backend):
    t, w, b = _leaves((0, 5), (3, 5), (3,))
    out = spike_times(t, w, b, backend=backend)
    out.sum().backward()
    assert out.shape == (0, 3) and t.grad.shape == (0, 5)
    assert torch.equal(w.grad, torch.zeros(3, 5)) and torch.equal(b.grad, torch.zeros(3))
    t, w, b = _leaves((0, 2, 6, 5), (4, 2, 3, 3), (4,))
    out = spike_times_conv2d(t, w, b, stride=2, padding=1, backend=backend)
    out.sum().backward()
    assert out.shape == (0, 4, 3, 3) and t.grad.shape == (0, 2, 6, 5)
    assert torch.equal(w.grad, torch.zeros(4, 2, 3, 3)) and torch.equal(b.grad, torch.zeros(4))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("kernel", ["exp", "relpsp"])
def test_pooling_an_empty_batch(backend, kernel):
    (t,) = _leaves((0, 3, 4, 6))
    for out in (avg_pool_times(t, 2, kernel=kernel, backend=backend), max_pool_times(t, 2, padding=1)):
        out.sum().backward()
        assert out.shape[:2] == (0, 3) and t.grad.shape == (0, 3, 4, 6)


@pytest.mark.parametrize("weight_shape", [(3, 0), (0, 4)])
def test_an_empty_layer_is_refused_in_one_line(weight_shape):
    t = torch.rand(2, weight_shape[1])
    with pytest.raises(ConfigError, match=r"is empty; a layer needs at least one input and one output"):
        spike_times(t, torch.rand(weight_shape))


def _late_inputs(dtype):
    """Times spread over 20 tau: exp(t/tau) reaches 5e8, past float16's largest number (65504)."""
    g = torch.Generator().manual_seed(3)
    t = (torch.rand(6, 12, generator=g) * 20).to(dtype)
    w = (torch.rand(4, 12, generator=g) * 0.4).to(dtype)
    return t, w, (torch.rand(4, generator=g) * 0.2).to(dtype)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kernel", ["exp", "relpsp"])
def test_half_precision_is_computed_in_float32(backend, dtype, kernel):
    """The result is the float32 result of the same (rounded) numbers, rounded to the input's dtype; the
    gradients come back in each tensor's dtype and equal float32's rounded."""
    leaves = [x.requires_grad_() for x in _late_inputs(dtype)]
    ref_leaves = [x.detach().float().requires_grad_() for x in leaves]
    out = spike_times(*leaves, kernel=kernel, backend=backend)
    ref = spike_times(*ref_leaves, kernel=kernel, backend="torch")
    assert out.dtype == dtype and torch.isfinite(ref).double().mean() > 0.3
    torch.testing.assert_close(out, ref.to(dtype), equal_nan=True)
    upstream = torch.isfinite(ref).to(torch.float32)  # the gradient of the finite times
    out.backward(upstream.to(dtype))
    ref.backward(upstream)
    for leaf, ref_leaf in zip(leaves, ref_leaves):
        assert leaf.grad.dtype == dtype
        torch.testing.assert_close(leaf.grad.float(), ref_leaf.grad.to(dtype).float(), rtol=1e-2, atol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_layers_take_half_precision_times(dtype):
    """float32 parameters, half times (autocast-style): times come back in the input dtype, parameter
    gradients in float32."""
    torch.manual_seed(0)
    dense, conv = TTFSLinear(12, 4), TTFSConv2d(2, 3, 3, padding=1)
    t, _, _ = _late_inputs(dtype)
    out = dense(t)
    ref = dense(t.float())
    assert out.dtype == dtype
    torch.testing.assert_close(out, ref.to(dtype))
    img = (torch.rand(2, 2, 5, 5) * 4).to(dtype)
    out = conv(img)
    out[torch.isfinite(out)].float().sum().backward()
    assert out.dtype == dtype and conv.weight.grad.dtype == torch.float32
    torch.testing.assert_close(out, conv(img.float()).to(dtype))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("bad", [math.nan, -math.inf])
def test_nan_or_negative_infinite_times_are_refused_on_every_backend_and_layer(backend, bad):
    """The TTFS side of the NaN policy: times are checked (in the scan each backend already does) and a NaN
    or -inf time is one ConfigError, never a silent neuron; the rate neurons propagate NaN instead
    (``deepspike.neurons.dynamics``)."""
    t = torch.rand(2, 3, 4, 4)
    t[1, 2, 3, 0] = bad
    calls = [
        lambda: spike_times(t.reshape(2, -1), torch.rand(5, 48), backend=backend),
        lambda: spike_times_conv2d(t, torch.rand(2, 3, 3, 3), backend=backend),
        lambda: avg_pool_times(t, 2, kernel="relpsp", backend=backend),
        lambda: avg_pool_times(t, 2, kernel="exp", backend=backend),
        lambda: max_pool_times(t, 2),
        lambda: TTFSLinear(48, 5, backend=backend)(t.reshape(2, -1)),
        lambda: TTFSConv2d(3, 2, 3, backend=backend)(t),
        lambda: TTFSAvgPool2d(2, backend=backend)(t),
        lambda: TTFSMaxPool2d(2)(t),
    ]
    for call in calls:
        with pytest.raises(ConfigError, match="NaN or -inf"):
            call()
    with pytest.raises(ConfigError, match="NaN or -inf"):
        spike_times(t.reshape(2, -1).half(), torch.rand(5, 48).half(), backend=backend)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_an_input_far_later_than_the_spike_does_not_move_it(backend):
    """Two inputs at 0 already fire the neuron at ln 6 (V = 1.2 (1 - e^-t) = 1); a third input 1,000 tau later is
    not causal. The exp kernels once lost the crossing when they moved their reference to the late input (s e^-1000
    underflowed to 0) and fired at 1,000; the event-driven simulation is the reference."""
    t, w = torch.tensor([[0.0, 0.0, 1000.0]]), torch.tensor([[0.6, 0.6, 0.6]])
    expected = neuron_first_spike(t[0].double().numpy(), w[0].double().numpy())
    assert expected == pytest.approx(math.log(6.0), abs=1e-6)  # 0.6 in float32 is 0.6 + 2e-8
    leaf = t.clone().requires_grad_()
    out = spike_times(leaf, w, backend=backend)
    assert out.item() == pytest.approx(expected, rel=1e-6)
    out.sum().backward()  # dt/dt_i = e_i / (sum_C w e): 1/2 for each early input, 0 for the late one
    torch.testing.assert_close(leaf.grad, torch.tensor([[0.5, 0.5, 0.0]]))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_late_inputs_give_the_float64_torch_times_and_gradients(backend):
    """Random rows whose two late inputs come up to 300 tau after the others (several re-referencings of the exp
    kernels, inputs causal for no output): times and all gradients equal the float64 torch backend's, and no
    gradient is NaN (exp((t_late - ref)/tau) once overflowed and met a zero mask)."""
    g = torch.Generator().manual_seed(7)
    t = torch.rand(64, 6, generator=g) * 3
    late = torch.rand(64, 6, generator=g).argsort(1)[:, :2]
    t.scatter_(1, late, torch.rand(64, 2, generator=g) * 300)
    w, b = torch.randn(4, 6, generator=g) * 0.8 + 0.3, torch.randn(4, generator=g) * 0.2
    leaves = [x.clone().requires_grad_() for x in (t, w, b)]
    refs = [x.double().requires_grad_() for x in (t, w, b)]
    out, ref = spike_times(*leaves, backend=backend), spike_times(*refs, backend="torch")
    fired = torch.isfinite(ref)
    assert torch.equal(torch.isfinite(out), fired) and 0.2 < fired.double().mean() < 1
    torch.testing.assert_close(out[fired].double(), ref[fired], rtol=1e-5, atol=1e-5)
    out[fired].sum().backward()
    ref[fired].sum().backward()
    for leaf, ref_leaf in zip(leaves, refs):
        assert torch.isfinite(leaf.grad).all()
        torch.testing.assert_close(leaf.grad.double(), ref_leaf.grad, rtol=1e-4, atol=1e-4)


def test_a_sum_of_weights_equal_to_theta_over_a_long_span_does_not_fire_early():
    """float32 long-span (log-domain) torch path: after two inputs sum w = theta and V = 1 - O(e^-41) < theta
    rounds to theta; the neuron must not fire at the second input (41) but with the third (82), as in float64
    and the event-driven simulation."""
    t, w = torch.tensor([[0.0, 41.0, 82.0]]), torch.full((1, 3), 0.5)
    expected = neuron_first_spike(t[0].double().numpy(), w[0].double().numpy())
    assert expected == pytest.approx(82.0, abs=1e-6)
    for dtype in (torch.float32, torch.float64):
        assert spike_times(t.to(dtype), w.to(dtype), backend="torch").item() == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(("geometry", "message"), [
    (dict(padding=(0, 2**32)), "padding must be below 65536"),  # once a SIGFPE / a 192 GiB allocation
    (dict(padding=2**16), "padding must be below 65536"),
    (dict(stride=0), "need stride >= 1"),
    (dict(stride=True), "stride must be an int or a pair of ints"),
    (dict(padding=None), "padding must be an int or a pair of ints"),
])
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_a_conv_geometry_out_of_range_is_refused_before_any_kernel_runs(backend, geometry, message):
    t, w = torch.rand(2, 2, 5, 5), torch.rand(3, 2, 3, 3)
    with pytest.raises(ConfigError, match=message):
        spike_times_conv2d(t, w, backend=backend, **geometry)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize(("stride", "padding"), [(2**31, 0), ((1, 2**32), 1), (7, 4), (1, 3)])
def test_strides_past_the_input_and_wide_paddings_equal_the_float64_torch_result(backend, stride, padding):
    """A stride of 2**31 once crashed the native kernels (int32: SIGSEGV, 2**32 a SIGFPE); a stride past the padded
    input gives its one row (the stride is capped there), and a padding of the kernel size or more gives windows of
    padding only, which fire from the bias alone. Every backend against float64 torch."""
    g = torch.Generator().manual_seed(5)
    t, w, b = torch.rand(2, 2, 5, 5, generator=g), torch.rand(3, 2, 3, 3, generator=g), torch.rand(3, generator=g)
    out = spike_times_conv2d(t, w, b, stride=stride, padding=padding, backend=backend)
    ref = spike_times_conv2d(t.double(), w.double(), b.double(), stride=stride, padding=padding, backend="torch")
    assert out.shape == ref.shape and torch.isfinite(ref).any()
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_a_fired_output_is_not_fired_again_when_the_reference_moves(backend):
    """Output 0 fires at ln 6, then a weight of -1e31 drives its frozen sum s to -inf; the check at the reference
    move (input at 61 > 30 tau) must skip it (a = -inf), or it fired again at 61 and, in numba, the count of outputs
    still to fire went wrong and output 1 lost its spike. Output 1's time: the float32 torch backend's."""
    t = torch.tensor([[0.0, 0.0, 29.0, 61.0]])
    w = torch.tensor([[0.6, 0.6, -1e31, 0.0], [0.3, 0.3, 0.3, 0.3]])
    out = spike_times(t, w, backend=backend)
    assert out[0, 0].item() == pytest.approx(math.log(6.0), abs=1e-5)
    assert out[0, 1].item() == pytest.approx(spike_times(t, w, backend="torch")[0, 1].item(), rel=1e-6)
    assert 61.0 < out[0, 1].item() < math.inf


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_a_threshold_that_is_zero_in_the_times_dtype_is_refused(backend):
    """theta = 1e-300 is 0 in float32: the numba and native kernels then found V = 0 >= theta before the first input
    and fired every neuron at it (t = 1 below, whose first weight is negative). float32 times now refuse it in one
    line; float64 times keep it: the crossing of V = 0 by hand, ``e^t = -e^1 + 2 e^2``, t = 1 + log(2e - 1)."""
    t, w = torch.tensor([[1.0, 2.0]]), torch.tensor([[-1.0, 2.0]])
    with pytest.raises(ConfigError, match=r"spike_times: threshold theta = 1e-300 is 0 in torch.float32"):
        spike_times(t, w, theta=1e-300, backend=backend)
    if backend != "native":
        out = spike_times(t.double(), w.double(), theta=1e-300, backend=backend)
        assert out.item() == pytest.approx(1 + math.log(2 * math.e - 1), rel=1e-12)
    assert spike_times(t, w, theta=1e-45, backend=backend).item() == pytest.approx(1 + math.log(2 * math.e - 1))


def test_a_threshold_given_as_a_tensor_or_numpy_number_is_taken_as_its_value(recwarn):
    """A 0-d tensor theta was copied by torch.tensor() in the check of its float32 value (a UserWarning on every
    layer call); it is read as a float first, like a numpy number."""
    t, w = torch.tensor([[1.0, 2.0]]), torch.tensor([[-1.0, 2.0]])
    expected = spike_times(t, w, theta=0.5)
    for theta in (torch.tensor(0.5), np.float32(0.5)):
        assert torch.equal(spike_times(t, w, theta=theta), expected)
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_the_zero_threshold_check_ends_where_float32_rounds_to_zero():
    """The check compares theta in Python against half the smallest subnormal (2^-150 for float32): 2^-150 rounds
    to 0 (ties to even) and is refused, the next double above it rounds to 2^-149 and is taken, as the float32
    tensor comparison decided (torch.tensor(theta, float32) > 0, checked here for each)."""
    t, w = torch.tensor([[1.0, 2.0]]), torch.tensor([[-1.0, 2.0]])
    half = 2.0**-150
    above = np.nextafter(half, 1.0)
    assert not bool(torch.tensor(half, dtype=torch.float32) > 0) and bool(torch.tensor(above, dtype=torch.float32) > 0)
    with pytest.raises(ConfigError, match="is 0 in torch.float32"):
        spike_times(t, w, theta=half, backend="torch")
    assert spike_times(t, w, theta=float(above), backend="torch").item() == pytest.approx(1 + math.log(2 * math.e - 1))
    assert spike_times(t.double(), w.double(), theta=5e-324, backend="torch").item() == pytest.approx(
        1 + math.log(2 * math.e - 1), rel=1e-12)


def test_layer_times_breaks_a_torch_compile_graph_only_at_the_weight_shift():
    """The theta check (a float32 tensor compared and read back) and weight_shift's host reads and tests each broke
    Dynamo's graph capture: 4 breaks more per TTFS layer call than at 5b836f3. The check is a Python comparison
    now and weight_shift runs eagerly behind one clean break (core.compile_support), so no break is in this file."""
    t, w = torch.tensor([[1.0, 2.0]]), torch.tensor([[-1.0, 2.0]])
    torch._dynamo.reset()
    explained = torch._dynamo.explain(lambda x: spike_times(x, w, theta=0.5, backend="torch"))(t)
    frames = [reason.user_stack[-1].filename for reason in explained.break_reasons if reason.user_stack]
    assert not [f for f in frames if f.endswith("ttfs/autograd.py")], frames
    torch._dynamo.reset()

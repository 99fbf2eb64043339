"""The fused numba neuron update against the reference loop over T, golden values and hand gradients."""

import itertools

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.neurons import LIF, NeuronParams, list_surrogates, neuron_multistep
from deepspike.neurons.fused import FUSED_SURROGATES, fused_available, fused_supported, switched_on
from deepspike.neurons.surrogate import BUILT_IN

pytest.importorskip("numba")
from deepspike.neurons.fused_constants import SURROGATE_CODES  # noqa: E402
from deepspike.neurons.fused_kernels import block_width  # noqa: E402

SURROGATE_ARGS = {
    "rectangular": {"a": 0.8},
    "sigmoid": {"alpha": 3.0},
    "fast_sigmoid": {"k": 5.0},
    "arctan": {"alpha": 2.5},
    "triangular": {"a": 0.9},
    "piecewise_quadratic": {"alpha": 1.3},
    "erf": {"alpha": 1.5},
    "straight_through": {},
}


def _outputs_and_grads(x, v0, params, weights, fused):
    """(s, v_T, h) and d/d(x, v0) of L = sum w_s s + sum w_v v_T + sum w_h h, by the chosen path."""
    x = x.detach().clone().requires_grad_()
    v0 = v0.detach().clone().requires_grad_()
    outs = neuron_multistep(x, params, v0=v0, return_membrane=True, fused=fused)
    loss = sum((o * w).sum() for o, w in zip(outs, weights) if w is not None)
    gx, gv = torch.autograd.grad(loss, (x, v0), allow_unused=True)
    return [o.detach() for o in outs], gx, gv


def _assert_same(x, v0, params, weights):
    (s_f, v_f, h_f), gx_f, gv_f = _outputs_and_grads(x, v0, params, weights, fused=True)
    (s_r, v_r, h_r), gx_r, gv_r = _outputs_and_grads(x, v0, params, weights, fused=False)
    assert torch.equal(s_f, s_r)  # same float32 operations: spikes agree exactly
    torch.testing.assert_close(h_f, h_r, rtol=0, atol=0)
    torch.testing.assert_close(v_f, v_r, rtol=0, atol=0)
    torch.testing.assert_close(gx_f, gx_r, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gv_f, gv_r, rtol=1e-5, atol=1e-5)
    assert 0 < s_r.mean() < 1  # both spiking and silent steps were compared


COMBOS = list(
    itertools.product(("zero", "subtract", "none"), (False, True), (False, True), FUSED_SURROGATES, (1.0, 0.7))
)


@pytest.mark.parametrize(("reset", "detach", "leak_grad", "surrogate", "decay"), COMBOS)
def test_fused_equals_reference_every_option(reset, detach, leak_grad, surrogate, decay):
    torch.manual_seed(COMBOS.index((reset, detach, leak_grad, surrogate, decay)))
    params = NeuronParams(
        decay=decay,
        threshold=0.6,
        reset=reset,
        surrogate=surrogate,
        surrogate_args=SURROGATE_ARGS[surrogate],
        detach_reset=detach,
        leak_grad=leak_grad,
    )
    x = torch.randn(6, 3, 5) * 0.7 + 0.2
    v0 = torch.randn(3, 5) * 0.3
    weights = (torch.randn(6, 3, 5), torch.randn(3, 5), torch.randn(6, 3, 5))
    _assert_same(x, v0, params, weights)


@pytest.mark.parametrize(
    "shape",
    [(1, 4, 3), (5, 1), (3, 2, 3, 7, 1), (3, 2 * block_width(3) + 37)],  # T = 1, one neuron, odd 5-D, 3 blocks
)
def test_fused_equals_reference_shapes(shape):
    torch.manual_seed(1)
    params = NeuronParams(decay=0.8, threshold=0.5, reset="subtract", surrogate="arctan")
    x = torch.randn(shape) * 0.8 + 0.3
    weights = (torch.randn(shape), torch.randn(shape[1:]), None)
    _assert_same(x, torch.zeros(shape[1:]), params, weights)


def test_non_contiguous_input_and_partial_gradients():
    torch.manual_seed(2)
    params = NeuronParams(decay=0.6, threshold=0.4)
    base = torch.randn(5, 7, 4) * 0.8
    x = base.transpose(1, 2)  # [T, 4, 7], not contiguous
    assert not x.is_contiguous()
    v0 = torch.zeros(4, 7)
    for weights in [
        (torch.randn(5, 4, 7), None, None),  # only spikes used
        (None, torch.randn(4, 7), None),  # only v_T used (no gradient reaches s)
        (None, None, torch.randn(5, 4, 7)),
    ]:  # only the membrane trace used
        _assert_same(x, v0, params, weights)


def _channels_last_steps(t, b, c, h, w):
    """[T, B, C, H, W] whose steps are channels-last (as a channels-last conv on [T*B] hands them on)."""
    return (torch.randn(t * b, c, h, w) * 0.8 + 0.3).contiguous(memory_format=torch.channels_last).unflatten(0, (t, b))


def test_channels_last_steps_keep_their_layout():
    torch.manual_seed(3)
    params = NeuronParams(decay=0.7, threshold=0.5, reset="zero", surrogate="arctan")
    x = _channels_last_steps(4, 3, 5, 2, 6)
    assert not x.is_contiguous() and x[0].is_contiguous(memory_format=torch.channels_last)
    weights = (torch.randn(x.shape), torch.randn(x.shape[1:]), torch.randn(x.shape))
    _assert_same(x, torch.randn(x.shape[1:]) * 0.3, params, weights)  # v0 contiguous, x channels-last
    s, v, h = neuron_multistep(x, params, return_membrane=True, fused=True)
    assert s.stride() == x.stride() and h.stride() == x.stride()  # no copy into NCHW on the way out
    assert v.stride() == x[0].stride()


def test_inplace_neuron_on_channels_last_steps():
    torch.manual_seed(4)
    x = _channels_last_steps(3, 2, 4, 3, 3)
    ref_x = x.detach().contiguous().requires_grad_()
    lif, ref = LIF(decay=0.6, threshold=0.4, inplace=True), LIF(decay=0.6, threshold=0.4)
    g = torch.randn(x.shape)
    x_in = (x * 1.0).requires_grad_()  # a fresh layer output, as the builders hand the inplace neuron
    lif(x_in).mul(g).sum().backward()
    ref(ref_x).mul(g).sum().backward()
    torch.testing.assert_close(x_in.grad, ref_x.grad, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("view", [False, True])
def test_an_inplace_neuron_leaves_a_leaf_input_requiring_grad_as_it_is(view):
    # nn.ReLU(inplace=True) refuses a leaf that requires grad; the fused kernel wrote the membrane h over it
    torch.manual_seed(7)
    leaf = torch.randn(5, 2, 3, 4).requires_grad_()  # the caller's own tensor (or a parameter)
    before = leaf.detach().clone()
    x = leaf[1:] if view else leaf  # a view of a leaf: dense steps, which the kernel would write over
    lif, ref = LIF(decay=0.6, threshold=0.4, inplace=True), LIF(decay=0.6, threshold=0.4)
    g = torch.randn(x.shape)
    s = lif(x)
    assert torch.equal(leaf.detach(), before)
    (s * g).sum().backward()
    assert torch.equal(leaf.detach(), before)
    ref_leaf = before.clone().requires_grad_()
    ref_x = ref_leaf[1:] if view else ref_leaf
    s_ref, _ = neuron_multistep(ref_x, ref.params, fused=False)
    (s_ref * g).sum().backward()
    assert torch.equal(s, s_ref) and 0 < s.mean() < 1
    torch.testing.assert_close(leaf.grad, ref_leaf.grad, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("with_v0", [False, True])
def test_time_invariant_input_gradient_summed_in_the_kernel(with_v0):
    """A direct-encoded (stride-0) input hands its [B, ...] step to the kernel, which sums dL/dx_t over t:
    the same gradient as the reference on the materialised [T, B, ...] input."""
    from deepspike.coding.rate import direct
    from deepspike.neurons.fused import _repeated_step

    torch.manual_seed(5)
    params = NeuronParams(decay=0.8, threshold=0.7, reset="subtract", surrogate="sigmoid", surrogate_args={"alpha": 3})
    y = (torch.rand(3, 4, 5) * 0.6).requires_grad_()
    y_ref = y.detach().clone().requires_grad_()
    v0 = torch.rand(3, 4, 5) * 0.2 if with_v0 else None
    w = torch.randn(6, 3, 4, 5)
    x = direct(y, 6)
    assert _repeated_step(x) is y
    s, v = neuron_multistep(x, params, v0=v0, fused=True)
    s_ref, v_ref = neuron_multistep(y_ref.unsqueeze(0).repeat(6, 1, 1, 1), params, v0=v0, fused=False)
    assert torch.equal(s, s_ref) and 0 < s.mean() < 1
    ((s * w).sum() + v.sum()).backward()
    ((s_ref * w).sum() + v_ref.sum()).backward()
    torch.testing.assert_close(y.grad, y_ref.grad, rtol=1e-5, atol=1e-6)
    assert _repeated_step(direct(y[:, :2], 6)) is None  # a slice of y is not y: no shortcut, plain expansion


def test_loss_through_mean_of_spikes():
    # a readout's mean over T hands backward an expanded (stride-0) gradient
    torch.manual_seed(3)
    x1 = (torch.randn(7, 6, 10) * 0.6 + 0.4).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    params = NeuronParams(decay=0.25, threshold=0.5)
    for x, fused in ((x1, True), (x2, False)):
        s, _ = neuron_multistep(x, params, fused=fused)
        ((s.mean(0) - 0.5) ** 2).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-5, atol=1e-6)


def test_time_invariant_spike_gradient_read_as_one_row(monkeypatch):
    # s.sum() hands backward a stride-0 dL/ds: the kernel gets one [1, N] row, not a [T, N] copy
    import deepspike.neurons.fused as fused

    rows = []
    real = fused._grad_rows
    monkeypatch.setattr(fused, "_grad_rows", lambda *a: rows.append(real(*a)) or rows[-1])
    torch.manual_seed(5)
    x1 = (torch.randn(9, 3, 2 * block_width(9) + 5) * 0.7 + 0.3).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    lif = LIF(decay=0.9, reset="subtract", surrogate="fast_sigmoid", surrogate_args={"k": 2.0})
    for x, fused_path in ((x1, True), (x2, False)):
        s, _ = neuron_multistep(x, lif.params, fused=fused_path)
        s.sum().backward()
    assert [r.shape[0] for r in rows] == [1]
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-5, atol=1e-6)


def test_inplace_inference_writes_the_spikes_over_the_input():
    torch.manual_seed(6)
    x = torch.randn(8, 3, 2 * block_width(8) + 7) + 0.4
    params = NeuronParams(decay=0.9, threshold=1.0, reset="subtract")
    expected = neuron_multistep(x, params, fused=False)
    with torch.no_grad():
        s, v = neuron_multistep(x, params, inplace=True, fused=True)
    assert s.data_ptr() == x.data_ptr()  # no [T, B, N] buffer of its own
    assert torch.equal(s, expected[0]) and torch.equal(v, expected[1])


def test_golden_if_subtract_with_tie():
    # IF, threshold 1, subtract; dyadic inputs are exact in float32.
    #   h: 0.75 (s=0) | 0.75+0.5=1.25 (s=1, v=0.25) | 0.25+0.25=0.5 (s=0) | 0.5+1.5=2.0 (s=1, v=1.0)
    #      | 1.0+0.0=1.0 -> exactly at threshold: fires (H(0) = 1), v=0.
    x = torch.tensor([0.75, 0.5, 0.25, 1.5, 0.0]).view(5, 1)
    s, v, h = neuron_multistep(x, NeuronParams(decay=1.0, reset="subtract"), return_membrane=True, fused=True)
    assert s.flatten().tolist() == [0, 1, 0, 1, 1]
    assert h.flatten().tolist() == [0.75, 1.25, 0.5, 2.0, 1.0]
    assert v.item() == 0.0


# Hand-worked in test_neurons_dynamics: L = s_1 + s_2, LIF decay 0.5, th 1, rectangular a = 1.
@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"x": [0.8, 0.7]}, [1.1, 1.0]),
        ({"x": [0.8, 0.7], "detach_reset": True}, [1.5, 1.0]),
        ({"x": [0.8, 0.7], "leak_grad": False}, [1.2, 1.0]),
        ({"x": [0.8, 0.7], "reset": "subtract"}, [1.0, 1.0]),
        ({"x": [1.2, 0.9]}, [0.4, 1.0]),
    ],
)
def test_fused_bptt_by_hand(kw, expected):
    x = torch.tensor(kw.pop("x"), requires_grad=True)
    s, _ = neuron_multistep(x.view(2, 1), NeuronParams(decay=0.5, **kw), fused=True)
    s.sum().backward()
    assert x.grad.tolist() == pytest.approx(expected, abs=1e-6)


def _saved_numel(fn):
    """Elements of all tensors autograd saves while ``fn()`` runs (torch's saved-tensor hooks)."""
    count = [0]

    def pack(t):
        count[0] += t.numel()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return count[0]


def test_fused_saves_only_the_membrane_and_nothing_without_grad():
    x = torch.randn(10, 4, 6, requires_grad=True)
    params = NeuronParams(decay=0.5, threshold=0.5)
    # fused: h [T, B, N] only; the reference keeps several [B, N] tensors per step
    assert _saved_numel(lambda: neuron_multistep(x, params, fused=True)) == x.numel()
    assert _saved_numel(lambda: neuron_multistep(x, params, fused=False)) >= 2 * x.numel()
    with torch.no_grad():
        s, _ = neuron_multistep(x, params, fused=True)
    assert s.grad_fn is None
    s_inf, _ = neuron_multistep(x.detach(), params, fused=True)  # input without grad: no graph either
    assert s_inf.grad_fn is None and torch.equal(s, s_inf)
    assert torch.equal(s, neuron_multistep(x.detach(), params, fused=False)[0])


def test_dispatch_rules(monkeypatch):
    params = NeuronParams(decay=0.5)
    x = torch.rand(3, 2, 4, requires_grad=True)
    assert type(LIF()(x).grad_fn).__name__ == "_FusedMultistepBackward"  # modules take the fused path
    assert "Fused" not in type(neuron_multistep(x, params, fused=False)[0].grad_fn).__name__
    assert not fused_supported(x.double(), params)  # float64 and other devices/dtypes: reference loop
    with pytest.raises(ConfigError, match="fused neuron update needs"):
        neuron_multistep(x.double(), params, fused=True)
    monkeypatch.setenv("DEEPSPIKE_FUSED", "0")
    assert not fused_supported(x, params)
    assert "Fused" not in type(neuron_multistep(x, params)[0].grad_fn).__name__
    monkeypatch.setenv("DEEPSPIKE_FUSED", "1")
    assert fused_supported(x, params)


def test_every_surrogate_has_a_kernel():
    assert set(FUSED_SURROGATES) == set(SURROGATE_CODES) == set(BUILT_IN) <= set(list_surrogates())
    assert set(SURROGATE_ARGS) == set(BUILT_IN)  # every built-in surrogate is compared above


def test_kernels_leave_torch_thread_count_alone():
    # numba's OpenMP pool shares the runtime with torch; starting it must not change torch's setting
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        x = torch.rand(4, 3000, requires_grad=True)
        s, _ = neuron_multistep(x, NeuronParams(), fused=True)
        s.sum().backward()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_double_backward_is_refused_not_silently_wrong():
    x = torch.rand(3, 4, requires_grad=True)
    s, _ = neuron_multistep(x, NeuronParams(surrogate="sigmoid"), fused=True)
    with pytest.raises(RuntimeError, match="no second-order gradient .*DEEPSPIKE_FUSED=0"):
        torch.autograd.grad((s * x).sum(), x, create_graph=True)  # dL/ds = x needs a second derivative


def test_relayout_of_a_gradient_stays_on_its_device():
    """The Triton path brings ``dL/ds`` (e.g. the stride-0 gradient of ``s.sum()``) to the forward's layout; the
    copy must be made on the gradient's device, not the CPU (a CUDA gradient copied to the CPU would reach the
    kernel as a host pointer). Checked on the ``meta`` device, which any machine has."""
    from deepspike.neurons.fused import _with_strides

    g = torch.ones((), device="meta").expand(3, 4, 5)  # stride 0 everywhere
    out = _with_strides(g, (20, 5, 1))
    assert out.device.type == "meta" and out.stride() == (20, 5, 1) and out.dtype == g.dtype


@pytest.mark.parametrize(("name", "value"), [("DEEPSPIKE_FUSED", "of"), ("DEEPSPIKE_FUSED", "2"),
                                             ("DEEPSPIKE_FUSED_BACKEND", "tritonn"), ("DEEPSPIKE_FUSED_BACKEND", "")])
def test_a_misspelt_fused_switch_is_a_one_line_error_not_a_silent_default(name, value, monkeypatch):
    """``DEEPSPIKE_FUSED=of`` left the kernels on and ``DEEPSPIKE_FUSED_BACKEND=tritonn`` ran numba, both silently;
    now each is a one-line ConfigError naming the valid values."""
    monkeypatch.setenv(name, value)
    x = torch.rand(3, 2, 4)
    with pytest.raises(ConfigError, match=rf"^{name} must be one of .*, got {value!r}$"):
        LIF()(x)


@pytest.mark.parametrize(("value", "on"), [("0", False), ("off", False), ("no", False), ("false", False),
                                           ("1", True), ("on", True), ("yes", True), ("true", True)])
def test_fused_switch_words(value, on, monkeypatch):
    monkeypatch.setenv("DEEPSPIKE_FUSED", value)
    monkeypatch.setenv("DEEPSPIKE_FUSED_BACKEND", "numba")
    assert switched_on() is on
    assert fused_supported(torch.rand(3, 2, 4), NeuronParams(decay=0.5)) is (on and fused_available())

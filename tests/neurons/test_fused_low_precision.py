"""The fused neuron update on bfloat16 / float16 inputs against the float32 reference loop over T on ``x.float()``."""

import itertools

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.neurons import LIF, NeuronParams, neuron_multistep
from deepspike.neurons.fused_low_precision import low_precision_supported

pytest.importorskip("numba")
import deepspike.neurons.fused_low_precision as low_precision  # noqa: E402
from stepped_run import whole_and_stepped

DTYPES = (torch.bfloat16, torch.float16)
PARAMS = {
    "lif_subtract_fast_sigmoid": NeuronParams(decay=0.9, threshold=1.0, reset="subtract", surrogate="fast_sigmoid",
                                              surrogate_args={"k": 2.0}),
    "lif_zero_arctan_detached": NeuronParams(decay=0.8, threshold=0.7, reset="zero", surrogate="arctan",
                                             detach_reset=True),
    "if_none_sigmoid_no_leak_grad": NeuronParams(decay=1.0, threshold=1.2, reset="none", surrogate="sigmoid",
                                                 leak_grad=False),
    "lif_subtract_triangular": NeuronParams(decay=0.9, threshold=1.0, reset="subtract", surrogate="triangular",
                                            surrogate_args={"a": 0.8}),
    "lif_zero_erf": NeuronParams(decay=0.8, threshold=0.7, reset="zero", surrogate="erf"),
}


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch):
    """Chunks of a few columns, so that every test crosses chunk boundaries (and a last, narrower chunk)."""
    monkeypatch.setattr(low_precision, "CHUNK_ELEMENTS", 7 * 13)


def _input(dtype, channels_last=False, t=7):
    x = torch.randn(t, 3, 4, 5, 6, generator=torch.Generator().manual_seed(1)) * 0.9 + 0.2
    if channels_last:  # [T, B, C, H, W] with channels-last steps
        x = x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    return x.to(dtype)


def _rounded(t, dtype):
    return t.to(dtype).float()


@pytest.mark.parametrize(("dtype", "name", "channels_last"), list(itertools.product(DTYPES, PARAMS, (False, True))))
def test_values_and_gradients_equal_the_float32_loop_rounded(dtype, name, channels_last):
    params = PARAMS[name]
    x = _input(dtype, channels_last)
    v0 = (torch.rand(x.shape[1:], generator=torch.Generator().manual_seed(2)) * 0.5).to(dtype)
    w_s = torch.randn(x.shape, generator=torch.Generator().manual_seed(3)).to(dtype)
    w_v = torch.randn(x.shape[1:], generator=torch.Generator().manual_seed(4)).to(dtype)
    xl, vl = x.clone().requires_grad_(), v0.clone().requires_grad_()
    assert low_precision_supported(xl, params, vl)
    s, v = neuron_multistep(xl, params, v0=vl, fused=True)
    assert s.dtype == v.dtype == dtype and s.stride() == x.stride()
    torch.autograd.backward([s, v], [w_s, w_v])

    xr, vr = x.float().requires_grad_(), v0.float().requires_grad_()
    s_r, v_r = neuron_multistep(xr, params, v0=vr, fused=False)  # the reference loop, float32
    torch.autograd.backward([s_r, v_r], [w_s.float(), w_v.float()])
    assert torch.equal(s.float(), s_r)  # same float32 update: the same spikes
    xf, vf = x.float().requires_grad_(), v0.float().requires_grad_()
    s_f, v_f = neuron_multistep(xf, params, v0=vf, fused=True)  # neurons.fused on float32: the same arithmetic
    torch.autograd.backward([s_f, v_f], [w_s.float(), w_v.float()])
    for got, ref in ((v, v_f), (xl.grad, xf.grad), (vl.grad, vf.grad)):
        assert torch.equal(got, ref.to(dtype))  # bit for bit, rounded once
    # one rounding of float32 values that agree to float32 summation order: at most one unit in the last place
    for got, ref in ((v, v_r), (xl.grad, xr.grad), (vl.grad, vr.grad)):
        ulp = torch.finfo(dtype).eps * ref.abs().clamp_min(torch.finfo(dtype).tiny)
        assert ((got.float() - ref).abs() <= ulp + 1e-6).all()
        assert (got.float() == _rounded(ref, dtype)).float().mean() > 0.99


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_of_a_sum_is_read_as_one_row_and_inplace_consumes_x(dtype, monkeypatch):
    params = PARAMS["lif_subtract_fast_sigmoid"]
    x = _input(dtype, t=9)
    rows = []
    kernel = low_precision._backward_rows
    monkeypatch.setattr(low_precision, "_backward_rows", lambda p, xc, v, gs, gv, gx: (rows.append(gs.shape[0]),
                                                                                       kernel(p, xc, v, gs, gv, gx)))
    xl = x.clone().requires_grad_()
    currents = xl * 1  # a non-leaf input: written over in backward
    s, _ = neuron_multistep(currents, params, inplace=True)
    s.sum().backward()  # dL/ds: a stride-0 tensor
    assert rows and set(rows) == {1}  # every chunk read the one row
    assert torch.equal(currents.detach(), xl.grad)  # the input's memory now holds dL/dx
    xr = x.float().requires_grad_()
    neuron_multistep(xr, params, fused=False)[0].sum().backward()
    torch.testing.assert_close(xl.grad.float(), _rounded(xr.grad, dtype), rtol=torch.finfo(dtype).eps, atol=1e-6)

    leaf = x.clone().requires_grad_()
    for inp in (leaf, leaf.view(x.shape)):  # the user's own tensor, then a view of it: never written over
        leaf.grad = None
        neuron_multistep(inp, params, inplace=True)[0].sum().backward()
        assert torch.equal(leaf.detach(), x) and torch.equal(leaf.grad, xl.grad)

    h = x.clone().requires_grad_() * 1
    s, _ = neuron_multistep(h, params, inplace=True)
    s.sum().backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="only once"):
        s.sum().backward()


@pytest.mark.parametrize("dtype", DTYPES)
def test_inference_inplace_writes_the_spikes_over_the_input(dtype):
    params = PARAMS["lif_zero_arctan_detached"]
    x = _input(dtype)
    expected = neuron_multistep(x.float(), params, fused=False)[0]
    with torch.no_grad():
        buf = x.clone()
        s, v = neuron_multistep(buf, params, inplace=True)
    assert s.data_ptr() == buf.data_ptr() and torch.equal(s.float(), expected)
    before = x.clone()
    s2, _ = neuron_multistep(x, params)  # not inplace: x keeps its values
    assert torch.equal(s2.float(), expected) and torch.equal(x, before)


def test_float32_state_integrates_what_a_bfloat16_state_loses():
    """A current of 1/512 a step under a threshold of 1 (IF): a float32 state fires at step 512, a bfloat16 state
    stalls at 0.5 (0.5 + 2^-9 rounds back to 0.5), so the dtype-preserving loop never fires."""
    params = NeuronParams(decay=1.0, threshold=1.0, reset="zero", surrogate="sigmoid")
    x = torch.full((600, 1, 1), 2.0 ** -9, dtype=torch.bfloat16)
    s, _ = neuron_multistep(x, params)
    assert s.float().sum() == 1 and s[511, 0, 0] == 1
    assert neuron_multistep(x, params, fused=False)[0].float().sum() == 0


def test_any_layout_runs_in_float32_and_what_does_not():
    """Steps that are not dense (copied once) and a stride-0 view of a view (its step taken as ``x[0]``) integrate
    in float32 like dense steps: the slow current of 2^-9 a step fires in every layout."""
    params = NeuronParams(decay=1.0, threshold=1.0, reset="zero", surrogate="sigmoid")
    slow = torch.full((600, 2, 4), 2.0 ** -9, dtype=torch.bfloat16)
    strided = slow.repeat(1, 1, 2)[:, :, ::2]  # not dense steps
    base = slow[0].clone().requires_grad_()
    repeated = base.view(2, 4).unsqueeze(0).expand(600, 2, 4)  # time-invariant, not a view of the step itself
    for x in (slow, strided, repeated):
        assert low_precision_supported(x, params)
        s, _ = neuron_multistep(x, params)
        assert s.float().sum(0).eq(1).all() and s[511].eq(1).all()
    s.sum().backward()  # the step's gradient, summed over the 600 steps
    ref = _summed_grad(slow[0].float(), params)
    assert ref.abs().sum() > 0
    torch.testing.assert_close(base.grad.float(), _rounded(ref, torch.bfloat16), rtol=2 ** -8, atol=1e-6)
    x = _input(torch.bfloat16)
    assert not low_precision_supported(x.float(), params)  # float32 is neurons.fused's
    s, v, h = neuron_multistep(x, params, return_membrane=True)  # the trace: the loop, in bfloat16
    assert h.dtype == torch.bfloat16
    with pytest.raises(ConfigError, match="bfloat16"):
        neuron_multistep(x, params, return_membrane=True, fused=True)


def _summed_grad(step, params):
    """``d sum(s) / d step`` of a float32 step repeated over 600 steps, by the reference loop."""
    step = step.clone().requires_grad_()
    neuron_multistep(step.unsqueeze(0).expand(600, *step.shape), params, fused=False)[0].sum().backward()
    return step.grad


def test_state_dtype_and_default_dtype():
    """``v_T`` promotes with ``v0``'s dtype as the reference loop's does; a float64 default dtype changes nothing
    (the kernels' buffers are float32 whatever the default)."""
    params = PARAMS["lif_subtract_fast_sigmoid"]
    x = _input(torch.bfloat16).requires_grad_()
    v0 = torch.zeros(x.shape[1:])
    assert neuron_multistep(x, params, v0=v0)[1].dtype == neuron_multistep(x, params, v0=v0, fused=False)[1].dtype
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        neuron_multistep(x, params)[0].sum().backward()
    finally:
        torch.set_default_dtype(default)
    assert torch.isfinite(x.grad.float()).all()


def test_lif_module_on_a_bfloat16_linear():
    torch.manual_seed(0)
    fc = torch.nn.Linear(16, 8).to(torch.bfloat16)
    lif = LIF(decay=0.9, threshold=1.0, reset="subtract", surrogate="fast_sigmoid", inplace=True)
    x = torch.randn(20, 4, 16, dtype=torch.bfloat16)
    s = lif(fc(x))
    s.sum().backward()
    y = fc(x).float()  # the same bfloat16 currents, in float32
    assert torch.equal(s.float(), neuron_multistep(y, lif.params, fused=False)[0])
    assert fc.weight.grad.dtype == torch.bfloat16 and torch.isfinite(fc.weight.grad.float()).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_time_invariant_input_runs_its_step_in_float32(dtype):
    """A direct-encoded first layer under bfloat16 autocast hands the neuron a stride-0 view of one step: spikes and
    the step's gradient (summed over T) equal the float32 reference loop on that step, rounded once."""
    from deepspike.coding.rate import direct

    params = PARAMS["lif_subtract_fast_sigmoid"]
    step = (torch.randn(3, 8, generator=torch.Generator().manual_seed(6)) * 0.6 + 0.3).to(dtype)
    w = torch.randn(6, 3, 8, generator=torch.Generator().manual_seed(7))
    base = step.clone().requires_grad_()
    x = direct(base, 6)
    assert low_precision_supported(x, params)
    s, v = neuron_multistep(x, params)
    assert s.dtype == v.dtype == dtype
    (s * w.to(dtype)).sum().backward()
    ref = step.float().requires_grad_()
    s_r, v_r = neuron_multistep(ref.unsqueeze(0).expand(6, 3, 8), params, fused=False)
    (s_r * w.to(dtype).float()).sum().backward()
    assert torch.equal(s.float(), s_r) and 0 < s_r.mean() < 1
    assert torch.equal(v, v_r.to(dtype))
    ulp = torch.finfo(dtype).eps * ref.grad.abs()
    assert ((base.grad.float() - ref.grad).abs() <= ulp + 1e-6).all()
    with torch.no_grad():
        assert torch.equal(neuron_multistep(direct(step, 6), params)[0], s.detach())


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_neuron_streamed_a_step_at_a_time_keeps_the_float32_membrane_of_one_call(dtype):
    """A LIF run one step at a time inside ``temporal_carry`` (streaming, online training) fires as one call on all
    the steps, and gets the same input gradient bit for bit: the kept membrane is the kernels' float32 state. Before,
    the kept ``v_T`` was rounded to the input's dtype at every call: 44 of the 4,000 steps' spikes differed here on
    bfloat16 (of 120 spikes), 8 on float16 (a rounded state loses small currents,
    ``test_float32_state_integrates_what_a_bfloat16_state_loses``)."""
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(100, 4, 10, generator=g) * 0.04 + 0.02).to(dtype)  # 30 to 70 steps to the threshold
    run = whole_and_stepped(LIF(decay=0.99, threshold=1.0, surrogate="sigmoid"), x, g)
    assert 0 < run.whole.float().sum() < run.whole.numel()
    assert run.parts.dtype == dtype and torch.equal(run.parts, run.whole)
    assert torch.equal(run.parts_grad, run.whole_grad)
    assert run.kept.dtype == torch.float32

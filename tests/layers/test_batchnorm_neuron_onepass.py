"""The one-pass batch-norm + neuron kernels (``layers.batchnorm_neuron_onepass``) against independent references:
torch's batch-norm and the neuron's reference step loop under autograd, in float64, and torch's statistics."""

import numpy as np
import pytest
import torch
from torch import nn

import deepspike.layers.batchnorm_neuron as bn_neuron
from deepspike.layers.batchnorm_neuron import NeuronRun, batch_norm_neuron
from deepspike.layers.batchnorm_neuron_onepass import batch_statistics, onepass_supported
from deepspike.layers.spike_storage import attached_codes
from deepspike.neurons import NeuronParams
from deepspike.neurons.dynamics import neuron_multistep
from deepspike.neurons.learnable_dynamics import learnable_multistep_reference

pytest.importorskip("numba")


def _batch_norm(x, bn):
    """torch's training-mode batch-norm of ``x [T, B, C, ...]`` over ``T*B``, running statistics moved."""
    return bn(x.flatten(0, 1)).unflatten(0, x.shape[:2])


def _reference(x, bn, params, decay=None, threshold=None, decay_input=False):
    """The spikes by torch's batch-norm and the reference step loop, differentiable by autograd."""
    y = _batch_norm(x, bn)
    if decay is None:
        return neuron_multistep(y, params, fused=False)[0]
    return learnable_multistep_reference(y, decay, threshold, params, decay_input=decay_input)[0]


def _layer(channels, dtype=torch.float64, affine=True, seed=0):
    torch.manual_seed(seed)
    bn = nn.BatchNorm2d(channels, affine=affine).to(dtype)
    if affine:
        with torch.no_grad():
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.uniform_(-0.5, 0.5)
    return bn


def _grads(fn, x, g, tensors):
    x = x.clone().requires_grad_()
    s = fn(x)
    return (s.detach(), *torch.autograd.grad(s, [x, *tensors], g))


@pytest.mark.parametrize("reset", ["zero", "subtract", "none"])
@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("affine", [True, False])
def test_fixed_neuron_matches_batch_norm_and_the_step_loop_in_float64(reset, detach_reset, affine):
    params = NeuronParams(decay=0.6, threshold=0.8, reset=reset, surrogate="sigmoid", surrogate_args={"alpha": 4.0},
                          detach_reset=detach_reset)  # constants exact in float64 (arctan's pi/2 is a float32)
    x = torch.randn(5, 4, 3, 6, 7, dtype=torch.float64) * 2 + 0.3
    g = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    fused_bn, ref_bn = _layer(3, affine=affine), _layer(3, affine=affine)
    tensors = [fused_bn.weight, fused_bn.bias] if affine else []
    got = _grads(lambda v: batch_norm_neuron(v, fused_bn, NeuronRun(params))[0], x, g, tensors)
    want = _grads(lambda v: _reference(v, ref_bn, params), x, g, [ref_bn.weight, ref_bn.bias] if affine else [])
    assert torch.equal(got[0], want[0]) and 0 < got[0].mean() < 1
    for a, b in zip(got[1:], want[1:], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(fused_bn.running_mean, ref_bn.running_mean, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(fused_bn.running_var, ref_bn.running_var, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("learn_threshold", [False, True])
def test_plif_matches_batch_norm_and_the_step_loop_in_float64(per_channel, learn_threshold):
    """PLIF (``h = k v + (1 - k) x``) with a learnable decay and threshold, per layer or per channel."""
    params = NeuronParams(decay=0.5, threshold=0.7, reset="zero", surrogate="sigmoid", surrogate_args={"alpha": 4.0})
    shape = (3, 1, 1) if per_channel else ()
    torch.manual_seed(2)
    decay = (torch.rand(shape, dtype=torch.float64) * 0.5 + 0.3).requires_grad_()
    threshold = (torch.rand(shape, dtype=torch.float64) * 0.5 + 0.5).requires_grad_(learn_threshold)
    x = torch.randn(4, 5, 3, 5, 6, dtype=torch.float64)
    g = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    fused_bn, ref_bn = _layer(3), _layer(3)
    run = NeuronRun(params, learnable=True, decay_input=True)
    learnt = [decay, threshold] if learn_threshold else [decay]
    got = _grads(lambda v: batch_norm_neuron(v, fused_bn, run, decay, threshold)[0], x, g,
                 [fused_bn.weight, fused_bn.bias, *learnt])
    want = _grads(lambda v: _reference(v, ref_bn, params, decay, threshold, True), x, g,
                  [ref_bn.weight, ref_bn.bias, *learnt])
    assert torch.equal(got[0], want[0])
    for a, b in zip(got[1:], want[1:], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_the_spikes_carry_their_uint8_codes_and_a_nan_carries_none():
    params = NeuronParams(decay=0.5, threshold=0.5)
    x = torch.randn(3, 2, 4, 5, 5, requires_grad=True)
    s, _ = batch_norm_neuron(x, nn.BatchNorm2d(4), NeuronRun(params))
    codes, largest = attached_codes(s)
    assert codes.dtype == torch.uint8 and codes.stride() == s.stride() and largest == 1
    assert torch.equal(codes.float(), s) and s.any()
    bad = x.detach().clone()
    bad[1, 0, 2, 3, 3] = float("nan")
    s_bad, _ = batch_norm_neuron(bad.requires_grad_(), nn.BatchNorm2d(4), NeuronRun(params))
    assert attached_codes(s_bad) is None and s_bad.isnan().any()


def test_which_inputs_take_the_one_pass_path():
    params = NeuronParams(decay=0.5, threshold=0.5)
    x = torch.randn(6, 4, 5, 5)
    assert onepass_supported(x, params, learnable=False)
    assert onepass_supported(x.flatten(1), params, learnable=False)  # BatchNorm1d features
    assert onepass_supported(x.contiguous(memory_format=torch.channels_last), params, False)
    assert not onepass_supported(x.permute(0, 2, 3, 1), params, False)  # neither layout
    assert onepass_supported(x, params, False, (5, 5, False)) and not onepass_supported(x, params, False, (2, 2, True))
    cl = x.contiguous(memory_format=torch.channels_last)  # pooled channels-last steps too (session 20)
    assert onepass_supported(cl, params, False, (5, 5, True)) and onepass_supported(cl.bfloat16(), params, False,
                                                                                    (5, 5, True))
    assert not onepass_supported(x, params, learnable=True, pool=(5, 5, False))  # PLIF is never pooled
    no_leak = NeuronParams(decay=0.5, threshold=0.5, leak_grad=False)
    assert not onepass_supported(x, no_leak, learnable=False)
    assert onepass_supported(x, no_leak, learnable=True)  # a learnable neuron keeps its leak
    assert not onepass_supported(x.half(), params, learnable=False)


def test_batch_norm_1d_features_and_sequences():
    """``[T, B, C]`` and ``[T, B, C, L]`` inputs (a plane of one and of L values) against torch's batch-norm."""
    params = NeuronParams(decay=0.7, threshold=0.4, surrogate="sigmoid", surrogate_args={"alpha": 2.0})
    for shape in [(4, 6, 5), (4, 6, 5, 3)]:
        x = torch.randn(shape, dtype=torch.float64)
        g = torch.randn(shape, dtype=torch.float64)
        fused_bn, ref_bn = nn.BatchNorm1d(5).double(), nn.BatchNorm1d(5).double()
        got = _grads(lambda v, bn=fused_bn: batch_norm_neuron(v, bn, NeuronRun(params))[0], x, g, [fused_bn.weight])
        want = _grads(lambda v, bn=ref_bn: _reference(v, bn, params), x, g, [ref_bn.weight])
        assert torch.equal(got[0], want[0])
        for a, b in zip(got[1:], want[1:], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("pooled_channels_last", [False, True])
def test_a_fused_pooling_matches_batch_norm_the_step_loop_and_avg_pool_in_float64(channels_last,
                                                                                   pooled_channels_last):
    """The neuron's spikes pooled by tiling 2 x 2 windows inside the kernel (the pooled map in the steps' layout,
    or channels-last when asked for, as ``fused_multistep``'s): values, every gradient and the running statistics
    of torch's batch-norm, the reference step loop and ``avg_pool2d``; every layout takes the one-pass path."""
    assert bn_neuron.onepass_supported(torch.zeros(2, 5, 6, 8, dtype=torch.float64).contiguous(
        memory_format=torch.channels_last), NeuronParams(decay=0.6, threshold=0.5), False, (2, 2, True))
    params = NeuronParams(decay=0.6, threshold=0.5, surrogate="sigmoid", surrogate_args={"alpha": 4.0})
    layout = torch.channels_last if channels_last else torch.contiguous_format
    torch.manual_seed(10)
    x = torch.stack([s.contiguous(memory_format=layout) for s in torch.randn(4, 3, 5, 6, 8, dtype=torch.float64)])
    g = torch.randn(4, 3, 5, 3, 4, dtype=torch.float64)
    fused_bn, ref_bn = _layer(5), _layer(5)
    run = NeuronRun(params, (2, 2, pooled_channels_last))

    def reference(v):
        return nn.functional.avg_pool2d(_reference(v, ref_bn, params).flatten(0, 1), 2).unflatten(0, (4, 3))

    got = _grads(lambda v: batch_norm_neuron(v, fused_bn, run)[0], x, g, [fused_bn.weight, fused_bn.bias])
    want = _grads(reference, x, g, [ref_bn.weight, ref_bn.bias])
    assert torch.equal(got[0], want[0]) and got[0].shape == (4, 3, 5, 3, 4) and 0 < got[0].mean() < 1
    pooled_layout = torch.channels_last if channels_last or pooled_channels_last else torch.contiguous_format
    assert got[0][0].is_contiguous(memory_format=pooled_layout) and got[1][0].is_contiguous(memory_format=layout)
    for a, b in zip(got[1:], want[1:], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(fused_bn.running_var, ref_bn.running_var, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("steps", [4, 16, 40])  # blocks of 4096, 2048 and 1024 columns (fused_kernels.block_width)
@pytest.mark.parametrize("kind", ["fixed", "pooled", "plif", "plif_channels_last"])
def test_several_blocks_of_each_width_match_batch_norm_and_the_step_loop(steps, kind):
    """Steps of 2 x 3 x 40 x 40 = 9,600 columns: three or more blocks at each width, the last one partial, so the
    per-block statistics sums, the per-block decay and threshold gradients (partial sums in buffers sized for the
    narrowest blocks, the rest left zero) and the pooling bands all cross block edges."""
    kernels = pytest.importorskip("deepspike.neurons.fused_kernels")
    no_pool, pool = np.zeros(6, dtype=np.int64), np.array([2, 2, 40, 1, 20, 0], dtype=np.int64)
    assert kernels.block_layout(9600, no_pool, steps)[1] >= 3 and kernels.block_layout(9600, pool, steps)[1] >= 3
    assert kernels.most_blocks(9600, no_pool) == 10 and kernels.most_blocks(9600, pool) >= 10
    params = NeuronParams(decay=0.6, threshold=0.7, reset="zero", surrogate="sigmoid", surrogate_args={"alpha": 4.0})
    torch.manual_seed(steps)
    layout = torch.channels_last if kind == "plif_channels_last" else torch.contiguous_format
    x = torch.stack([s.contiguous(memory_format=layout) for s in torch.randn(steps, 2, 3, 40, 40, dtype=torch.float64)])
    learnable = kind.startswith("plif")
    decay = (torch.rand((), dtype=torch.float64) * 0.5 + 0.3).requires_grad_() if learnable else None
    threshold = (torch.rand((), dtype=torch.float64) * 0.5 + 0.5).requires_grad_() if learnable else None
    run = NeuronRun(params, (2, 2, False) if kind == "pooled" else None, learnable=learnable, decay_input=learnable)
    fused_bn, ref_bn = _layer(3), _layer(3)

    def reference(v):
        s = _reference(v, ref_bn, params, decay, threshold, learnable)
        return nn.functional.avg_pool2d(s.flatten(0, 1), 2).unflatten(0, s.shape[:2]) if kind == "pooled" else s

    out_shape = (steps, 2, 3, 20, 20) if kind == "pooled" else x.shape
    g = torch.randn(out_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    learnt = [decay, threshold] if learnable else []
    got = _grads(lambda v: batch_norm_neuron(v, fused_bn, run, decay, threshold)[0], x, g,
                 [fused_bn.weight, fused_bn.bias, *learnt])
    want = _grads(reference, x, g, [ref_bn.weight, ref_bn.bias, *learnt])
    assert torch.equal(got[0], want[0]) and 0 < got[0].mean() < 1
    for a, b in zip(got[1:], want[1:], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(fused_bn.running_var, ref_bn.running_var, rtol=1e-12, atol=1e-14)


def test_a_neuron_without_its_leak_gradient_runs_the_general_path(monkeypatch):
    monkeypatch.setattr(bn_neuron, "onepass_forward", lambda *a: (_ for _ in ()).throw(
        AssertionError("one-pass path taken")))
    x = torch.randn(3, 2, 4, 6, 6, requires_grad=True)
    no_leak = NeuronParams(decay=0.5, threshold=0.5, leak_grad=False)
    for pool in (None, (2, 2, False)):
        s, _ = batch_norm_neuron(x, nn.BatchNorm2d(4), NeuronRun(no_leak, pool))
        assert attached_codes(s) is None and s.shape == ((3, 2, 4, 6, 6) if pool is None else (3, 2, 4, 3, 3))


@pytest.mark.parametrize("learnable", [False, True])
def test_channels_last_steps_match_the_contiguous_ones(learnable):
    """Channels-last steps (the kernels' interleaved channels) give the contiguous steps' spikes and gradients, in
    the channels-last layout, with per-channel parameters."""
    params = NeuronParams(decay=0.5, threshold=0.6, surrogate="sigmoid", surrogate_args={"alpha": 4.0})
    torch.manual_seed(6)
    decay = (torch.rand(5, 1, 1, dtype=torch.float64) * 0.5 + 0.2).requires_grad_() if learnable else None
    threshold = torch.full((5, 1, 1), 0.6, dtype=torch.float64) if learnable else None
    x = torch.randn(3, 4, 5, 6, 7, dtype=torch.float64)
    g = torch.randn(x.shape, dtype=torch.float64)
    run = NeuronRun(params, learnable=learnable, decay_input=learnable)
    results = []
    for layout in (torch.contiguous_format, torch.channels_last):
        bn = _layer(5)
        steps = torch.stack([s.contiguous(memory_format=layout) for s in x])
        tensors = [bn.weight, bn.bias] + ([decay] if learnable else [])
        out = _grads(lambda v, bn=bn: batch_norm_neuron(v, bn, run, decay, threshold)[0], steps, g, tensors)
        results.append((out, bn.running_var.clone()))
        if layout is torch.channels_last:
            assert out[0][0].is_contiguous(memory_format=torch.channels_last) and out[0].any()
    (got, var_cl), (want, var) = results[1], results[0]
    assert torch.equal(got[0], want[0])
    for a, b in zip(got[1:], want[1:], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(var_cl, var, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("shape, channels_last", [((7, 3, 5, 4), False), ((7, 3, 5, 4), True), ((9, 6), False),
                                                 ((5, 2, 3), False)])
def test_batch_statistics_equal_torchs(shape, channels_last):
    torch.manual_seed(4)
    x = torch.randn(shape) * 3 + 20  # a large mean: the variance from float64 sums keeps its digits
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    rm, rv = torch.zeros(shape[1]), torch.ones(shape[1])
    rm_ref, rv_ref = rm.clone(), rv.clone()
    mean, var = batch_statistics(x, rm, rv, 0.3)
    mean_ref, var_ref = torch.batch_norm_update_stats(x, rm_ref, rv_ref, 0.3)
    torch.testing.assert_close(mean, mean_ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(var, var_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(rm, rm_ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(rv, rv_ref, rtol=1e-5, atol=1e-6)
    dims = [0, *range(2, x.dim())]
    exact = x.double().var(dims, correction=0)
    assert torch.allclose(var.double(), exact, rtol=1e-6)


@pytest.mark.parametrize("learnable", [False, True])
def test_a_repeated_input_reads_one_step_and_matches_its_t_copies(learnable):
    """Direct encoding: ``x`` is one ``[B, ...]`` step expanded over T (stride 0). The node reads that step once;
    values, the gradient of the one step (the sum over the copies), the batch-norm's and the neuron's gradients
    and the running statistics (unbiased over the T B H W values) equal torch's batch-norm on the T copies."""
    params = NeuronParams(decay=0.6, threshold=0.5, surrogate="sigmoid", surrogate_args={"alpha": 4.0})
    torch.manual_seed(5)
    one = torch.randn(4, 3, 5, 5, dtype=torch.float64)
    decay = torch.tensor(0.4, dtype=torch.float64, requires_grad=True) if learnable else None
    threshold = torch.tensor(0.5, dtype=torch.float64) if learnable else None
    g = torch.randn((6, 4, 3, 5, 5), dtype=torch.float64)
    fused_bn, ref_bn = _layer(3), _layer(3)
    run = NeuronRun(params, learnable=learnable, decay_input=learnable)
    learnt = [decay] if learnable else []

    def fused(v):
        return batch_norm_neuron(v.expand(6, -1, -1, -1, -1), fused_bn, run, decay, threshold)[0]

    def reference(v):
        return _reference(v.expand(6, -1, -1, -1, -1).contiguous(), ref_bn, params, decay, threshold, learnable)

    got = _grads(fused, one.unsqueeze(0), g, [fused_bn.weight, fused_bn.bias, *learnt])
    want = _grads(reference, one.unsqueeze(0), g, [ref_bn.weight, ref_bn.bias, *learnt])
    assert torch.equal(got[0], want[0]) and got[0].shape == (6, 4, 3, 5, 5)
    for a, b in zip(got[1:], want[1:], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(fused_bn.running_var, ref_bn.running_var, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(fused_bn.running_mean, ref_bn.running_mean, rtol=1e-12, atol=1e-14)


def _rounded_reference(x, bn, params, g, decay=None, threshold=None, decay_input=False, pooled=False):
    """What the path claims for a bfloat16 ``x``, in float64 by torch: the spikes of ``x``'s values (``pooled``: their
    2 x 2 average pooling); ``dL/dy`` from the reference step loop rounded to bfloat16 (the kernels store it so);
    batch-norm's backward of that rounded ``dL/dy`` by autograd; ``dL/dx`` rounded to bfloat16. Returns ``(s, dL/dx,
    dL/dgamma, dL/dbeta, dL/ddecay)``."""
    x64 = x.detach().double().requires_grad_()
    y = _batch_norm(x64, bn)
    y_leaf = y.detach().requires_grad_()
    learnt = [] if decay is None else [decay]
    if decay is None:
        s = neuron_multistep(y_leaf, params, fused=False)[0]
    else:
        s = learnable_multistep_reference(y_leaf, decay, threshold, params, decay_input=decay_input)[0]
    if pooled:
        s = nn.functional.avg_pool2d(s.flatten(0, 1), 2).unflatten(0, s.shape[:2])
    g_y, *g_decay = torch.autograd.grad(s, [y_leaf, *learnt], g.double())
    g_x, g_w, g_b = torch.autograd.grad(y, [x64, bn.weight, bn.bias], g_y.bfloat16().double())
    return s.detach(), g_x.bfloat16(), g_w, g_b, *g_decay


def _bfloat16_case(seed, shape=(4, 5, 3, 6, 8), layout=torch.contiguous_format, pooled=False):
    torch.manual_seed(seed)
    x = torch.stack([s.contiguous(memory_format=layout) for s in torch.randn(shape) * 2 + 0.3]).bfloat16()
    return x, torch.randn(shape[:3] + ((shape[3] // 2, shape[4] // 2) if pooled else shape[3:])).bfloat16()


@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("pooled", [False, "same layout", "channels-last"])
def test_a_bfloat16_input_is_computed_in_float32_with_its_gradients_rounded_once(reset, layout, pooled, monkeypatch):
    """Under autocast a batch-norm gets a bfloat16 input: the kernels read its bits and compute in float32, so the
    spikes (or their fused 2 x 2 pooling), the final membrane and the running statistics equal the float32 one-pass
    path's on ``x.float()`` bit for bit (made to run channels-last pooled float steps, which it leaves to the
    general path); the gradients equal the float64 reference with ``dL/dy`` and ``dL/dx`` rounded to bfloat16 where
    the kernels round them (to a bfloat16 rounding: float32 against float64 may round a value the other way)."""
    monkeypatch.setattr(bn_neuron, "onepass_supported", lambda *args: True)
    params = NeuronParams(decay=0.6, threshold=0.8, reset=reset, surrogate="sigmoid", surrogate_args={"alpha": 4.0})
    run = NeuronRun(params, (2, 2, pooled == "channels-last") if pooled else None)
    x, g = _bfloat16_case(7, layout=layout, pooled=bool(pooled))
    bf16_bn, float_bn, ref_bn = _layer(3, torch.float32), _layer(3, torch.float32), _layer(3, torch.float32).double()
    got = _grads(lambda v: batch_norm_neuron(v, bf16_bn, run)[0], x, g, [bf16_bn.weight, bf16_bn.bias])
    s32, v32 = batch_norm_neuron(x.float().requires_grad_(), float_bn, run)
    s_bf16, v_bf16 = batch_norm_neuron(x.clone().requires_grad_(), _layer(3, torch.float32), run)
    assert got[0].dtype == torch.bfloat16 and got[1].dtype == torch.bfloat16 and v_bf16.dtype == torch.float32
    assert torch.equal(got[0].float(), s32) and torch.equal(v_bf16, v32) and 0 < s32.mean() < 1
    out_layout = torch.channels_last if pooled == "channels-last" else layout
    assert got[0][0].is_contiguous(memory_format=out_layout) and got[1][0].is_contiguous(memory_format=layout)
    assert torch.equal(bf16_bn.running_var, float_bn.running_var)
    want = _rounded_reference(x, ref_bn, params, g, pooled=bool(pooled))
    assert torch.equal(got[0].double(), want[0])
    scale = want[1].abs().max().item()
    torch.testing.assert_close(got[1].float(), want[1].float(), rtol=2**-7, atol=scale * 1e-4)
    torch.testing.assert_close(got[2].double(), want[2], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got[3].double(), want[3], rtol=1e-4, atol=1e-5)


def test_a_bfloat16_input_to_plif_and_a_repeated_bfloat16_input():
    """PLIF with a per-channel learnable decay on a bfloat16 input, and direct encoding's repeated step."""
    params = NeuronParams(decay=0.5, threshold=0.7, surrogate="sigmoid", surrogate_args={"alpha": 4.0})
    run = NeuronRun(params, learnable=True, decay_input=True)
    torch.manual_seed(8)
    decay = (torch.rand(3, 1, 1, dtype=torch.float64) * 0.5 + 0.3).requires_grad_()
    threshold = torch.full((3, 1, 1), 0.7, dtype=torch.float64)
    x, g = _bfloat16_case(9)
    for v in (x, x[:1].expand(4, -1, -1, -1, -1)):
        bn, ref_bn = _layer(3, torch.float32), _layer(3, torch.float32).double()
        got = _grads(lambda u, bn=bn: batch_norm_neuron(
            u if u.stride(0) else u.expand(4, -1, -1, -1, -1), bn, run, decay.float(), threshold.float())[0],
            v if v.stride(0) else v[:1], g, [bn.weight, bn.bias])
        want = _rounded_reference(v.contiguous(), ref_bn, params, g, decay, threshold, True)
        assert torch.equal(got[0].double(), want[0]) and want[0].any()
        summed = want[1].float() if v.stride(0) else want[1].double().sum(0, keepdim=True).float()
        torch.testing.assert_close(got[1].float(), summed, rtol=2**-7, atol=summed.abs().max().item() * 2e-3)
        torch.testing.assert_close(got[2].double(), want[2], rtol=1e-4, atol=1e-5)


def test_bfloat16_spikes_carry_their_codes_and_bfloat16_takes_no_general_path():
    params = NeuronParams(decay=0.5, threshold=0.5)
    x = torch.randn(3, 2, 4, 5, 5).bfloat16()
    s, v = batch_norm_neuron(x.clone().requires_grad_(), nn.BatchNorm2d(4), NeuronRun(params))
    codes, _ = attached_codes(s)
    assert s.dtype == torch.bfloat16 and torch.equal(codes.bfloat16(), s) and s.any()
    x[1, 0, 2, 3, 3] = float("nan")
    s_bad, _ = batch_norm_neuron(x.requires_grad_(), nn.BatchNorm2d(4), NeuronRun(params))
    assert attached_codes(s_bad) is None and s_bad.isnan().any()
    assert onepass_supported(x.flatten(0, 1), params, learnable=False)
    assert not bn_neuron.fusable(nn.BatchNorm2d(4), torch.randn(3, 0, 4, 6, 6).bfloat16().requires_grad_(),
                                 NeuronRun(params))  # an empty batch: the unfused layers
    with pytest.raises(ValueError, match="no fused pooling"):
        NeuronRun(params, (2, 2, False), learnable=True)
    no_leak = NeuronParams(decay=0.5, threshold=0.5, leak_grad=False)  # the general path is float only
    for run in (NeuronRun(no_leak), NeuronRun(no_leak, (2, 2, False))):
        assert bn_neuron.fusable(nn.BatchNorm2d(4), torch.randn(3, 2, 4, 6, 6, requires_grad=True), run)
        assert not bn_neuron.fusable(nn.BatchNorm2d(4), torch.randn(3, 2, 4, 6, 6).bfloat16().requires_grad_(), run)

"""The fused neuron's two memory savers against the reference path: pooling inside the kernel (the spikes
are never stored) and recomputing h in backward for a time-invariant input (nothing of size T saved)."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from deepspike.neurons import NeuronParams, neuron_multistep

pytest.importorskip("numba")
from deepspike.neurons.fused import fused_multistep, poolable  # noqa: E402
from deepspike.neurons.fused_kernels import block_width  # noqa: E402

PARAMS = NeuronParams(decay=0.7, threshold=0.6, surrogate="arctan", surrogate_args={"alpha": 2.5})


def _pool_steps(s: torch.Tensor, kernel) -> torch.Tensor:
    """ATen's average pooling of every step: ``[T, B, C, H, W] -> [T, B, C, H/kh, W/kw]``."""
    return F.avg_pool2d(s.flatten(0, 1), kernel).unflatten(0, s.shape[:2])


def _run(make_x, base, v0, params, weight, fused_pool, kernel, channels_last=False):
    """Pooled output, v_T and the gradients d/d(base, v0) of sum(weight * pooled) + sum(v_T)."""
    b = base.detach().clone().requires_grad_()
    v = v0.detach().clone().requires_grad_()
    x = make_x(b)
    if fused_pool:
        y, v_t = fused_multistep(x, params, v0=v, pool=kernel, pool_channels_last=channels_last)
        if channels_last:
            assert y[0].is_contiguous(memory_format=torch.channels_last)
    else:
        s, v_t = neuron_multistep(x, params, v0=v, fused=False)
        y = _pool_steps(s, kernel)
    loss = (y * weight).sum() + v_t.sum()
    gb, gv = torch.autograd.grad(loss, (b, v))
    return y.detach(), v_t.detach(), gb, gv


LAYOUTS = {
    "contiguous": lambda b: b,
    "channels_last": lambda b: b.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, b.shape[:2]),
    # only base[0] matters; a fresh [B, ...] step repeated as a stride-0 view: the recompute path
    "time_invariant": lambda b: (b[0] * 1).unsqueeze(0).expand(b.shape),
    "transposed": lambda b: b.transpose(3, 4).contiguous().transpose(3, 4),  # not dense steps: copied
}


@pytest.mark.parametrize(
    ("layout", "kernel", "reset", "channels_last"),
    list(itertools.product(LAYOUTS, ((2, 2), (2, 3), (3, 3)), ("zero", "subtract"), (False, True))),
)
def test_pooled_neuron_equals_pooling_the_reference_spikes(layout, kernel, reset, channels_last):
    torch.manual_seed(sum(map(ord, f"{layout}{kernel}{reset}{channels_last}")))
    params = NeuronParams(decay=0.8, threshold=0.5, reset=reset, surrogate="arctan")
    t, b, c, h, w = 5, 2, 3, 6 * kernel[0], 4 * kernel[1]
    base = torch.randn(t, b, c, h, w) * 0.6 + 0.3
    v0 = torch.randn(b, c, h, w) * 0.3
    weight = torch.randn(t, b, c, h // kernel[0], w // kernel[1])
    make = LAYOUTS[layout]
    y_f, v_f, gb_f, gv_f = _run(make, base, v0, params, weight, True, kernel, channels_last)
    y_r, v_r, gb_r, gv_r = _run(make, base, v0, params, weight, False, kernel)
    assert torch.equal(y_f, y_r)  # same spikes, window sum then one division: exactly ATen's pooling
    assert torch.equal(v_f, v_r)
    torch.testing.assert_close(gb_f, gb_r, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gv_f, gv_r, rtol=1e-5, atol=1e-5)
    assert 0 < y_r.mean() < 1 and gb_r.abs().sum() > 0


def test_time_invariant_pooled_neuron_saves_only_the_step():
    x = (torch.rand(2, 3, 8, 8) * 2).requires_grad_()
    y, _ = fused_multistep((x * 1).unsqueeze(0).expand(6, 2, 3, 8, 8), PARAMS, pool=(2, 2))
    assert [tuple(t.shape) for t in y.grad_fn.saved_tensors if t is not None] == [(2, 3, 8, 8)]


def test_pooled_output_keeps_the_input_layout_and_spans_several_blocks():
    torch.manual_seed(3)
    x = torch.randn(3, 2, 8, 2 * block_width(3) // 32 + 4, 48) + 0.4  # one step spans several kernel blocks
    xc = x.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, x.shape[:2])
    for xi in (x, xc):
        y, _ = fused_multistep(xi, PARAMS, pool=(2, 2))
        s, _ = neuron_multistep(xi, PARAMS, fused=False)
        assert torch.equal(y, _pool_steps(s, (2, 2)))
        assert y[0].is_contiguous(memory_format=torch.channels_last) == (xi is xc)


def test_inference_pooling_needs_no_gradient():
    torch.manual_seed(4)
    x = torch.randn(4, 2, 3, 8, 8) + 0.4
    with torch.no_grad():
        y, v = fused_multistep(x, PARAMS, pool=(2, 2))
    s, v_r = neuron_multistep(x, PARAMS, fused=False)
    assert torch.equal(y, _pool_steps(s, (2, 2))) and torch.equal(v, v_r)


def test_poolable_needs_tiling_windows():
    x = torch.zeros(2, 1, 3, 8, 6)
    assert poolable(x, (2, 2)) and poolable(x, (2, 3))
    assert not poolable(x, (3, 3)) and not poolable(x[0], (2, 2))


COMBOS = list(itertools.product(("zero", "subtract", "none"), (False, True), (False, True), ("rectangular", "arctan")))


@pytest.mark.parametrize(("reset", "detach", "leak_grad", "surrogate"), COMBOS)
def test_time_invariant_input_recomputes_h_exactly(reset, detach, leak_grad, surrogate):
    """Without ``return_membrane`` a time-invariant input saves only its ``[B, ...]`` step and ``v0``: the
    gradients must still be those of the reference loop, for every reset and gradient option."""
    torch.manual_seed(COMBOS.index((reset, detach, leak_grad, surrogate)))
    params = NeuronParams(decay=0.7, threshold=0.6, reset=reset, surrogate=surrogate,
                          surrogate_args={"a": 0.8} if surrogate == "rectangular" else {},
                          detach_reset=detach, leak_grad=leak_grad)
    base = torch.randn(3, 2 * block_width(7) + 5) * 0.5 + 0.3  # [B, N]: several kernel blocks
    v0 = torch.randn(3, 2 * block_width(7) + 5) * 0.3
    g = torch.randn(7, 3, 2 * block_width(7) + 5)
    results = []
    for fused in (True, False):
        b, v = base.clone().requires_grad_(), v0.clone().requires_grad_()
        s, v_t = neuron_multistep(b.unsqueeze(0).expand(7, *b.shape), params, v0=v, fused=fused)
        if fused:  # nothing of size T was saved: the graph keeps the [B, N] step and v0 only
            assert [tuple(t.shape) for t in s.grad_fn.saved_tensors] == [tuple(base.shape)] * 2
        gb, gv = torch.autograd.grad((s * g).sum() + (v_t * 0.5).sum(), (b, v))
        results.append((s.detach(), gb, gv))
    (s1, gb1, gv1), (s2, gb2, gv2) = results
    assert torch.equal(s1, s2) and 0 < s1.mean() < 1
    torch.testing.assert_close(gb1, gb2, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gv1, gv2, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels_last", [False, True])
def test_a_nan_current_reaches_the_pooled_spikes(channels_last):
    """The NaN policy inside the pooling kernel: the window holding the NaN neuron is NaN from that step on,
    as ATen's pooling of the reference spikes (NaN propagates through the window sum)."""
    x = torch.rand(5, 2, 3, 4, 6, generator=torch.Generator().manual_seed(4))
    x[2, 1, 0, 3, 1] = float("nan")
    got, _ = fused_multistep(x, PARAMS, pool=(2, 2), pool_channels_last=channels_last)
    ref = _pool_steps(neuron_multistep(x, PARAMS, fused=False)[0], (2, 2))
    assert torch.isnan(ref[2:, 1, 0, 1, 0]).all() and torch.isnan(ref).sum() == 3
    torch.testing.assert_close(got, ref, rtol=0, atol=0, equal_nan=True)

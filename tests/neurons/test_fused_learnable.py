"""The fused update with learnable decay and threshold (numba kernels) against autograd through the reference step
(``learnable_dynamics``): gradcheck in float64 of the decay's and threshold's gradients, spikes bit for bit."""

import itertools

import pytest
import torch

pytest.importorskip("numba")

from deepspike.core.errors import ConfigError  # noqa: E402
from deepspike.neurons.fused_learnable import learnable_spikes_over_input  # noqa: E402
from deepspike.neurons.fused_learnable_kernels import blocks_of, n_blocks  # noqa: E402
from deepspike.neurons.learnable_dynamics import learnable_multistep, learnable_step  # noqa: E402
from deepspike.neurons.params import NeuronParams  # noqa: E402
from deepspike.neurons.surrogate import BUILT_IN  # noqa: E402

SHAPES = {"layer": (), "channel": (3, 1, 1)}
CASES = list(itertools.product(("zero", "subtract", "none"), (False, True), (False, True), tuple(SHAPES)))


def _inputs(per, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 2, 3, 2, 2, generator=g, dtype=dtype) * 1.5
    k = torch.rand(SHAPES[per], generator=g, dtype=dtype) * 0.8 + 0.1
    th = torch.rand(SHAPES[per], generator=g, dtype=dtype) * 0.5 + 0.5
    v0 = torch.randn(2, 3, 2, 2, generator=g, dtype=dtype)
    return x, k, th, v0


@pytest.mark.parametrize(("reset", "detach", "decay_input", "per"), CASES)
def test_gradcheck_fused_float64(reset, detach, decay_input, per):
    """Gradients of x, decay, threshold and v0 (per layer / per channel) from the fused backward kernel equal
    autograd through the reference step in float64 (the surrogate is not a derivative of the forward, so this,
    not finite differences, is the check of the spike path; see ``test_gradcheck_membrane_path`` for those)."""
    params = NeuronParams(reset=reset, detach_reset=detach, surrogate="sigmoid")
    x, k, th, v0 = (t.requires_grad_() for t in _inputs(per))

    def fused(x, k, th, v0):
        return learnable_multistep(x, k, th, params, v0, decay_input, fused=True)

    def reference(x, k, th, v0):
        return learnable_multistep(x, k, th, params, v0, decay_input, fused=False)

    # gradients of a random projection of (s, v_T): fused kernel == autograd through the reference step
    outs_f, outs_r = fused(x, k, th, v0), reference(x, k, th, v0)
    assert torch.equal(outs_f[0], outs_r[0])
    torch.testing.assert_close(outs_f[1], outs_r[1])
    g = torch.Generator().manual_seed(7)
    ws, wv = torch.randn(outs_f[0].shape, generator=g, dtype=x.dtype), torch.randn(v0.shape, generator=g, dtype=x.dtype)
    grads_f = torch.autograd.grad((outs_f[0] * ws).sum() + (outs_f[1] * wv).sum(), (x, k, th, v0))
    grads_r = torch.autograd.grad((outs_r[0] * ws).sum() + (outs_r[1] * wv).sum(), (x, k, th, v0))
    for a, b in zip(grads_f, grads_r, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("surrogate", "reset"), list(itertools.product(BUILT_IN, ("zero", "subtract"))))
def test_every_surrogate_fused_equals_reference(surrogate, reset):
    """Every built-in surrogate (its kernel row, ``fused_constants.SURROGATE_CODES``, default constants): the fused
    kernels' float32 gradients of x, decay, threshold (per channel) and v0 equal autograd through the reference."""
    params = NeuronParams(reset=reset, surrogate=surrogate)
    inputs = [t.float() for t in _inputs("channel", seed=9)]
    results = []
    for fused in (True, False):
        x, k, th, v0 = (t.clone().requires_grad_() for t in inputs)
        s, v = learnable_multistep(x, k, th, params, v0, True, fused=fused)
        w = torch.randn(s.shape, generator=torch.Generator().manual_seed(5))
        results.append((s.detach(), torch.autograd.grad((s * w).sum() + v.sum(), (x, k, th, v0))))
    assert torch.equal(results[0][0], results[1][0]) and 0 < results[1][0].mean() < 1
    for a, b in zip(results[0][1], results[1][1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("per", tuple(SHAPES))
@pytest.mark.parametrize("learn_threshold", [False, True])
def test_many_blocks_and_a_fixed_threshold(per, learn_threshold):
    """Several kernel blocks (a per-layer decay's gradient comes back as per-block partial sums) and a threshold
    without gradient (PLIF: its gradient is not computed): float64 gradients equal autograd through the reference."""
    params = NeuronParams(reset="zero", surrogate="sigmoid")
    g = torch.Generator().manual_seed(11)
    x = (torch.randn(4, 4, 3, 16, 43, generator=g, dtype=torch.float64) * 1.5).requires_grad_()  # N = 8,256
    assert blocks_of(8256, 4)[1] == 3 and n_blocks(8256) == 9  # 3 blocks at T = 4; 6 buffer rows stay zero
    k = (torch.rand(SHAPES[per], generator=g, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()
    th = (torch.rand(SHAPES[per], generator=g, dtype=torch.float64) * 0.5 + 0.5).requires_grad_(learn_threshold)
    wanted = (x, k, th) if learn_threshold else (x, k)
    grads = []
    for fused in (True, False):
        s, v = learnable_multistep(x, k, th, params, None, True, fused=fused)
        w = torch.randn(s.shape, generator=torch.Generator().manual_seed(5), dtype=s.dtype)
        grads.append(torch.autograd.grad((s * w).sum() + v.sum(), wanted))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("reset", "per"), list(itertools.product(("zero", "subtract", "none"), tuple(SHAPES))))
def test_gradcheck_membrane_path(reset, per):
    """torch.autograd.gradcheck (finite differences, float64) of the fused kernel's final membrane v_T w.r.t.
    input, decay, threshold and v0, with the reset's spike detached: then v_T is piecewise smooth (polynomial in k,
    linear in x, v0 and th between spike flips, which finite differences of 1e-7 do not cross here), so its exact
    derivative is what the kernel must return, the threshold's included (reset subtract: -sum_t k^(T-t) s_t)."""
    params = NeuronParams(reset=reset, surrogate="sigmoid", detach_reset=True)
    x, k, th, v0 = (t.requires_grad_() for t in _inputs(per, seed=3))

    def v_final(x, k, th, v0):
        return learnable_multistep(x, k, th, params, v0, True, fused=True)[1]

    assert torch.autograd.gradcheck(v_final, (x, k, th, v0), eps=1e-7, atol=1e-6)


def test_reference_step_hand_computed():
    """PLIF charge V = V + (X - V)/tau with tau = 2 (k = c = 0.5), threshold 1, reset zero."""
    params = NeuronParams(reset="zero")
    k, th = torch.tensor(0.5), torch.tensor(1.0)
    x = torch.tensor([[1.2], [1.0], [3.0]])
    s, v = learnable_multistep(x, k, th, params, decay_input=True, fused=False)
    # h1 = 0.6 (no spike), h2 = 0.5*0.6 + 0.5 = 0.8 (no), h3 = 0.4 + 1.5 = 1.9 (spike, reset to 0)
    assert s.flatten().tolist() == [0.0, 0.0, 1.0]
    assert v.item() == 0.0
    s1, v1 = learnable_step(x[0], None, k, th, params, decay_input=True)
    assert s1.item() == 0.0 and v1.item() == pytest.approx(0.6)


@pytest.mark.parametrize("per", tuple(SHAPES))
def test_float32_spikes_bitwise_and_layouts(per):
    """float32: same spikes bit for bit, channels-last and time-invariant (expanded) inputs included."""
    params = NeuronParams(reset="subtract")
    x, k, th, _ = (t.float() for t in _inputs(per, seed=5))
    x_cl = x.contiguous(memory_format=torch.channels_last_3d).requires_grad_()  # steps are channels-last
    x_inv = x[0].expand(4, *x.shape[1:]).detach().requires_grad_()
    for inp in (x.clone().requires_grad_(), x_cl, x_inv):
        kk, tt = k.clone().requires_grad_(), th.clone().requires_grad_()
        s_f, v_f = learnable_multistep(inp, kk, tt, params, fused=True)
        s_r, v_r = learnable_multistep(inp, k.clone().requires_grad_(), th.clone().requires_grad_(), params,
                                       fused=False)
        assert torch.equal(s_f, s_r)
        torch.testing.assert_close(v_f, v_r)
        (g_x, g_k) = torch.autograd.grad(s_f.sum() + v_f.sum(), (inp, kk))
        assert g_x.shape == inp.shape and g_k.shape == k.shape


@pytest.mark.parametrize("per", tuple(SHAPES))
@pytest.mark.parametrize("decay_input", [False, True])
def test_spikes_over_the_input_equal_the_reference(per, decay_input):
    """``learnable_spikes_over_input`` writes the reference's spikes (bit for bit) into the input's own memory, in
    the contiguous and the channels-last layout."""
    params = NeuronParams(reset="zero")
    x, k, th, _ = (t.float() for t in _inputs(per, seed=7))
    s_ref, v_ref = learnable_multistep(x, k, th, params, decay_input=decay_input, fused=False)
    steps_channels_last = x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)  # every step [B, H, W, C]
    for inp in (x.clone(), steps_channels_last):
        s, v = learnable_spikes_over_input(inp, k, th, params, decay_input)
        assert s.data_ptr() == inp.data_ptr() and torch.equal(s, s_ref) and torch.equal(inp, s_ref)
        torch.testing.assert_close(v, v_ref, rtol=0, atol=0)


def test_forced_fused_refuses_what_it_cannot_run(monkeypatch):
    params = NeuronParams()
    monkeypatch.setenv("DEEPSPIKE_FUSED", "0")
    with pytest.raises(ConfigError, match="fused learnable"):
        learnable_multistep(torch.randn(2, 3), torch.tensor(0.5), torch.tensor(1.0), params, fused=True)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_input_runs_the_kernels_on_float32(dtype):
    """A bfloat16 / float16 input (a Linear under autocast): the kernels on ``x.float()``, spikes bit for bit the
    float32 reference loop's, ``v_T`` and ``dL/dx`` rounded once, ``dL/dk`` in float32."""
    params = NeuronParams(reset="subtract")
    x, k, th, _ = (t.float() for t in _inputs("channel", seed=8))
    x = x.to(dtype)
    xl, kl = x.clone().requires_grad_(), k.clone().requires_grad_()
    s, v = learnable_multistep(xl, kl, th, params, decay_input=True, fused=True)
    assert s.dtype == v.dtype == dtype
    (s.float().sum() + v.float().sum()).backward()
    xr, kr = x.float().requires_grad_(), k.clone().requires_grad_()
    s_r, v_r = learnable_multistep(xr, kr, th, params, decay_input=True, fused=False)
    (s_r.sum() + v_r.sum()).backward()
    assert torch.equal(s.float(), s_r) and 0 < s_r.mean() < 1
    torch.testing.assert_close(v.float(), v_r.to(dtype).float(), rtol=torch.finfo(dtype).eps, atol=1e-6)
    torch.testing.assert_close(xl.grad.float(), xr.grad.to(dtype).float(), rtol=torch.finfo(dtype).eps, atol=1e-6)
    assert kl.grad.dtype == torch.float32
    torch.testing.assert_close(kl.grad, kr.grad, rtol=1e-5, atol=1e-6)


def test_saves_only_the_input_and_the_parameters():
    """Saved for backward: ``x`` and the per-layer/per-channel values, not their one-step ``[N]`` expansions nor a
    zero initial membrane ((T + 3) N floats before, T N now)."""
    from deepspike.neurons.learnable import LearnableLIF

    seen: dict[int, int] = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    neuron = LearnableLIF(NeuronParams(decay=0.5, threshold=1.0, surrogate="arctan"), channels=4)
    x = (torch.rand(2, 3, 4, 5, 5) * 2).requires_grad_(True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        s = neuron(x)
    assert sum(seen.values()) <= x.numel() * 4 + 64  # x, and a few per-channel values (one step: 1200 bytes)
    s.sum().backward()
    assert neuron.w.grad is not None and x.grad is not None

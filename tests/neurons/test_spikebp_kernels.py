"""lee2020's neuron: the numba time loops equal the torch loops (spikes bit for bit, gradients exactly)."""

import pytest
import torch

from deepspike.neurons.fused import kernel_ready
from deepspike.neurons.spikebp_lif import leak_corrected_lif

pytest.importorskip("numba")
from deepspike.neurons.spikebp_kernels import BLOCK  # noqa: E402


def _run(x, g, monkeypatch, fused: bool, **kw):
    monkeypatch.setenv("DEEPSPIKE_FUSED", "1" if fused else "0")
    assert kernel_ready(x) == fused
    xi = x.clone().requires_grad_()
    s = leak_corrected_lif(xi, **kw)
    s.backward(g)
    return s.detach(), xi.grad


@pytest.mark.parametrize("derivative", ["code", "rate"])
@pytest.mark.parametrize("shape", [(25, 4, 3, 5, 5), (8, 2 * BLOCK + 37), (1, 3, 4)])
def test_kernel_equals_torch_loop(monkeypatch, derivative, shape):
    gen = torch.Generator().manual_seed(len(shape))
    x = torch.rand(shape, generator=gen) * 0.6
    g = torch.randn(shape, generator=gen)
    kw = dict(leak=0.99, threshold=1.0, derivative=derivative)
    s_k, gx_k = _run(x, g, monkeypatch, True, **kw)
    s_r, gx_r = _run(x, g, monkeypatch, False, **kw)
    assert 0 < s_r.mean() < 1 or shape[0] == 1
    assert torch.equal(s_k, s_r)
    assert torch.equal(gx_k, gx_r)


def test_kernel_pooling_neuron_and_ties(monkeypatch):
    # leak 1, threshold 0.75 (the pooling neuron): inputs that land exactly on the threshold must not fire
    x = torch.tensor([0.25, 0.5, 0.75, 0.75, 0.0, 1.0]).view(6, 1, 1).repeat(1, 2, 3)
    g = torch.ones_like(x)
    s_k, gx_k = _run(x, g, monkeypatch, True, leak=1.0, threshold=0.75, correction=False, grad_scale=1.0)
    s_r, gx_r = _run(x, g, monkeypatch, False, leak=1.0, threshold=0.75, correction=False, grad_scale=1.0)
    # by hand: h = .25, .75 (not > .75), 1.5 -> fire, reset; .75 (no), .75 (no), 1.75 -> fire
    assert s_k[:, 0, 0].tolist() == [0, 0, 1, 0, 0, 1]
    assert torch.equal(s_k, s_r) and torch.equal(gx_k, gx_r)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("derivative", ["code", "rate"])
def test_cuda_equals_cpu_kernel(monkeypatch, derivative):
    """There is no CUDA kernel of lee2020's neuron: on CUDA tensors the torch loops run on the GPU. They must
    give the numba kernel's spikes exactly and its gradients to float32 rounding (``benchmarks/gpu_check.sh``)."""
    gen = torch.Generator().manual_seed(7)
    x = torch.rand(25, 4, 2 * BLOCK + 37, generator=gen) * 0.6
    g = torch.randn(x.shape, generator=gen)
    kw = dict(leak=0.99, threshold=1.0, derivative=derivative)
    s_k, gx_k = _run(x, g, monkeypatch, True, **kw)
    monkeypatch.setenv("DEEPSPIKE_FUSED", "1")
    xc = x.cuda().requires_grad_()
    s_c = leak_corrected_lif(xc, **kw)
    s_c.backward(g.cuda())
    assert 0 < s_k.mean() < 1
    assert torch.equal(s_c.detach().cpu(), s_k)
    torch.testing.assert_close(xc.grad.cpu(), gx_k, rtol=1e-5, atol=1e-6)

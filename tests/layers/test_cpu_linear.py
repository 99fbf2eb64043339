"""The oneDNN linear layer against torch's ``F.linear`` and autograd (values and gradients to float32 rounding), the
policy switch, and the uint8 spike storage of its saved input."""

import pytest
import torch
from torch import nn

from deepspike.layers import cpu_linear
from deepspike.layers.time_distributed import TimeDistributed

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")


def _layer_and_input(m=64, k=48, n=40, seed=0, bias=True):
    torch.manual_seed(seed)
    return nn.Linear(k, n, bias=bias), torch.randn(m, k, requires_grad=True)


@pytest.mark.parametrize("bias", [True, False])
def test_values_and_gradients_equal_torch(monkeypatch, bias):
    monkeypatch.setenv("DEEPSPIKE_CPU_MATMUL", "onednn")
    layer, x = _layer_and_input(bias=bias)
    g = torch.randn(64, 40, generator=torch.Generator().manual_seed(1))
    y = cpu_linear.linear(layer, x)
    assert "OneDNN" in type(y.grad_fn).__name__
    grads = torch.autograd.grad((y * g).sum(), (x, *layer.parameters()))
    y_ref = nn.functional.linear(x, layer.weight, layer.bias)
    grads_ref = torch.autograd.grad((y_ref * g).sum(), (x, *layer.parameters()))
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # hand-made case: W = [[1, 2], [3, 4]], b = [0.5, -1], x = [[1, -1]] -> y = [[-0.5, -2]]
    hand = nn.Linear(2, 2)
    with torch.no_grad():
        hand.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        hand.bias.copy_(torch.tensor([0.5, -1.0]))
    assert torch.equal(cpu_linear.linear(hand, torch.tensor([[1.0, -1.0]])), torch.tensor([[-0.5, -2.0]]))


@pytest.mark.parametrize(("rows", "tile"), [(512, 1 << 22), (7, 24), (64, 5)])
def test_weight_grad_equals_float64_product(monkeypatch, rows, tile):
    """``g^T x`` summed over row blocks and output slices (several of each where rows/tile are small) equals the
    float64 product to float32 rounding, for a transposed (non-contiguous) ``x`` too, and is zero for no rows."""
    monkeypatch.setattr(cpu_linear, "WEIGHT_GRAD_ROWS", rows)
    monkeypatch.setattr(cpu_linear, "WEIGHT_GRAD_TILE", tile)
    gen = torch.Generator().manual_seed(4)
    g, x = torch.randn(45, 11, generator=gen), torch.randn(9, 45, generator=gen).t()  # x [45, 9], not contiguous
    got = cpu_linear.weight_grad(g, x)
    assert got.shape == (11, 9) and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), g.double().t() @ x.double(), rtol=1e-5, atol=1e-5)
    hand = cpu_linear.weight_grad(torch.tensor([[1.0], [2.0]]), torch.tensor([[3.0, -1.0], [0.5, 4.0]]))
    assert torch.equal(hand, torch.tensor([[4.0, 7.0]]))  # [1*3 + 2*0.5, 1*(-1) + 2*4]
    assert torch.equal(cpu_linear.weight_grad(torch.empty(0, 3), torch.empty(0, 2)), torch.zeros(3, 2))
    for strided in (g[:1].expand(45, 11), g.t().contiguous().t()):  # stride 0 (the gradient of y.sum()), transposed
        torch.testing.assert_close(cpu_linear.weight_grad(strided, x).double(), strided.double().t() @ x.double(),
                                   rtol=1e-5, atol=1e-5)


def test_policy(monkeypatch):
    layer, x = _layer_and_input()
    monkeypatch.setenv("DEEPSPIKE_CPU_MATMUL", "torch")
    assert not cpu_linear.uses_onednn(x, layer.weight)
    monkeypatch.setenv("DEEPSPIKE_CPU_MATMUL", "onednn")
    assert cpu_linear.uses_onednn(x, layer.weight)
    assert not cpu_linear.uses_onednn(x.double(), layer.weight.double())  # float32 only
    monkeypatch.setenv("DEEPSPIKE_CPU_MATMUL", "auto")
    assert not cpu_linear.uses_onednn(x, layer.weight)  # small: torch's path keeps its exact numbers
    big = torch.empty(1 << 12, 1 << 8)
    assert cpu_linear.uses_onednn(big, torch.empty(1 << 8, 1 << 8)) == cpu_linear._mkl_on_amd()
    monkeypatch.setenv("DEEPSPIKE_CPU_MATMUL", "fast")
    with pytest.raises(ValueError, match="DEEPSPIKE_CPU_MATMUL"):
        cpu_linear.uses_onednn(x, layer.weight)


def test_an_input_of_the_wrong_width_gets_torchs_message(monkeypatch):
    """oneDNN's own error for it names no shape ("could not create a primitive descriptor ..."): torch's does."""
    monkeypatch.setenv("DEEPSPIKE_CPU_MATMUL", "onednn")
    layer, x = _layer_and_input()
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        cpu_linear.linear(layer, x[:, :-1])


def test_hooked_module_keeps_torch_path(monkeypatch):
    monkeypatch.setenv("DEEPSPIKE_CPU_MATMUL", "onednn")
    layer, x = _layer_and_input()
    seen = []
    layer.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    cpu_linear.linear(layer, x)
    assert seen == [torch.Size([64, 40])]


def test_time_distributed_spike_input_saved_as_uint8(monkeypatch):
    """Through ``TimeDistributed`` with spike inputs: same gradients as torch's path, and the saved input is the
    packed uint8 codes (the layer's saved float32 input is gone)."""
    from deepspike.layers.spike_storage import mark_spikes

    torch.manual_seed(3)
    td = TimeDistributed(nn.Linear(32, 16))
    spikes = (torch.rand(5, 4, 32) > 0.5).float().requires_grad_()
    grads, saved = {}, []
    for policy in ("onednn", "torch"):
        monkeypatch.setenv("DEEPSPIKE_CPU_MATMUL", policy)
        saved.clear()
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.dtype) or t, lambda t: t):
            y = td(mark_spikes(spikes, 1))
        assert ("OneDNN" in type(y.grad_fn.next_functions[0][0]).__name__) == (policy == "onednn")  # under the view
        grads[policy] = torch.autograd.grad(y.square().sum(), (spikes, td.module.weight, td.module.bias))
        assert torch.uint8 in saved and torch.float32 in saved  # the input as codes; the weight as itself
    for a, b in zip(grads["onednn"], grads["torch"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


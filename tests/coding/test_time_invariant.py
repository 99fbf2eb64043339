"""Time-invariant inputs (direct encoding) run per-step layers once: same values and gradients, less work."""

import pytest
import torch
from torch import nn

from deepspike.coding import time_invariant
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.neurons import LIF, NeuronParams, neuron_multistep


def _exact_net():
    """conv -> LIF -> pool -> flatten -> linear with weights on a 1/8 grid (forward sums stay exact)."""
    torch.manual_seed(0)
    net = nn.Sequential(TimeDistributed(nn.Conv2d(2, 4, 3)), LIF(decay=0.5, threshold=1.0, surrogate="arctan"),
                        TimeDistributed(nn.AvgPool2d(2)), TimeDistributed(nn.Flatten()),
                        TimeDistributed(nn.Linear(4 * 3 * 3, 3)))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randint(-8, 9, p.shape) / 8.0)
    return net


def _run(net, xs):
    for p in net.parameters():
        p.grad = None
    out = net(xs)
    out.sum().backward()
    return out.detach(), [p.grad.clone() for p in net.parameters()]


def test_same_outputs_and_gradients_as_the_copied_input():
    net = _exact_net()
    x = torch.randint(0, 5, (3, 2, 8, 8)) / 4.0  # exact values
    expanded = x.unsqueeze(0).expand(6, *x.shape)  # direct encoding: [T, B, ...] stride 0 in T
    copied = expanded.contiguous()
    assert time_invariant(expanded) and not time_invariant(copied)
    out_e, grads_e = _run(net, expanded)
    out_c, grads_c = _run(net, copied)
    assert out_e.shape == out_c.shape == (6, 3, 3)
    assert torch.equal(out_e, out_c)  # exact arithmetic: the same spikes and outputs bit for bit
    for a, b in zip(grads_e, grads_c):  # surrogate gradients summed over T in another order
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert any(g.abs().sum() > 0 for g in grads_e)


def test_layer_runs_once_on_the_batch():
    conv = nn.Conv2d(1, 2, 3)
    seen = []
    td = TimeDistributed(conv)
    x = torch.rand(2, 1, 5, 5).unsqueeze(0).expand(7, 2, 1, 5, 5)
    y = td(x)
    assert y.shape == (7, 2, 2, 3, 3) and y.stride(0) == 0
    conv.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    td(x)  # a hooked layer (analysis monitors count work per step) keeps the per-step path
    assert seen == [14]


def test_dropout_keeps_the_per_step_path():
    x = torch.rand(2, 3, 4, 4).unsqueeze(0).expand(5, 2, 3, 4, 4)
    drop = TimeDistributed(nn.Dropout(0.5))
    assert drop(x).stride(0) != 0
    assert TimeDistributed(nn.SyncBatchNorm(3))._runs_once(x) is False  # gathers statistics across processes


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_norm_in_training_runs_once_with_the_full_batch_statistics(momentum):
    torch.manual_seed(5)
    base = torch.randn(3, 4, 5, 5) * 2 + 1
    g = torch.randn(6, 3, 4, 5, 5)
    results = []
    repeat = lambda b: b.unsqueeze(0).expand(6, *b.shape)  # noqa: E731
    for make in (repeat, lambda b: repeat(b).contiguous()):
        bn = TimeDistributed(nn.BatchNorm2d(4, momentum=momentum))
        with torch.no_grad():
            bn.module.weight.copy_(torch.linspace(0.5, 1.5, 4))
            bn.module.bias.copy_(torch.linspace(-0.5, 0.5, 4))
        b = base.clone().requires_grad_()
        for _ in range(2):  # two steps: the running statistics move twice
            y = bn(make(b))
        (y * g).sum().backward()
        results.append((y, b.grad, bn.module))
    (y1, g1, bn1), (y2, g2, bn2) = results
    assert y1.stride(0) == 0 and y2.stride(0) != 0  # the shortcut ran on [B, ...] only
    torch.testing.assert_close(y1, y2, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g1, g2, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bn1.weight.grad, bn2.weight.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(bn1.running_mean, bn2.running_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bn1.running_var, bn2.running_var, rtol=1e-5, atol=1e-6)
    assert bn1.num_batches_tracked == bn2.num_batches_tracked == 2


@pytest.mark.parametrize("fused", [True, False])
def test_neuron_on_a_time_invariant_input(fused):
    pytest.importorskip("numba")
    params = NeuronParams(decay=0.7, threshold=0.6, surrogate="arctan")
    base = torch.randn(4, 5) * 0.5 + 0.3
    g = torch.randn(6, 4, 5)
    results = []
    for make in (lambda b: b.unsqueeze(0).expand(6, 4, 5), lambda b: b.unsqueeze(0).expand(6, 4, 5).contiguous()):
        b = base.clone().requires_grad_()
        s, v, h = neuron_multistep(make(b), params, return_membrane=True, fused=fused)
        (s * g).sum().backward()
        results.append((s.detach(), h.detach(), b.grad))
    (s1, h1, g1), (s2, h2, g2) = results
    assert torch.equal(s1, s2) and torch.equal(h1, h2)
    torch.testing.assert_close(g1, g2, rtol=1e-6, atol=1e-6)
    assert 0 < s1.mean() < 1

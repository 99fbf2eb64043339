"""Batch-norm + neuron fused (``layers.batchnorm_neuron``) against the same modules run one after the other."""

import pytest
import torch
from torch import nn

from autograd_graph import node_names
from deepspike.layers.batchnorm_neuron import NeuronRun, batch_norm_neuron, fusable
from deepspike.layers.lean_avg_pool import LeanAvgPool2d
from deepspike.layers.spiking_sequential import SpikingSequential
from deepspike.layers.temporal_batchnorm import threshold_dependent_batch_norm
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.neurons import LIF, NeuronParams
from deepspike.neurons.carry import temporal_carry
from deepspike.neurons.dynamics import neuron_multistep
from deepspike.neurons.learnable import LearnableLIF

pytest.importorskip("numba")


def _conv_layers(norm: str, pool: bool, reset: str, momentum):
    torch.manual_seed(0)
    bn = threshold_dependent_batch_norm((6, 8, 8), threshold=0.7) if norm == "tdbn" else nn.BatchNorm2d(6)
    bn.momentum = momentum
    with torch.no_grad():
        bn.bias.uniform_(-0.2, 0.4)
    layers = [
        TimeDistributed(nn.Conv2d(2, 6, 3, padding=1, bias=False)),
        TimeDistributed(bn),
        LIF(decay=0.6, threshold=0.7, reset=reset, surrogate="arctan", inplace=True),
    ]
    layers += [TimeDistributed(LeanAvgPool2d(2))] if pool else []
    return layers + [TimeDistributed(nn.Conv2d(6, 3, 3, padding=1)), TimeDistributed(nn.Flatten())]


def _run(seq, x):
    seq.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    y = seq(x)
    y.backward(torch.linspace(-1, 1, y.numel()).view_as(y))
    return y.detach(), x.grad, {n: p.grad.clone() for n, p in seq.named_parameters()}


def _close_to_scale(a, b, tol=3e-5, floor=1e-6):
    """Equal up to float32 summation order, measured against the gradient's scale (batch-norm's backward subtracts
    per-channel sums; a bias before it has a gradient of 0 up to rounding; a per-layer decay's gradient is a sum of
    thousands of terms of both signs). The float64 tests of ``test_batchnorm_neuron_onepass.py`` check the formulas
    to 1e-9."""
    torch.testing.assert_close(a, b, rtol=0, atol=max(tol * float(b.abs().max()), floor))


@pytest.mark.parametrize("norm", ["bn", "tdbn"])
@pytest.mark.parametrize("pool", [False, True])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_same_values_gradients_and_running_statistics_as_the_unfused_layers(norm, pool, reset, channels_last):
    torch.manual_seed(1)
    x = torch.rand(5, 3, 2, 8, 8) * 2
    if channels_last:
        x = torch.stack([s.contiguous(memory_format=torch.channels_last) for s in x])
    fused_layers = _conv_layers(norm, pool, reset, momentum=0.1)
    plain_layers = _conv_layers(norm, pool, reset, momentum=0.1)
    fused, plain = SpikingSequential(*fused_layers), nn.Sequential(*plain_layers)
    plain.load_state_dict(fused.state_dict())
    for _ in range(2):  # two steps: num_batches_tracked and the running statistics move twice
        (y1, gx1, gp1), (y2, gx2, gp2) = _run(fused, x), _run(plain, x)
    torch.testing.assert_close(y1, y2, rtol=1e-5, atol=1e-6)
    assert (y1 != 0).any()
    torch.testing.assert_close(gx1, gx2, rtol=1e-4, atol=1e-6)
    assert gx1.abs().sum() > 0
    assert gp1.keys() == gp2.keys()
    for name in gp1:  # float32 summation order: errors relative to the gradient's scale (sums of +- terms)
        _close_to_scale(gp1[name], gp2[name])
    for name, buf in plain.state_dict().items():
        torch.testing.assert_close(fused.state_dict()[name], buf, rtol=1e-6, atol=1e-7, msg=name)
    assert int(fused[1].module.num_batches_tracked) == 2


def test_spikes_are_bit_for_bit_those_of_the_unfused_layers():
    torch.manual_seed(2)
    bn, params = nn.BatchNorm2d(4), NeuronParams(decay=0.5, threshold=0.3)
    x = torch.randn(6, 5, 4, 7, 9, requires_grad=True)
    s, v = batch_norm_neuron(x, bn, NeuronRun(params))
    with torch.no_grad():
        y = nn.BatchNorm2d(4)(x.flatten(0, 1)).unflatten(0, (6, 5))
    s_ref, v_ref = neuron_multistep(y, params, fused=False)  # the reference step loop
    assert torch.equal(s, s_ref)
    torch.testing.assert_close(v, v_ref)
    assert not v.requires_grad


def test_momentum_none_is_the_cumulative_average():
    torch.manual_seed(3)
    fused_bn, plain_bn = nn.BatchNorm2d(3, momentum=None), nn.BatchNorm2d(3, momentum=None)
    params = NeuronParams(decay=0.5, threshold=0.5)
    for _ in range(3):
        x = torch.randn(2, 4, 3, 5, 5, requires_grad=True)
        batch_norm_neuron(x, fused_bn, NeuronRun(params))[0].sum().backward()
        plain_bn(x.detach().flatten(0, 1))
    torch.testing.assert_close(fused_bn.running_mean, plain_bn.running_mean)
    torch.testing.assert_close(fused_bn.running_var, plain_bn.running_var)
    assert int(fused_bn.num_batches_tracked) == 3


def test_features_batch_norm_1d():
    torch.manual_seed(4)
    layers = [TimeDistributed(nn.Linear(7, 5)), TimeDistributed(nn.BatchNorm1d(5)), LIF(decay=0.7, threshold=0.4)]
    fused, plain = SpikingSequential(*layers), nn.Sequential(*layers)
    x = torch.randn(4, 6, 7)
    (y1, gx1, gp1), (y2, gx2, gp2) = _run(fused, x), _run(plain, x)
    assert "_BatchNormNeuronBackward" in node_names(fused(x.requires_grad_()))
    torch.testing.assert_close(y1, y2)
    torch.testing.assert_close(gx1, gx2, rtol=1e-4, atol=1e-6)
    for name in gp1:  # the Linear's bias sits before the batch-norm: its gradient is 0 up to the rounding of sums of
        # 24 float32 terms, which torch's two-thread kernels here leave at 1.4e-6 (1e-7 on one thread)
        _close_to_scale(gp1[name], gp2[name], floor=1e-5 if name == "0.module.bias" else 1e-6)


def test_fused_only_with_a_gradient_in_training_mode_and_nothing_watching():
    seq = SpikingSequential(*_conv_layers("bn", False, "zero", 0.1))
    x = torch.rand(3, 2, 2, 8, 8, requires_grad=True)
    assert "_BatchNormNeuronBackward" in node_names(seq(x))
    handle = seq[1].module.register_forward_hook(lambda *a: None)
    assert "_BatchNormNeuronBackward" not in node_names(seq(x))
    handle.remove()
    seq.eval()
    assert "_BatchNormNeuronBackward" not in node_names(seq(x))
    params = NeuronRun(NeuronParams(decay=0.5, threshold=1.0))
    bn = nn.BatchNorm2d(2)
    assert not fusable(bn, x.detach(), params)  # no gradient to compute
    assert fusable(bn, x[0:1].expand(3, -1, -1, -1, -1), params)  # time-invariant: the one-pass path, one step read
    repeated_channels_last = x[0].contiguous(memory_format=torch.channels_last).unsqueeze(0).expand(3, -1, -1, -1, -1)
    assert fusable(bn, repeated_channels_last, params)  # ... contiguous or channels-last
    assert not fusable(nn.SyncBatchNorm(2), x, params)


def _saved_bytes(fn) -> int:
    total = []

    def pack(t):
        total.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(total)


def test_saves_one_float32_tensor_per_layer_less_than_the_unfused_layers():
    """The unfused layers save the batch-norm input and the membrane; the fused node the batch-norm input."""
    torch.manual_seed(5)
    bn, lif = TimeDistributed(nn.BatchNorm2d(8)), LIF(decay=0.5, threshold=0.5, inplace=True)
    x = torch.randn(4, 3, 8, 6, 6, requires_grad=True)
    layer = 4 * x.numel()
    fused = _saved_bytes(lambda: SpikingSequential(bn, lif)(x * 1.0))
    plain = _saved_bytes(lambda: nn.Sequential(bn, lif)(x * 1.0))
    assert layer <= fused < layer + 4 * 8 * 8  # x, then per-channel vectors only (gamma, beta, mean, 1/std)
    assert layer <= plain - fused < layer + 4 * 8 * 8  # the unfused layers: also the membrane


@pytest.mark.parametrize("channels", [None, 6])
@pytest.mark.parametrize("learn", [(True, False), (True, True), (False, True)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_learnable_neuron_after_batch_norm(channels, learn, channels_last):
    """PLIF and/or a learnable threshold, per layer or per channel: values, the gradients of the input, the weights,
    the batch-norm, the decay's ``w`` and the threshold equal the unfused layers'."""
    learn_decay, learn_threshold = learn

    def layers():
        torch.manual_seed(6)
        neuron = LearnableLIF(NeuronParams(decay=0.6, threshold=0.5, surrogate="sigmoid"), channels=channels,
                              learn_decay=learn_decay, tau_init=1.7, learn_threshold=learn_threshold)
        return [TimeDistributed(nn.Conv2d(2, 6, 3, padding=1, bias=False)), TimeDistributed(nn.BatchNorm2d(6)),
                neuron, TimeDistributed(nn.Flatten())]

    torch.manual_seed(7)
    x = torch.rand(5, 3, 2, 6, 6) * 2
    if channels_last:
        x = torch.stack([s.contiguous(memory_format=torch.channels_last) for s in x])
    fused, plain = SpikingSequential(*layers()), nn.Sequential(*layers())
    assert "_BatchNormNeuronBackward" in node_names(fused(x.clone().requires_grad_()))
    (y1, gx1, gp1), (y2, gx2, gp2) = _run(fused, x), _run(plain, x)
    assert torch.equal(y1, y2) and (y1 != 0).any()
    _close_to_scale(gx1, gx2)
    assert gp1.keys() == gp2.keys() and len(gp1) == 3 + learn_decay + learn_threshold
    for name in gp1:
        _close_to_scale(gp1[name], gp2[name])


def test_not_fused_where_time_runs_in_segments():
    """Inside ``temporal_carry`` the membrane carries the gradient from one segment into the next, which the fused
    node (from rest, final membrane without gradient) does not: the pair runs unfused there."""
    seq = SpikingSequential(*_conv_layers("bn", False, "zero", 0.1))
    x = torch.rand(4, 2, 2, 8, 8, requires_grad=True)
    with temporal_carry(seq):
        first, second = seq(x[:2]), seq(x[2:])
        assert "_BatchNormNeuronBackward" not in node_names(first) | node_names(second)
    assert "_BatchNormNeuronBackward" in node_names(seq(x))


@pytest.mark.parametrize("pool", [False, True])
def test_under_bfloat16_autocast_the_fused_node_runs_and_matches_the_unfused_layers(pool):
    """Under CPU autocast the batch-norm gets the convolution's bfloat16 output: the node runs it (the one-pass
    kernels on the bfloat16 bits, with or without the fused pooling) and gives the unfused bfloat16 layers' spikes
    and gradients up to bfloat16 rounding."""
    fused, plain = SpikingSequential(*_conv_layers("bn", pool, "zero", 0.1)), nn.Sequential(
        *_conv_layers("bn", pool, "zero", 0.1))
    plain.load_state_dict(fused.state_dict())
    x = torch.rand(4, 3, 2, 8, 8)
    seen = []  # the layout of the map the last convolution reads (after the fused pooling, if any)
    hook = fused[-2].module.register_forward_pre_hook(lambda _, a: seen.append(a[0].is_contiguous()))
    fused(x.clone().requires_grad_())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert "_BatchNormNeuronBackward" in node_names(fused(x.clone().requires_grad_()))
        hook.remove()
        (y1, gx1, gp1), (y2, gx2, gp2) = _run(fused, x), _run(plain, x)
    assert seen == [True, True]  # float32: a 4x4 pooled map stays contiguous (from 8x8 on channels-last,
    # tests/layers/test_spiking_sequential.py); bfloat16: kept contiguous
    assert y1.dtype == torch.bfloat16 and (y1 != 0).any()
    torch.testing.assert_close(y1.float(), y2.float(), rtol=2**-7, atol=1e-2)
    _close_to_scale(gx1.float(), gx2.float(), tol=1e-2)
    for name in gp1:
        _close_to_scale(gp1[name], gp2[name], tol=1e-2)

"""``layers.time_distributed``: the batch axis of a one-sample, one-step batch gets a dense stride, so that torch's
batch-norm backward reads a channels-last map right; a batch-norm on one value per channel behaves as torch's."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepspike.coding.rate import direct
from deepspike.core.errors import ConfigError
from deepspike.layers.spiking_sequential import SpikingSequential
from deepspike.layers.time_distributed import TimeDistributed, batch_strides, check_time_first
from deepspike.methods.create import create_model
from deepspike.neurons.modules import LIF


def test_batch_strides_is_a_view_with_the_dense_batch_stride():
    flat = torch.randn(1, 6, 4, 5).contiguous(memory_format=torch.channels_last).unflatten(0, (1, 1)).flatten(0, 1)
    assert flat.stride(0) == 6  # what flattening [1, 1, C, H, W] gives
    fixed = batch_strides(flat)
    assert fixed.stride() == (120, 1, 30, 6) and fixed.data_ptr() == flat.data_ptr() and torch.equal(fixed, flat)
    wide = torch.randn(2, 6, 4, 5)
    assert batch_strides(wide) is wide


def test_torch_batch_norm_backward_misreads_the_odd_stride():
    """The defect worked around (torch 2.13 CPU): the input gradient of a batch-norm on a [1, C, H, W] channels-last
    map whose batch stride is C is wrong; with the dense stride it is right. If torch fixes it, this test says so."""
    c = 16
    x0, g = torch.randn(1, c, 2, 2), torch.randn(1, c, 2, 2)
    mean, var, weight = torch.randn(c), torch.rand(c) + 0.5, torch.rand(c) + 0.5
    odd = torch.empty_strided((1, c, 2, 2), (c, 1, 2 * c, c))
    odd.copy_(x0)

    def input_grad(x):
        x = x.detach().requires_grad_()
        F.batch_norm(x, mean, var, weight, None, False).mul(g).sum().backward()
        return x.grad

    assert not torch.allclose(input_grad(odd), input_grad(x0), atol=1e-3)
    torch.testing.assert_close(input_grad(batch_strides(odd)), input_grad(x0))


def test_a_channels_last_net_at_one_sample_and_one_step_gets_the_contiguous_nets_gradients():
    torch.manual_seed(0)
    net = create_model("spikformer", method="stbp", timesteps=1, norm="bn", neuron="alif", input_shape=(3, 8, 8),
                       model_args={"dim": 16, "depth": 1, "heads": 2, "pools": 1})
    x = torch.rand(1, 3, 8, 8) * 2
    grads = []
    for model in (copy.deepcopy(net), copy.deepcopy(net).to(memory_format=torch.channels_last)):
        out = model(x)
        (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(1))).sum().backward()
        grads.append({k: p.grad for k, p in model.named_parameters()})
    for key, want in grads[0].items():
        torch.testing.assert_close(grads[1][key], want, rtol=1e-4, atol=1e-5 * want.abs().max().item(), msg=key)


@pytest.mark.parametrize("fused", ["1", "0"])
def test_one_value_per_channel_behaves_as_torchs_batch_norm(fused, monkeypatch):
    """A training batch-norm on a direct input of one sample of vectors: with T = 2 the copies are normalised as one
    batch of 2 values per channel (the one-copy shortcut would see 1 and raise), as a materialised repeat is; with
    T = 1 both paths raise torch's own error (the fused batch-norm + neuron ran it silently)."""
    monkeypatch.setenv("DEEPSPIKE_FUSED", fused)
    torch.manual_seed(0)
    body = SpikingSequential(TimeDistributed(nn.Linear(12, 16)), TimeDistributed(nn.BatchNorm1d(16)), LIF(0.5, 0.5))
    x = torch.rand(1, 12, requires_grad=True)
    twin = copy.deepcopy(body)
    repeated = twin(x.unsqueeze(0).repeat(2, 1, 1))  # [2, 1, 12], materialised
    assert torch.equal(body(direct(x, 2)), repeated)
    torch.testing.assert_close(body[1].module.running_var, twin[1].module.running_var)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        body(direct(x, 1))


@pytest.mark.parametrize("momentum", [0.1, None])
def test_a_bfloat16_time_invariant_batch_moves_the_running_statistics_as_torch(momentum):
    """Direct encoding under train.precision=bf16: a batch-norm on a repeated bfloat16 step runs once on that step
    (``_batch_norm_once``), whose running statistics came from a bfloat16 ``var_mean`` (0.3% off torch's: 2.8e-3 with
    momentum 0.1, 1.5e-2 with the cumulative average); now float32 statistics, as torch's batch-norm on all T copies."""
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(8, momentum=momentum)
    twin = copy.deepcopy(bn)
    x = (torch.randn(16, 8, 6, 6) * 3 + 5).bfloat16()
    for _ in range(2):
        y = TimeDistributed(bn)(direct(x, 4))  # [T, B, ...], stride 0 in T: the layer runs on one step
        expected = twin(direct(x, 4).contiguous().flatten(0, 1)).unflatten(0, (4, 16))
    assert torch.equal(y, expected)
    torch.testing.assert_close(bn.running_mean, twin.running_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bn.running_var, twin.running_var, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layer, x, message", [
    (nn.Linear(64, 10), torch.rand(4, 64), r"TimeDistributed\(Linear\) takes a time-first tensor \[T, B, F\] .*; "
                                           r"got shape \(4, 64\)$"),
    (nn.Conv2d(1, 4, 3), torch.rand(1, 1, 8, 8), r"\(Conv2d\) takes a time-first tensor \[T, B, C, H, W\] .*got shape"),
    (nn.Conv2d(1, 4, 3), torch.rand(2, 1, 1, 1, 8, 8), r"got shape \(2, 1, 1, 1, 8, 8\)$"),
    (nn.Identity(), torch.rand(5), r"\(Identity\) takes a time-first tensor \[T, B, ...\] .*got shape \(5,\)$"),
    (nn.Linear(64, 10), [[0.0] * 64], r"got list$"),
])
def test_input_that_is_not_time_first_is_one_line(layer, x, message):
    """[B, 64] images given without an encoder ran as one sample of B*64 features: "mat1 and mat2 shapes cannot be
    multiplied (1x256 and 64x10)"; a [1, 1, 8, 8] batch through a conv ran as one unbatched image (no error at the
    layer, a wrong shape after it)."""
    with pytest.raises(ConfigError, match=message):
        TimeDistributed(layer)(x)


@pytest.mark.parametrize("bad", [5, "linear", None])
def test_a_wrapped_thing_that_is_no_module_is_refused_at_construction(bad):
    """TimeDistributed(5) was built and failed only when called ("'int' object is not callable")."""
    with pytest.raises(ConfigError, match=f"wraps a torch.nn.Module.*got {type(bad).__name__}"):
        TimeDistributed(bad)


def test_time_first_check_passes_exactly_the_shapes_each_layer_takes():
    """The check's fast path (the dimension count first) passes what the rule passes and refuses the rest: a
    ``Conv2d`` exactly 5 dimensions, a ``Linear`` (and a subclass) 3 or more, any other layer 2 or more, and no
    tensor at all for none."""
    class Dense(nn.Linear):
        pass

    layers = {nn.Conv2d(1, 1, 1): lambda n: n == 5, nn.Linear(1, 1): lambda n: n >= 3,
              Dense(1, 1): lambda n: n >= 3, nn.Flatten(): lambda n: n >= 2, nn.AvgPool2d(1): lambda n: n >= 2}
    for layer, takes in layers.items():
        for n in range(7):
            x = torch.zeros((1,) * n)
            if takes(n):
                check_time_first(layer, x)
            else:
                with pytest.raises(ConfigError, match="takes a time-first tensor"):
                    check_time_first(layer, x)
        with pytest.raises(ConfigError, match="got list$"):
            check_time_first(layer, [1.0])

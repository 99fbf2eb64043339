"""Every wu2019 / lee2020 network trains one step at tiny width; the accuracy-vs-T command."""


import pytest
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.layers.event_frames import FrameEncoder
from deepspike.layers.readout import MembraneReadout
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods import get_method
from deepspike.methods.create import create_model
from deepspike.methods.rate_network import RateNetwork, as_weight_dtype, first_parameter
from deepspike.models import create_architecture, list_models
from deepspike.models.spec import Conv, Residual, sequence_shape
from deepspike.neurons import LIF

WU = sorted(e.name for e in list_models() if e.name.startswith("wu2019")) + ["stbp_mnist"]
LEE = sorted(e.name for e in list_models() if e.name.startswith("lee2020")) + ["lenet"]


def _one_step(name, method_name, options, input_shape):
    torch.manual_seed(0)
    method = get_method(method_name, options)
    arch = create_architecture(name, num_classes=10, input_shape=input_shape, width=0.05)
    model = method.build(arch)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x = 0.5 + 0.5 * torch.rand(2, *input_shape)
    if method_name == "stbp" and options.get("encoder") == "frames":
        x = (torch.rand(2, options["timesteps"], *input_shape) > 0.7).float()
    out = model(x)
    assert out.shape == (2, 10)
    loss = method.loss(out, torch.tensor([1, 7]))
    opt.zero_grad()
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    opt.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))  # it learned something


@pytest.mark.parametrize("name", WU)
def test_wu2019_nets_train_one_step_with_stbp(name):
    shape = (2, 12, 12) if name.endswith("events") else (3, 12, 12)
    options = {"timesteps": 2, "neunorm": True, "vote_group": 3, "threshold": 0.1}  # low threshold: tiny nets fire
    if name.endswith("events"):
        options["encoder"] = "frames"
    _one_step(name, "stbp", options, (1, 12, 12) if name == "stbp_mnist" else shape)


@pytest.mark.parametrize("name", LEE)
def test_lee2020_nets_train_one_step_with_spikebp(name):
    shape = (1, 16, 16) if name == "lenet" else (3, 32, 32) if name == "lee2020_vgg7" else (3, 16, 16)
    options = {"timesteps": 4, "leak": 0.95, "threshold": 0.1, "pool_threshold": 0.2, "init_kappa": 4.0}
    _one_step(name, "spikebp", options, shape)  # low thresholds so that the tiny nets fire


def test_lee2020_tables_by_hand():
    # ResNet7 (Table 4): 64C3-AP2-[128, 128s2 | 1x1 s2]-[256, 256s2 | 1x1 s2]-1024-10 on 32x32
    # -> 32 -> AP 16 -> 8 -> 4: 256 * 4 * 4 = 4096 features into the FC layer.
    arch = create_architecture("lee2020_resnet7")
    blocks = [layer for layer in arch.layers if isinstance(layer, Residual)]
    assert [b.shortcut[0].stride for b in blocks] == [2, 2]
    assert [b.shortcut[0].kernel_size for b in blocks] == [1, 1]
    convs = sum(isinstance(x, Conv) for x in arch.layers) + 2 * len(blocks)
    assert convs + 2 == 7  # seven trainable layers (skip convolutions not counted)
    assert sequence_shape(arch.layers[:-2], arch.input_shape) == (4096,)
    # VGG9 (Table 5): 7 convs + FC + output; 32 -> 16 -> 8 -> 4: 256 * 16 = 4096
    vgg9 = create_architecture("lee2020_vgg9")
    assert sum(isinstance(x, Conv) for x in vgg9.layers) == 7
    assert sequence_shape(vgg9.layers[:-2], vgg9.input_shape) == (4096,)


@pytest.mark.parametrize("method", ["stbp", "spikebp"])
def test_zero_time_steps_is_an_error_not_the_default(method):
    """``net(x, timesteps=0)`` once ran the default T (``timesteps or default``)."""
    net = get_method(method, {"timesteps": 3}).build(create_architecture("scnn_digits", num_classes=10)).eval()
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(ConfigError, match="T=0 must be an integer >= 1"):
        net(x, timesteps=0)
    assert net(x, timesteps=2).shape == net(x).shape == (2, 10)


def test_checkpointed_bptt_moves_batch_norm_running_stats_once_per_segment():
    """T = 4 in segments of 2, B = 2, one feature: frames t0 [1, 3], t1 [2, 6] | t2 [0, 0], t3 [4, 0]. Each
    segment's forward updates r <- (1 - 0.1) r + 0.1 s once (torch's BatchNorm: unbiased variance), the backward
    replay of the first segment not at all. By hand: segment stats (mean 3, var 14/3) then (mean 1, var 4);
    running_mean 0 -> 0.3 -> 0.37, running_var 1 -> 0.9 + 0.1 * 14/3 -> 0.9 * that + 0.4 = 1.63."""
    bn = nn.BatchNorm1d(1)
    body = nn.Sequential(TimeDistributed(nn.Flatten()), TimeDistributed(bn), LIF(decay=0.5, threshold=0.5))
    net = RateNetwork(FrameEncoder(), body, MembraneReadout(), timesteps=4).train()
    net.time_segment = 2
    frames = torch.tensor([[1.0, 3.0], [2.0, 6.0], [0.0, 0.0], [4.0, 0.0]])  # [T, B]
    net(frames.T.reshape(2, 4, 1, 1, 1)).sum().backward()
    assert bn.weight.grad is not None
    assert bn.running_mean.item() == pytest.approx(0.37, rel=1e-6)
    assert bn.running_var.item() == pytest.approx(0.9 * (0.9 + 0.1 * 14 / 3) + 0.4, rel=1e-6)
    assert int(bn.num_batches_tracked) == 2


@pytest.mark.parametrize("encoder", ["poisson", "direct"])
def test_float64_images_score_as_the_float32_ones(encoder):
    """A float32 net given float64 images stopped in its first layer ("expected scalar type Double but found Float");
    they are cast to the weights' dtype first, so the scores equal the float32 images' (the same Poisson draws)."""
    net = create_model("lenet", method="stbp", timesteps=3, encoder=encoder).eval()
    x = torch.rand(2, 1, 28, 28)
    torch.manual_seed(0)
    expected = net(x)
    torch.manual_seed(0)
    assert torch.equal(net(x.double()), expected)
    net.double()
    torch.manual_seed(0)
    assert net(x).dtype == torch.float64  # a float64 net takes float32 images too


def test_first_parameter_is_the_first_of_parameters():
    """``first_parameter`` (``as_weight_dtype``'s fast walk) finds what ``next(parameters(), None)`` finds: past a
    None parameter, parameterless and shared modules, in a nested dict, none at all, and through a cycle of modules;
    ``as_weight_dtype`` follows a net moved to float64 after its first call."""
    empty = nn.Module()
    empty.register_parameter("gone", None)
    shared = nn.Sequential(nn.ReLU(), nn.Flatten())
    later = nn.Linear(2, 3, bias=False)
    later.register_parameter("extra", nn.Parameter(torch.ones(1)))
    net = nn.Sequential(empty, shared, nn.ModuleDict({"b": nn.Identity(), "a": shared}), nn.Sequential(shared, later))
    cycle = nn.Sequential(nn.ReLU())
    cycle.append(cycle)
    for module in (net, later, nn.Sequential(shared, nn.Tanh()), cycle, net[3]):
        assert first_parameter(module) is next(module.parameters(), None)
    assert first_parameter(net) is later.weight
    x = torch.rand(4, 2)
    assert as_weight_dtype(net, x.double()).dtype == torch.float32
    net.double()
    assert as_weight_dtype(net, x).dtype == torch.float64

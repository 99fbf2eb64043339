"""Every wu2019 / lee2020 network trains one step at tiny width; the accuracy-vs-T command."""


import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.methods import get_method
from deepspike.models import create_architecture, list_models
from deepspike.models.spec import Conv, Residual, sequence_shape

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

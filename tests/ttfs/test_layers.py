"""TTFS layers and the network builder: end to end against the event-driven membrane simulation."""

import math

import numpy as np
import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.methods import get_method
from deepspike.methods.ttfs_network import TTFSConfig, build_ttfs_body, init_from_ann
from deepspike.models.spec import Architecture, Conv, Flatten, Linear, Pool, Residual
from deepspike.ttfs.layers import TTFSConv2d, TTFSDropout, TTFSLinear
from deepspike.ttfs.simulate import AvgPool, Dense, MaxPool, simulate
from deepspike.ttfs.simulate import Conv as SimConv

TINY = Architecture(
    "tiny",
    (Conv(3, 3, padding=1), Pool("max", 2), Conv(4, 3), Pool("avg", 2), Flatten(), Linear(6),
     Linear(3, act=False)),
    (1, 8, 8),
    3,
)


def _sim_layers(model):
    """The simulator's description of the built network, read off its modules (weights as float64)."""
    out = []
    for m in model.body:
        w = None if not hasattr(m, "weight") else m.weight.detach().double()
        b = None if getattr(m, "bias", None) is None else m.bias.detach().double()
        if isinstance(m, TTFSConv2d):
            out.append(SimConv(w, b, m.stride, m.padding))
        elif isinstance(m, TTFSLinear):
            out.append(Dense(w, b))
        elif type(m).__name__ == "TTFSMaxPool2d":
            out.append(MaxPool(m.kernel_size, m.stride))
        elif type(m).__name__ == "TTFSAvgPool2d":
            out.append(AvgPool(m.kernel_size, m.stride))
    return out


@pytest.mark.parametrize("method,kernel", [("ttfs", "exp"), ("stdbp", "relpsp")])
def test_built_network_equals_event_simulation(method, kernel):
    torch.manual_seed(0)
    m = get_method(method, {"kernel": kernel, "alpha": 2.0})
    model = m.build(TINY).eval()
    x = torch.rand(3, 1, 8, 8)
    x[x < 0.3] = 0.0
    with torch.no_grad():
        t_in = model.encoder(x)
        outs = []
        hooks = [mod.register_forward_hook(lambda _m, _i, o: outs.append(o.double())) for mod in model.body
                 if getattr(type(mod), "is_ttfs_layer", False)]
        got = model(x)
        for h in hooks:
            h.remove()
    sims = simulate(t_in.double(), _sim_layers(model), kernel=kernel, return_all=True)
    assert len(sims) == len(outs) == 6
    assert np.isfinite(sims[-1]).mean() > 0.5  # the check is not vacuous: outputs do spike
    for closed, sim in zip(outs, sims):
        closed = closed.numpy().reshape(sim.shape)
        assert np.array_equal(np.isfinite(closed), np.isfinite(sim))
        fin = np.isfinite(sim)
        np.testing.assert_allclose(closed[fin], sim[fin], rtol=2e-5, atol=2e-5)
    assert got.shape == (3, 3)


def test_layers_have_the_ttfs_marker_and_roles():
    model = get_method("ttfs", {}).build(TINY)
    roles = [type(m).ttfs_role for m in model.modules() if getattr(type(m), "is_ttfs_layer", False)]
    assert roles == ["neurons", "pool", "neurons", "pool", "neurons", "neurons"]
    assert [type(m).__name__ for m in model.neuron_layers()] == ["TTFSConv2d", "TTFSConv2d", "TTFSLinear",
                                                                  "TTFSLinear"]


def test_uniform_init_range_and_bias_flag():
    torch.manual_seed(1)
    layer = TTFSLinear(50, 20, bias=True, init_scale=8.0)
    bound = 8.0 / 51  # fan_in counts the bias input
    assert float(layer.weight.detach().min()) >= 0.0 and float(layer.weight.detach().max()) <= bound
    assert layer.weight_sums().shape == (20,)
    expected = layer.weight.sum(1) + layer.bias
    torch.testing.assert_close(layer.weight_sums(), expected)
    assert TTFSConv2d(2, 3, 3, bias=False).bias is None


def test_dropout_removes_spikes_only_in_training():
    torch.manual_seed(0)
    d = TTFSDropout(0.25)
    t = torch.rand(200, 50)
    out = d(t)
    dropped = torch.isinf(out)
    assert 0.2 < dropped.float().mean() < 0.3
    assert torch.equal(out[~dropped], t[~dropped])  # kept spikes are not rescaled
    assert torch.equal(d.eval()(t), t)
    with pytest.raises(ConfigError):
        TTFSDropout(1.0)


def test_residual_specs_are_rejected():
    arch = Architecture("res", (Conv(2, 3, padding=1), Residual((Conv(2, 3, padding=1),)), Flatten(),
                                Linear(2, act=False)), (1, 4, 4), 2)
    with pytest.raises(ConfigError, match="Residual"):
        build_ttfs_body(arch, TTFSConfig())


def test_init_from_ann_copies_weights_in_order():
    ann = get_method("ann", {}).build(TINY)
    model = get_method("stdbp", {}).build(TINY)
    n = init_from_ann(model, ann.state_dict())
    assert n == 4
    ann_w = [m.weight for m in ann.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    for layer, w in zip(model.neuron_layers(), ann_w):
        assert torch.equal(layer.weight, w)
    other = get_method("ann", {}).build(
        Architecture("o", (Flatten(), Linear(5), Linear(3, act=False)), (1, 8, 8), 3)
    )
    with pytest.raises(ConfigError, match="ANN initialisation"):
        init_from_ann(model, other.state_dict())


def test_silent_input_stays_silent_through_padding():
    # A conv neuron whose whole window is padding or silent input never fires (padding is not t = 0).
    layer = TTFSConv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    t = torch.full((1, 1, 3, 3), math.inf)
    t[0, 0, 0, 0] = 0.0
    out = layer(t)
    # exp kernel: one input of weight 1 never reaches theta = 1 (V -> 1 only as t -> inf)
    assert torch.isinf(out).all()


@pytest.mark.parametrize("make, message", [
    (lambda: TTFSLinear(3, 3, init_scale=math.nan), "init_scale must be a finite number > 0"),
    (lambda: TTFSLinear(3, 3, init_scale=-1.0), "init_scale must be a finite number > 0"),
    (lambda: TTFSConv2d(1, 2, 3, init_scale=math.inf), "init_scale must be a finite number > 0"),
    (lambda: TTFSLinear(-1, 3), r"sizes must be whole numbers >= 1, got \(3, -1\)"),
    (lambda: TTFSLinear(3.5, 3), "sizes must be whole numbers >= 1"),
    (lambda: TTFSConv2d(1, 2, 0), "sizes must be whole numbers >= 1"),
])
def test_nonsense_layer_sizes_and_init_scales_are_refused(make, message):
    """Before: RuntimeError tracebacks from torch.empty / uniform_ ('to is out of bounds for float', 'negative
    dimension'), a TypeError for a size of 3.5, and a conv with kernel 0 that failed only at its first forward."""
    with pytest.raises(ConfigError, match=message):
        make()

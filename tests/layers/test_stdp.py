"""STDP layers in a rate-coded network (layers.stdp, method.stdp_layers): what they record, what they change, and
the one-line refusals."""

import copy

import pytest
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.layers.spiking_sequential import SpikingSequential
from deepspike.layers.stdp import StdpLearner
from deepspike.layers.stdp_rule import StdpRule, stdp_correlations
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods.create import create_model
from deepspike.neurons.modules import LIF

T = 4


def _net(layers=(0, 1), **options):
    torch.manual_seed(0)
    return create_model("scnn_digits", method="stbp", timesteps=T, stdp_layers=list(layers), **options)


def _images(batch=5):
    return torch.rand(batch, 1, 8, 8, generator=torch.Generator().manual_seed(3))


def _activity_by_hand(net, x):
    """The inputs and spikes of body layers 0-1 and 2-3, run module by module with plain copies of them (no learner
    hooks, nothing fused)."""
    body = copy.deepcopy(net.body)
    inputs = net.encoder(x, T)  # [T, B, 1, 8, 8]
    spikes1 = body[1](body[0](inputs))
    spikes3 = body[3](body[2](spikes1))
    return (inputs, spikes1), (spikes1, spikes3)


def test_stdp_layers_take_no_gradient_and_start_inside_the_bounds():
    net = _net(layers=(1,), stdp_w_min=-0.05, stdp_w_max=0.05)
    trainable = {name for name, p in net.named_parameters() if p.requires_grad}
    assert trainable == {"body.0.module.weight", "body.5.module.weight", "body.9.module.weight"}
    w = net.body[2].module.weight
    assert w.min() >= -0.05 and w.max() <= 0.05 and (w.abs() == 0.05).any()


def test_recorded_sums_are_the_rule_on_the_layers_activity():
    net = _net()
    x = _images()
    want = _activity_by_hand(net, x)
    net.train()
    net(x).sum().backward()
    for i, (pre, post) in enumerate(want):
        ltp, ltd = stdp_correlations(pre, post, net.stdp.pairs[i][0].module, net.stdp.rule)
        assert torch.equal(net.stdp._sums[i][0], ltp) and torch.equal(net.stdp._sums[i][1], ltd)
        assert ltp.abs().sum() > 0 and ltd.abs().sum() > 0


def test_apply_makes_the_rule_step_per_sample_and_position_and_starts_new_sums():
    net = _net(stdp_rate_plus=1e-4, stdp_rate_minus=2e-4)
    x = _images(batch=6)
    net.train()
    net(x).sum().backward()
    before = [p.module.weight.clone() for p, _ in net.stdp.pairs]
    others = {k: v.clone() for k, v in net.state_dict().items() if k not in ("body.0.module.weight",
                                                                             "body.2.module.weight")}
    sums = net.stdp._sums
    net.stdp.apply()
    assert net.stdp._positions == [64, 64]  # both maps 8 x 8: the mean is over 6 samples x 64 positions
    for (synapse, _), w, (ltp, ltd) in zip(net.stdp.pairs, before, sums, strict=True):
        want = w + (1e-4 * (1 - w) * ltp - 2e-4 * (w + 1) * ltd) / (6 * 64)  # soft bounds [-1, 1]
        torch.testing.assert_close(synapse.module.weight, want.clamp(-1, 1), rtol=0, atol=1e-7)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in others.items())
    assert net.stdp._sums == [None, None] and net.stdp._samples == 0
    after = [p.module.weight.clone() for p, _ in net.stdp.pairs]
    net.stdp.apply()  # nothing recorded: no step
    assert all(torch.equal(p.module.weight, w) for (p, _), w in zip(net.stdp.pairs, after, strict=True))


def test_two_calls_before_a_step_add_up():
    net = _net(layers=(0,))
    x = _images(batch=4)
    net.train()
    net(x[:2])
    net(x[2:])
    (pre_a, post_a), _ = _activity_by_hand(net, x[:2])
    (pre_b, post_b), _ = _activity_by_hand(net, x[2:])
    synapse, rule = net.stdp.pairs[0][0].module, net.stdp.rule
    want = [a + b for a, b in zip(stdp_correlations(pre_a, post_a, synapse, rule),
                                  stdp_correlations(pre_b, post_b, synapse, rule), strict=True)]
    assert all(torch.allclose(got, w) for got, w in zip(net.stdp._sums[0], want, strict=True))
    assert net.stdp._samples == 4


def test_evaluation_records_nothing_and_runs_unhooked():
    net = _net()
    x = _images()
    net.train()
    with torch.no_grad():
        net(x)
    assert net.stdp._sums == [None, None] and net.stdp._samples == 0
    net.eval()
    net(x)
    assert net.stdp._sums == [None, None]
    assert not net.body[1]._forward_hooks and not net.body[0]._forward_hooks  # the neuron runs fused again
    net.train()
    net(x)
    assert net.body[1]._forward_hooks and net.stdp._sums[0] is not None


def test_a_deep_copy_learns_on_its_own():
    net = _net(layers=(0,))
    twin = copy.deepcopy(net)
    twin.train()
    twin(_images())
    assert twin.stdp._sums[0] is not None and net.stdp._sums[0] is None
    twin.stdp.apply()
    assert not torch.equal(twin.body[0].module.weight, net.body[0].module.weight)


@pytest.mark.parametrize("layers, message", [
    ((4,), r"no synaptic layer 4; the net's linear and convolutional layers \(recurrent ones not counted\): "
           r"0 Conv2d\(1->16\), 1 Conv2d\(16->32\), 2 Conv2d\(32->32\), 3 Linear\(128->10\)$"),
    ((0, 0), "names a layer twice"),
    ((3,), r"synaptic layer 3 \(Linear\(128->10\)\) drives no spiking neuron directly"),  # the classifier
])
def test_bad_layer_choices_are_one_line_errors(layers, message):
    with pytest.raises(ConfigError, match=message) as e:
        _net(layers=layers)
    assert "\n" not in str(e.value)


def _sequential(*modules):
    body = SpikingSequential(*modules)
    return nn.Sequential(body), body


def test_only_a_layer_that_drives_its_neurons_directly_is_taken():
    conv = TimeDistributed(nn.Conv2d(1, 2, 3, padding=1, bias=False))
    net, body = _sequential(conv, TimeDistributed(nn.AvgPool2d(2)), LIF(0.5, 0.5))
    with pytest.raises(ConfigError, match="drives no spiking neuron directly"):
        StdpLearner.attach(net, body, (0,), StdpRule())
    norm = TimeDistributed(nn.BatchNorm2d(2))
    net, body = _sequential(conv, norm, nn.Sequential(LIF(0.5, 0.5), nn.Identity()))  # a BN; a wrapped neuron
    learner = StdpLearner.attach(net, body, (0,), StdpRule())
    assert learner.pairs[0][1] is body[2][0]
    net(torch.rand(3, 2, 1, 4, 4))
    assert learner._sums[0] is not None


@pytest.mark.parametrize("model, layers", [("ms_resnet18", (2,)), ("sdt", (3,))])
def test_a_layer_that_reaches_its_neurons_through_a_sum_or_a_pool_is_refused(model, layers):
    """MS-ResNet's second convolution of a unit drives the next unit's neuron only through the shortcut's sum; the
    Spike-driven Transformer's last stem convolution is pooled and added to a shortcut first."""
    with pytest.raises(ConfigError, match="drives no spiking neuron directly"):
        create_model(model, method="stbp", timesteps=2, norm="bn", stdp_layers=list(layers))


def test_a_recurrent_layers_weights_are_not_counted():
    net = create_model("rsnn", method="stbp", timesteps=3, input_shape=(20,), encoder="frames",
                       model_args={"hidden": [8, 6]})
    with pytest.raises(ConfigError, match=r"recurrent ones not counted\): 0 Linear\(6->10\)$"):
        create_model("rsnn", method="stbp", timesteps=3, input_shape=(20,), encoder="frames",
                     model_args={"hidden": [8, 6]}, stdp_layers=[1])
    assert net is not None


def test_an_empty_batch_adds_nothing():
    net = _net(layers=(0,))
    net.train()
    net(torch.rand(0, 1, 8, 8))
    assert net.stdp._samples == 0 and not net.stdp._sums[0][0].any()
    before = net.body[0].module.weight.clone()
    net.stdp.apply()
    assert torch.equal(net.body[0].module.weight, before)


def test_sums_are_float32_under_bfloat16_autocast():
    torch.manual_seed(0)
    body = SpikingSequential(TimeDistributed(nn.Linear(300, 200, bias=False)), LIF(0.5, 0.3))
    net = nn.Sequential(body)
    learner = StdpLearner.attach(net, body, (0,), StdpRule())
    x = (torch.rand(6, 64, 300) < 0.3).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        spikes = net(x)
    ltp, ltd = learner._sums[0]
    assert ltp.dtype == torch.float32
    want = stdp_correlations(x, spikes.float(), body[0].module, learner.rule)
    assert torch.equal(ltp, want[0]) and torch.equal(ltd, want[1])  # spike counts: exact in float32


def test_positions_of_a_linear_layer_on_tokens():
    """A linear layer on ``[T, B, L, F]`` (tokens) correlates every token: P = L."""
    body = SpikingSequential(TimeDistributed(nn.Linear(5, 4, bias=False)), LIF(0.5, 0.2))
    net = nn.Sequential(body)
    learner = StdpLearner.attach(net, body, (0,), StdpRule())
    net(torch.rand(3, 2, 7, 5))
    assert learner._positions == [7]

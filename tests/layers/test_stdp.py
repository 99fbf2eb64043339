"""STDP layers in a rate-coded network (layers.stdp, method.stdp_layers): what they record, what they change, and
the one-line refusals."""

import copy

import pytest
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.layers.spiking_sequential import SpikingSequential
from deepspike.layers.stdp import StdpLearner
from deepspike.layers.stdp_rule import StdpRule, apply_stdp, stdp_correlations
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
        apply_stdp(w, ltp, ltd, 6 * 64, net.stdp.rule)
        assert torch.equal(synapse.module.weight, w)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in others.items())
    assert net.stdp._sums == [None, None] and net.stdp._samples == 0
    net.stdp.apply()  # nothing recorded: no step
    assert all(torch.equal(p.module.weight, w) for (p, _), w in zip(net.stdp.pairs, before, strict=True))


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
    ((4,), r"no synaptic layer 4; the net has 4: 0 Conv2d\(1->16\), 1 Conv2d\(16->32\), 2 Conv2d\(32->32\), 3 "
           r"Linear\(128->10\)$"),
    ((0, 0), "names a layer twice"),
    ((3,), "drives no spiking neuron"),  # the classifier
])
def test_bad_layer_choices_are_one_line_errors(layers, message):
    with pytest.raises(ConfigError, match=message) as e:
        _net(layers=layers)
    assert "\n" not in str(e.value)


def test_a_layer_that_does_not_drive_its_neurons_directly_is_refused_at_the_first_batch():
    body = SpikingSequential(TimeDistributed(nn.Conv2d(1, 2, 3, padding=1, bias=False)),
                             TimeDistributed(nn.AvgPool2d(2)), LIF(0.5, 0.5))
    net = nn.Sequential(body)
    StdpLearner.attach(net, body, (0,), StdpRule())
    shapes = r"gives \[3, 2, 2, 4, 4\] but the neurons after it spike in \[3, 2, 2, 2, 2\]"
    with pytest.raises(ConfigError, match=shapes):
        net(torch.rand(3, 2, 1, 4, 4))

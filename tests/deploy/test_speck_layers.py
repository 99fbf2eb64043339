"""``speck_layers``: the net as Speck layers (no Sinabs needed); what has no Speck equivalent is one line."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.deploy.nir_modules import Integrator, NirNetwork, PerNeuronIntegrator
from deepspike.deploy.speck import speck_layers
from deepspike.layers.readout import MaxMembraneReadout, SpikeRateReadout
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods import get_method
from deepspike.methods.rate_network import RateNetwork
from deepspike.models import create_architecture
from deepspike.neurons.modules import IF
from deepspike.neurons.multi_spike import MultiSpikeLIF
from deepspike.neurons.params import NeuronParams


def _net(*body) -> RateNetwork:
    torch.manual_seed(0)
    return RateNetwork(nn.Identity(), nn.Sequential(*body), SpikeRateReadout(IF()), 1).eval()


def test_each_layer_is_one_linear_feeding_if_neurons():
    layers = speck_layers(_net(TimeDistributed(nn.Linear(8, 6)), IF(), TimeDistributed(nn.Linear(6, 3))), (8,))
    assert [tuple(layer["conv"].weight.shape[:2]) for layer in layers] == [(6, 8), (3, 6)]


def test_a_max_membrane_readout_is_refused_for_speck_not_for_a_nir_export():
    """``--target speck`` on a ``max_membrane`` run said "NIR export: unsupported readout MaxMembraneReadout ..."."""
    net = RateNetwork(nn.Identity(), nn.Sequential(TimeDistributed(nn.Linear(8, 3))), MaxMembraneReadout(), 1)
    with pytest.raises(ConfigError, match=r"^speck: the readout MaxMembraneReadout cannot map: "):
        speck_layers(net, (8,))


def test_a_refusal_after_a_folded_batch_norm_names_the_users_layer():
    """Refusals numbered the folded copy's layers: with the BatchNorm1d (body[1]) folded away, the MaxPool1d at
    body[3] of the user's net was "layer 2"."""
    net = _net(TimeDistributed(nn.Linear(8, 6)), TimeDistributed(nn.BatchNorm1d(6)), IF(), nn.MaxPool1d(2))
    with pytest.raises(ConfigError, match=r"^speck: layer 3 \(MaxPool1d\) has no Speck equivalent"):
        speck_layers(net, (8,))


def test_two_synaptic_layers_in_a_row_are_refused_not_dropped():
    """The first of two linear layers without neurons between them was overwritten: a report of a net that fits
    without it."""
    net = _net(TimeDistributed(nn.Linear(8, 8)), TimeDistributed(nn.Linear(8, 6)), IF(),
               TimeDistributed(nn.Linear(6, 3)))
    with pytest.raises(ConfigError, match=r"^speck: layer 1 \(Linear\) follows another conv/linear layer"):
        speck_layers(net, (8,))


def test_neurons_without_reset_are_refused():
    """reset 'none' was mapped to Sinabs' subtraction."""
    net = _net(TimeDistributed(nn.Linear(8, 6)), IF(reset="none"), TimeDistributed(nn.Linear(6, 3)))
    with pytest.raises(ConfigError, match=r"has reset 'none'; Speck's neurons reset to zero or by subtraction"):
        speck_layers(net, (8,))


def _conv_net(conv: nn.Module, in_shape: tuple[int, ...], *after: nn.Module) -> tuple[RateNetwork, tuple[int, ...]]:
    """``conv -> IF -> *after -> flatten -> linear(3) -> IF`` on ``in_shape``, its linear sized to what reaches it."""
    features = nn.Sequential(conv, *after)(torch.zeros(1, *in_shape)).numel()
    return _net(TimeDistributed(conv), IF(), *(TimeDistributed(m) for m in after), TimeDistributed(nn.Flatten()),
                TimeDistributed(nn.Linear(features, 3))), in_shape


@pytest.mark.parametrize(("case", "message"), [
    (lambda: _conv_net(nn.Conv2d(1, 4, 3, stride=3), (1, 8, 8)), r"stride \(3, 3\) \(each 1, 2, 4, 8\)"),
    (lambda: _conv_net(nn.Conv2d(1, 2, (3, 5)), (1, 8, 8)), r"kernel 3 x 5"),  # was a ValueError
    (lambda: _conv_net(nn.Conv2d(1, 2, 17), (1, 20, 20)), r"kernel 17 x 17 \(square, at most 16 x 16\)"),
    (lambda: _conv_net(nn.Conv2d(1, 2, 3, padding=9), (1, 8, 8)), r"padding \(9, 9\) of mode 'zeros' \(0 to 7 per"),
    (lambda: _conv_net(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), (1, 8, 8)), r"of mode 'reflect'"),
    (lambda: _conv_net(nn.Conv2d(1, 4, 3, dilation=2), (1, 8, 8)), r"dilation \(2, 2\), groups 1 \(Speck has neither"),
    (lambda: _conv_net(nn.Conv2d(2, 4, 3, groups=2), (2, 8, 8)), r"dilation \(1, 1\), groups 2 \(Speck has neither"),
    (lambda: _conv_net(nn.Conv2d(1, 1, 3, padding=1), (1, 256, 256), nn.AvgPool2d(4)),
     r"input map 256 x 256 \(at most 128 x 128\)"),
    (lambda: (_net(TimeDistributed(nn.Flatten()), TimeDistributed(nn.Linear(40, 4)), IF(),
                   TimeDistributed(nn.Linear(4, 3))), (1, 8, 5)), r"kernel 8 x 5"),  # a linear layer on an H x W map
])
def test_layers_beyond_a_cores_settings_are_refused_in_one_line(case, message):
    """Speck's published core settings (samna's Speck 2b page): square kernels up to 16 x 16, stride 1/2/4/8, padding
    0..7, no dilation or groups, maps up to 128 x 128. Before, each of these nets was reported to fit (the rectangular
    kernels raised Sinabs' ValueError)."""
    net, shape = case()
    with pytest.raises(ConfigError, match=rf"^speck: layer \d \((Conv2d|Linear)\).* does not fit a Speck core: .*"
                                          rf"{message}") as e:
        speck_layers(net, shape)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("pools", [(nn.AvgPool2d(3),), (nn.AvgPool2d(2), nn.AvgPool2d(4))])
def test_pooling_other_than_1_2_or_4_is_refused(pools):
    """Speck sum-pools 1:1, 1:2 or 1:4; a 3 x 3 pool, or 2 then 4 (8 in all), was reported to fit."""
    net, shape = _conv_net(nn.Conv2d(1, 4, 3, padding=1), (1, 24, 24), *pools)
    with pytest.raises(ConfigError, match=r"^speck: layer \d \(AvgPool2d\): Speck sum-pools by 1, 2, 4, this layer's "
                                          r"pooling is (3|8)$"):
        speck_layers(net, shape)


def test_layers_within_a_cores_settings_map():
    net, shape = _conv_net(nn.Conv2d(2, 4, 16, stride=8, padding=(7, 4)), (2, 128, 128), nn.AvgPool2d(2),
                           nn.AvgPool2d(2))
    first, second = speck_layers(net, shape)
    assert first["pool"] == 4 and first["in_shape"] == (2, 128, 128) and second["conv"].weight.shape[0] == 3


def test_a_spikebp_net_does_not_map_even_without_a_leak():
    """README listed spikebp 'with decay=1' among the nets that map; spikebp has no decay option, and its neurons
    (lee2020's LeakCorrectedLIF, pooling neurons, integrating output) have no Speck equivalent at any leak."""
    arch = create_architecture("mlp", num_classes=3, input_shape=(8,), hidden=[6])
    net = get_method("spikebp", {"timesteps": 2, "leak": 1.0}).build(arch).eval()
    with pytest.raises(ConfigError, match=r"^speck: layer \d \(LeakCorrectedLIF\) has no Speck equivalent"):
        speck_layers(net, (8,))


@pytest.mark.parametrize("readout", [Integrator(0.5), PerNeuronIntegrator(torch.tensor([0.5, 0.8, 0.9]))])
def test_an_imported_membrane_readout_is_named_as_one(readout):
    """An imported ``LI`` whose tau differs between neurons (``PerNeuronIntegrator``) got the generic "has no Speck
    equivalent" line, where the shared-decay ``Integrator`` got the membrane-readout one."""
    net = NirNetwork(nn.Sequential(TimeDistributed(nn.Linear(8, 6)), IF(), TimeDistributed(nn.Linear(6, 3)), readout),
                     {}, (8,))
    with pytest.raises(ConfigError, match=rf"^speck: layer 3 \({type(readout).__name__}\) cannot map: .*no membrane "
                                          "readout$"):
        speck_layers(net, (8,))


@pytest.mark.parametrize("divisor", [None, 1, 3])
def test_the_next_layer_sees_the_average_pool_through_speck_sum_pooling(divisor):
    """The mapped next layer on Speck's 2 x 2 SUM pool (window sums by reshape) gives what the net's own layer gives
    on its average pool. A ``divisor_override`` was ignored (next weights divided by k^2 = 4, not by the divisor):
    with divisor 1 the chip's next layer got a quarter of its input."""
    net, shape = _conv_net(nn.Conv2d(1, 4, 3, padding=1), (1, 8, 8), nn.AvgPool2d(2, divisor_override=divisor))
    _, second = speck_layers(net, shape)
    torch.manual_seed(1)
    spikes = (torch.rand(5, 4, 8, 8) < 0.5).float()
    window_sums = spikes.reshape(5, 4, 4, 2, 4, 2).sum((3, 5))
    pool, flatten, linear = (m.module for m in net.body[2:])
    want = linear(flatten(pool(spikes)))  # the net's own AvgPool2d -> Flatten -> Linear
    assert torch.allclose(second["conv"](window_sums.flatten(1)), want, atol=1e-5)


@pytest.mark.parametrize(("side", "refused"), [(7, True), (8, False)])
def test_a_ceil_mode_pool_with_partial_windows_is_refused(side, refused):
    """``ceil_mode=True`` on a 7 x 7 map averages the last row and column over partial windows (4 x 4 out); Speck's
    sum pooling drops them (3 x 3): it was mapped as if the same. On an 8 x 8 map the two agree."""
    net, shape = _conv_net(nn.Conv2d(1, 4, 3, padding=1), (1, side, side), nn.AvgPool2d(2, ceil_mode=True))
    if not refused:
        assert speck_layers(net, shape)[0]["pool"] == 2
        return
    with pytest.raises(ConfigError, match=r"^speck: layer 2 \(AvgPool2d\): ceil_mode pools the partial windows at the "
                                          r"edge of the 7 x 7 map; Speck's 2 x 2 sum pooling drops them"):
        speck_layers(net, shape)


def test_a_batch_norm_after_a_conv_is_folded_into_it_and_spikes_as_the_unfolded_net():
    """A conv -> BN -> IF net was refused ("layer 1 (BatchNorm2d) has no Speck equivalent") though the BN folds into
    the conv exactly in eval mode. The mapped layers (folded convs feeding IF neurons) spike as the net itself (its
    own ``nn.BatchNorm2d`` in eval mode), and the user's net keeps its BN."""
    conv, bn = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.3, 0.3), bn.running_var.uniform_(0.2, 2.0)
        bn.weight.uniform_(0.5, 2.0), bn.bias.uniform_(-0.5, 0.5)
    net = _net(TimeDistributed(conv), TimeDistributed(bn), IF(), TimeDistributed(nn.Flatten()),
               TimeDistributed(nn.Linear(144, 3)))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    first, second = speck_layers(net, (1, 8, 8))
    x = (torch.rand(6, 2, 1, 8, 8) < 0.6).float()  # [T, B, C, H, W]
    with torch.no_grad():
        hidden = net.body[:3](x)
        chip_hidden = IF(threshold=first["threshold"])(TimeDistributed(first["conv"])(x))
        chip_out = IF(threshold=second["threshold"])(TimeDistributed(second["conv"])(chip_hidden.flatten(2)))
        assert hidden.sum() > 0 and torch.equal(chip_hidden, hidden)
        assert torch.equal(chip_out, net.readout.neuron(net.body(x)))
    assert isinstance(net.body[1].module, nn.BatchNorm2d)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_a_net_with_no_layer_is_refused_not_reported_to_fit():
    """An empty imported net gave no layers, and speck_report said fits: true."""
    with pytest.raises(ConfigError, match=r"^speck: the net has no layer to map \(Speck runs conv/linear -> IF -> avg "
                                          r"pool layers\)$"):
        speck_layers(NirNetwork(nn.Sequential(), {}, (8,)), (8,))


def test_a_net_ending_in_a_linear_layer_is_refused_not_cut_short():
    """An imported net ``8 -> 6 (IF) -> 4 (IF) -> 3`` (no neurons after its last affine layer) was mapped as the
    8-6-4 net, the 3 outputs dropped without a word (Xylo's mapper refuses it so)."""
    net = NirNetwork(nn.Sequential(TimeDistributed(nn.Linear(8, 6)), IF(), TimeDistributed(nn.Linear(6, 4)), IF(),
                                   TimeDistributed(nn.Linear(4, 3))), {}, (8,))
    with pytest.raises(ConfigError, match=r"^speck: the net ends with a Linear layer and no IF neurons after it: a "
                                          r"Speck layer is one conv/linear feeding IF neurons$"):
        speck_layers(net, (8,))


def test_multi_spike_neurons_are_refused_for_speck():
    """A ``method.max_spikes`` IF neuron (``MultiSpikeLIF``, decay 1: a ``SpikingNeuron``) passed the Speck mapping
    as a one-spike IF layer; the chip's spikes per input event beyond one threshold are not confirmed, so it is
    refused, hidden or output layer; ``max_spikes`` 1 (the plain IF) still maps."""
    params = NeuronParams(decay=1.0, reset="subtract")
    hidden = _net(TimeDistributed(nn.Linear(4, 6)), MultiSpikeLIF(params, 5), TimeDistributed(nn.Linear(6, 3)))
    with pytest.raises(ConfigError, match=r"^speck: layer 0 fires up to 5 spikes a step \(method.max_spikes\); "
                                          r"deepspike maps one spike a step to Speck$"):
        speck_layers(hidden, (4,))
    out = RateNetwork(nn.Identity(), nn.Sequential(TimeDistributed(nn.Linear(4, 6)), IF(),
                                                   TimeDistributed(nn.Linear(6, 3))),
                      SpikeRateReadout(MultiSpikeLIF(params, 31)), 1)
    with pytest.raises(ConfigError, match=r"^speck: layer 1 fires up to 31 spikes a step"):
        speck_layers(out, (4,))
    one = _net(TimeDistributed(nn.Linear(4, 6)), MultiSpikeLIF(params, 1), TimeDistributed(nn.Linear(6, 3)))
    assert len(speck_layers(one, (4,))) == 2

"""``xylo_layers``: which nets map onto Xylo's dense layers, and the one-line refusals."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.deploy.nir_modules import Integrator, NirNetwork, PerNeuronIntegrator
from deepspike.deploy.xylo import neuron_settings, xylo_layers
from deepspike.layers.readout import MaxMembraneReadout
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods.rate_network import RateNetwork
from deepspike.neurons.modules import IF, LIF
from deepspike.neurons.params import NeuronParams
from deepspike.neurons.synaptic import SynapticLIF
from deepspike.ttfs.layers import TTFSLinear


@pytest.mark.parametrize("readout", [Integrator(0.5), PerNeuronIntegrator(torch.tensor([0.5, 0.8, 0.9]))])
def test_an_imported_membrane_readout_is_named_as_one(readout):
    """An imported ``LI`` whose tau differs between neurons (``PerNeuronIntegrator``) got the generic "Xylo runs
    dense nets ... only" line, where the shared-decay ``Integrator`` got the membrane-readout one."""
    net = NirNetwork(nn.Sequential(TimeDistributed(nn.Linear(8, 6)), IF(), TimeDistributed(nn.Linear(6, 3)), readout),
                     {}, (8,))
    with pytest.raises(ConfigError, match=r"^xylo: a membrane readout cannot map: Xylo's outputs are spiking neurons$"):
        xylo_layers(net)


def test_a_max_membrane_readout_is_refused_for_xylo_not_for_a_nir_export():
    """``--target xylo`` on a ``max_membrane`` run said "NIR export: unsupported readout MaxMembraneReadout (NIR has
    no max over time; ... method.readout=rate|membrane)": another export's name, and a readout that Xylo refuses."""
    net = RateNetwork(nn.Identity(), nn.Sequential(TimeDistributed(nn.Linear(8, 6)), IF(),
                                                   TimeDistributed(nn.Linear(6, 3))), MaxMembraneReadout(), 1)
    with pytest.raises(ConfigError, match=r"^xylo: the readout MaxMembraneReadout cannot map: the chip's outputs are "
                                          r"spiking neurons, read by their spike counts \(method.readout=rate\)$"):
        xylo_layers(net)


def test_a_ttfs_net_is_refused_for_the_chip_not_pointed_to_another_exporter():
    # before: "to_nir exports rate-coded networks; this is a TTFS network: use to_nir_ttfs" under --target xylo
    with pytest.raises(ConfigError, match=r"^xylo: a TTFS network cannot map: the chip runs rate-coded spiking nets$"):
        xylo_layers(nn.Sequential(TTFSLinear(8, 3)))


def test_a_dense_net_maps_to_linear_neuron_pairs():
    net = NirNetwork(nn.Sequential(TimeDistributed(nn.Linear(8, 6)), IF(), TimeDistributed(nn.Linear(6, 3)), IF()),
                     {}, (8,))
    assert [(lin.in_features, lin.out_features) for lin, _, _ in xylo_layers(net)] == [(8, 6), (6, 3)]


def test_a_net_ending_in_a_linear_layer_is_refused_not_cut_short():
    """An imported net ``8 -> 6 (IF) -> 4 (IF) -> 3`` (no neurons after its last affine layer) was mapped as the
    8-6-4 net, its 4 hidden IF neurons taken for the outputs and the 3 outputs dropped, without a word."""
    net = NirNetwork(nn.Sequential(TimeDistributed(nn.Linear(8, 6)), IF(), TimeDistributed(nn.Linear(6, 4)), IF(),
                                   TimeDistributed(nn.Linear(4, 3))), {}, (8,))
    with pytest.raises(ConfigError, match=r"^xylo: the net ends with a linear layer \(4 -> 3\) and no spiking "
                                          r"neurons after it: Xylo's outputs are spiking neurons$"):
        xylo_layers(net)


@pytest.mark.parametrize("syn_decay, want", [(0.5, (1, 0.5, 1.0)), (0.8, (2, 0.75, 3.0)), (0.9, (3, 0.875, 7.0)),
                                             (1.0, (15, 1 - 2 ** -15, 2 ** 15 - 1)), (0.2, (1, 1.0, 1.0))])
def test_a_synaptic_lif_maps_its_current_decay_to_dash_syn_and_its_threshold_and_bias_factors(syn_decay, want):
    """dash_syn = round(log2(1 / (1 - alpha))) (0.8: log2 5 = 2.32 -> 2), a = 1 - 2^-dash, threshold x a, bias x
    a / (1 - a); 0.2 rounds to dash 0 and maps as a LIF (dash_syn 1, factors 1), as a LIF itself does."""
    params = NeuronParams(decay=0.9, threshold=0.5)
    got, *rest = neuron_settings(SynapticLIF(params, syn_decay=syn_decay))
    assert got is params and rest[0] == want[0] and rest[1:] == pytest.approx(want[1:], rel=1e-12)
    assert neuron_settings(LIF(decay=0.9))[1:] == (1, 1.0, 1.0)

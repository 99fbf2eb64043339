"""Trained learnable neurons (PLIF's decay, a learnt threshold; ``neurons.learnable.LearnableLIF``) in NIR.

The node (``deploy.neurons.learnable_node``) by hand: tau = dt / (1 - k), r = c tau / dt, per channel spread over
the layer's neurons. The exported graph run by ``GraphSimulator.rate_coded`` and by the ONNX export gives the net's
own spikes, 400 steps: a per-layer PLIF (also read back by ``from_nir`` as a LIF with input scale c, and with
folded thresholds), and per-channel and per-neuron PLIF with learnt thresholds in a conv net (read back by
``from_nir`` as a ``HeterogeneousLIF``). Refusals: folding per-channel thresholds, a decay of 1 in some channels only.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.deploy.families import _drawn, sample_input
from deepspike.layers.activity_recorder import ActivityRecorder
from deepspike.layers.readout import SpikeRateReadout
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods.rate_network import RateNetwork
from deepspike.neurons.learnable import LearnableLIF
from deepspike.neurons.params import NeuronParams

nir = pytest.importorskip("nir")
from deepspike.deploy import GraphSimulator, from_nir, to_nir  # noqa: E402
from deepspike.deploy.neurons import learnable_node  # noqa: E402

DT = 1e-4


def _net(per_channel: bool, reset: str = "subtract") -> RateNetwork:
    torch.manual_seed(3)
    params = NeuronParams(decay=0.9, threshold=1.0, reset=reset)
    if per_channel:
        first = LearnableLIF(params, channels=4, learn_threshold=True)
        with torch.no_grad():
            first.w.copy_(torch.tensor([-2.0, -0.5, 0.3, 1.5]))  # tau from 1.2 to 8.4
            first.threshold.copy_(torch.tensor([0.6, 0.8, 1.0, 1.3]))
        layers = [TimeDistributed(_drawn(nn.Conv2d(1, 4, 3, padding=1))), first, TimeDistributed(nn.Flatten()),
                  TimeDistributed(_drawn(nn.Linear(256, 10)))]
    else:
        first = LearnableLIF(params, tau_init=3.0)
        layers = [TimeDistributed(_drawn(nn.Linear(64, 32))), first, TimeDistributed(_drawn(nn.Linear(32, 10)))]
    readout = SpikeRateReadout(LearnableLIF(params, tau_init=1.7))
    with torch.no_grad():  # PLIF scales its input by 1/tau: stronger weights, so that every layer fires
        weighted = [m.module for m in layers if isinstance(getattr(m, "module", None), nn.Linear | nn.Conv2d)]
        weighted[0].weight.mul_(6.0)
        weighted[1].weight.mul_(1.5)
    return RateNetwork(nn.Identity(), nn.Sequential(*layers), readout, timesteps=1).eval()


def _own_spikes(net: RateNetwork, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net.readout.neuron(net.body(x))


def test_node_by_hand():
    node = learnable_node(np.array([0.5, 0.75], np.float32), np.array([0.5, 0.25], np.float32),
                          np.array([1.0, 2.0], np.float32), "zero", (2, 1, 3), 1e-3)
    assert isinstance(node, nir.LIF) and node.tau.shape == (2, 1, 3)
    np.testing.assert_allclose(node.tau[:, 0, 0], [2e-3, 4e-3], rtol=1e-7)  # dt / (1 - k)
    np.testing.assert_allclose(node.r[:, 0, 0], [1.0, 1.0], rtol=1e-6)  # c tau / dt
    np.testing.assert_array_equal(node.v_threshold[:, 0, 0], [1.0, 2.0])
    no_leak = learnable_node(np.float32(1.0), np.float32(1.0), np.array([0.5, 0.7], np.float32), "zero", (2,), 1e-3)
    assert isinstance(no_leak, nir.IF) and no_leak.r.tolist() == [1000.0, 1000.0]
    gained = learnable_node(np.float32(1.0), np.array([0.5, 0.25], np.float32), np.float32(1.0), "zero", (2,), 1e-3)
    assert isinstance(gained, nir.IF) and gained.r.tolist() == [500.0, 250.0]  # c / dt: the IF's input gain kept


@pytest.mark.parametrize("fold", [False, True])
def test_per_layer_plif_runs_the_same_in_the_simulator_and_from_nir(fold):
    net = _net(per_channel=False)
    x = sample_input("dense", 400, batch=3)
    graph = to_nir(net, (64,), dt=DT, fold_thresholds=fold)
    ours = _own_spikes(net, x)
    assert 0.1 * ours.numel() < ours.sum() < 0.9 * ours.numel()  # neither silent nor saturated
    assert torch.equal(GraphSimulator.rate_coded(graph).run({"input": x})["output"].float(), ours)
    with torch.no_grad():
        assert torch.equal(from_nir(graph)(x), ours)


def test_per_channel_plif_with_learnt_thresholds_runs_the_same_in_the_simulator_from_nir_and_onnx():
    net = _net(per_channel=True)
    x = sample_input("conv", 400, batch=3)
    graph = to_nir(net, (1, 8, 8), dt=DT)
    ours = _own_spikes(net, x)
    assert 0.1 * ours.numel() < ours.sum() < 0.9 * ours.numel()  # neither silent nor saturated
    assert torch.equal(GraphSimulator.rate_coded(graph).run({"input": x})["output"].float(), ours)
    with torch.no_grad():  # per-channel constants: a HeterogeneousLIF (refused as "not the same for every neuron")
        assert torch.equal(from_nir(graph)(x), ours)
    pytest.importorskip("onnxruntime")
    from deepspike.deploy import nir_to_onnx, onnx_session, run_onnx

    assert torch.equal(run_onnx(onnx_session(nir_to_onnx(graph)), x), ours)


def test_per_neuron_plif_runs_the_same_in_the_simulator_from_nir_and_onnx():
    """``LearnableLIF(neurons=(4, 8, 8))``: each of the 256 neurons its own learnt tau and threshold, written as they
    are and read back by ``from_nir`` as a ``HeterogeneousLIF``."""
    net = _net(per_channel=True)
    params = net.body[1].fixed
    per_neuron = LearnableLIF(params, neurons=(4, 8, 8), learn_threshold=True)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        per_neuron.w.copy_(torch.empty(4, 8, 8).uniform_(-2.0, 1.5, generator=g))  # tau from 1.2 to 8.4
        per_neuron.threshold.copy_(torch.empty(4, 8, 8).uniform_(0.6, 1.3, generator=g))
    net.body[1] = per_neuron
    x = sample_input("conv", 400, batch=3)
    graph = to_nir(net, (1, 8, 8), dt=DT)
    assert graph.nodes["1_lif"].tau.shape == (4, 8, 8) and len(np.unique(graph.nodes["1_lif"].tau)) > 200
    ours = _own_spikes(net, x)
    assert 0.1 * ours.numel() < ours.sum() < 0.9 * ours.numel()  # neither silent nor saturated
    assert torch.equal(GraphSimulator.rate_coded(graph).run({"input": x})["output"].float(), ours)
    with torch.no_grad():
        assert torch.equal(from_nir(graph)(x), ours)
    pytest.importorskip("onnxruntime")
    from deepspike.deploy import nir_to_onnx, onnx_session, run_onnx

    assert torch.equal(run_onnx(onnx_session(nir_to_onnx(graph)), x), ours)


@pytest.mark.parametrize(("per_channel", "shape", "hidden"), [(False, (64,), 32), (True, (1, 8, 8), 256)])
def test_an_imported_plif_net_is_priced_as_the_net(per_channel, shape, hidden):
    """PLIF's ``h_t = k v_{t-1} + c x_t`` costs (2 MACs, 1 AC) per neuron and step (``LearnableLIF.update_ops``). Its
    import is ``Scale(c)`` then a neuron with decay k; the recorder priced only the neuron: (1 MAC, 1 AC), 2100 of
    4200 update MACs here for the dense net. By hand: 2 MACs and 1 AC for each of the (hidden + 10) x T x B neuron
    steps, in the net and in its import."""
    net = _net(per_channel=per_channel)
    x = sample_input("dense" if not per_channel else "conv", 25, batch=2)
    neuron_steps = (hidden + 10) * 25 * 2
    own, imported = nn.Sequential(net.body, net.readout.neuron), from_nir(to_nir(net, shape, dt=DT))
    for model in (own, imported):
        with torch.no_grad(), ActivityRecorder(model, operations=False) as recorder:
            model(x)
        layers = recorder.layers.values()
        assert sum(r.update_macs for r in layers) == 2 * neuron_steps
        assert sum(r.update_acs for r in layers) == neuron_steps


@pytest.mark.parametrize("threshold", [-0.3, 0.0])
def test_folding_a_learnt_threshold_that_is_not_positive_is_refused(threshold):
    """h / th >= 1 <=> h >= th only for th > 0. A per-layer threshold learnt down to -0.3 was folded anyway: the
    graph's output gave 0 spikes where the net gives 2714 (of 3000) on this input; 0 divided the weights by zero
    (inf, refused later by the reader as "weight holds NaN or inf"). Unfolded, the graph gives the net's spikes."""
    net = _net(per_channel=False)
    with torch.no_grad():
        net.body[1].threshold = nn.Parameter(torch.tensor(threshold))
    with pytest.raises(ConfigError, match=f"which must be > 0; this net learnt {threshold:g}: export it without "
                                          "folding"):
        to_nir(net, (64,), dt=DT, fold_thresholds=True)
    x = sample_input("dense", 100, batch=3)
    graph = to_nir(net, (64,), dt=DT)
    ours = _own_spikes(net, x)
    assert ours.sum() > 0 and torch.equal(GraphSimulator.rate_coded(graph).run({"input": x})["output"].float(), ours)
    with torch.no_grad():  # from_nir refused the file: "neuron threshold=-0.3 must be a finite number > 0"
        assert torch.equal(from_nir(graph)(x), ours)


def test_refusals():
    with pytest.raises(ConfigError, match="learnt one per channel: export it without folding"):
        to_nir(_net(per_channel=True), (1, 8, 8), fold_thresholds=True)
    per_neuron = _net(per_channel=True)  # the message said 'one per channel' for one threshold per neuron too
    per_neuron.body[1] = LearnableLIF(per_neuron.body[1].fixed, neurons=(4, 8, 8), learn_threshold=True)
    with torch.no_grad():
        per_neuron.body[1].threshold[0, 0, 0] = 0.5
    with pytest.raises(ConfigError, match="learnt one per neuron: export it without folding"):
        to_nir(per_neuron, (1, 8, 8), fold_thresholds=True)
    with pytest.raises(ConfigError, match="decay must lie below 1 in every channel"):
        learnable_node(np.array([0.5, 1.0]), np.ones(2), np.ones(2), "zero", (2,), 1e-3)

"""What an exported graph says about itself (dt, reset mode, input coding) and what the importer assumes
when a graph (another tool's) does not say it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")
from deepspike.coding import rate_bipolar  # noqa: E402
from deepspike.coding.encoder import InputEncoder  # noqa: E402
from deepspike.core.errors import ConfigError  # noqa: E402
from deepspike.deploy import from_nir, to_nir, write_nir  # noqa: E402
from deepspike.deploy.families import build, reference_spikes, sample_input  # noqa: E402
from deepspike.deploy.nir_sim import GraphSimulator  # noqa: E402
from deepspike.layers.readout import SpikeRateReadout  # noqa: E402
from deepspike.layers.time_distributed import TimeDistributed  # noqa: E402
from deepspike.methods import get_method  # noqa: E402
from deepspike.methods.converted_network import SignedPoissonEncoder  # noqa: E402
from deepspike.methods.rate_network import RateNetwork  # noqa: E402
from deepspike.models import create_architecture  # noqa: E402
from deepspike.neurons.modules import IF, SpikingNeuron  # noqa: E402
from deepspike.neurons.state_quant import StateQuant  # noqa: E402


def _plain(meta):
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in meta.items()}


def _neurons(net):
    return [m for m in net.modules() if isinstance(m, SpikingNeuron)]


def test_node_metadata_carries_dt_reset_and_coding_through_a_file(tmp_path):
    model = build("conv", "LIF", "subtract")
    g = nir.read(str(write_nir(to_nir(model, (1, 8, 8), dt=1e-3), tmp_path / "m.nir")))
    inp = g.nodes["input"].metadata
    assert inp["coding"] in ("Identity", b"Identity") and float(inp["dt"]) == 1e-3
    lifs = [n for n in g.nodes.values() if isinstance(n, nir.LIF)]
    assert len(lifs) == 2
    for n in lifs:
        assert float(n.metadata["dt"]) == 1e-3 and n.metadata["reset"] in ("subtract", b"subtract")
        assert float(n.metadata["decay"]) == pytest.approx(0.9)


def test_a_delta_coded_net_says_so_with_its_settings(tmp_path):
    net = get_method("stbp", {"encoder": "delta", "delta_mode": "level", "delta_threshold": 0.3,
                              "delta_off_spikes": False}).build(
        create_architecture("rsnn", num_classes=3, input_shape=(5,), hidden=[4]))
    g = nir.read(str(write_nir(to_nir(net, (5,)), tmp_path / "d.nir")))
    meta = _plain(g.nodes["input"].metadata)
    assert meta["coding"] == "delta" and meta["delta_mode"] == "level" and float(meta["delta_threshold"]) == 0.3
    assert int(meta["delta_off_spikes"]) == 0 and _plain(g.metadata)["delta_mode"] == "level"


@pytest.mark.parametrize("fold", [False, True])
def test_quantised_membranes_survive_a_file_and_threshold_folding(tmp_path, fold):
    torch.manual_seed(0)
    net = get_method("stbp", {"state_bits": 3, "state_high": 0.5, "threshold": 0.6, "timesteps": 6}).build(
        create_architecture("scnn_digits", num_classes=10)).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3)  # an output layer that fires
    g = nir.read(str(write_nir(to_nir(net, (1, 8, 8), fold_thresholds=fold), tmp_path / "q.nir")))
    back = from_nir(g)
    assert {m.params.state_quant for m in _neurons(back)} == {StateQuant(3, 0.0, 0.5)}
    x = torch.rand(6, 5, 1, 8, 8)  # [T, B, C, H, W], the direct encoder's series
    spikes = reference_spikes(net, x)
    assert torch.equal(back(x), spikes) and spikes.sum() > 20
    float_net = get_method("stbp", {"threshold": 0.6, "timesteps": 6}).build(
        create_architecture("scnn_digits", num_classes=10)).eval()
    float_net.load_state_dict(net.state_dict())
    assert not torch.equal(reference_spikes(float_net, x), spikes)  # the quantisation shows in the output
    simulated = GraphSimulator.rate_coded(g).run({"input": x.double()})["output"]  # the float64 simulator
    assert torch.equal(simulated.float(), spikes)


@pytest.mark.parametrize("meta", [{"state_bits": "four"}, {"state_bits": np.array([4, 5])}, {"state_bits": 4.7},
                                  {"state_bits": 4, "state_low": "x"}, {"state_bits": 40}])
def test_bad_membrane_quantisation_metadata_is_one_line(meta):
    g = to_nir(build("dense", "LIF", "zero"), (64,))
    lif = next(n for n in g.nodes.values() if isinstance(n, nir.LIF))
    lif.metadata.update(meta)
    with pytest.raises(ConfigError, match="^NIR import: bad membrane quantisation in a node's metadata"):
        from_nir(g)


def test_dt_from_node_metadata_when_the_graph_has_none():
    # tau = dt / (1 - decay) was written for dt = 1e-3; read back with another dt the decay would be wrong:
    # decay = 1 - dt / tau = 1 - 1e-4 / (1e-3 / 0.1) = 0.99 instead of 0.9
    model = build("dense", "LIF", "zero")
    g = to_nir(model, (64,), dt=1e-3)
    g.metadata = {}
    decays = [m.params.decay for m in _neurons(from_nir(g))]
    assert decays == pytest.approx([0.9, 0.9])
    x = sample_input("dense", 50)
    with torch.no_grad():
        assert torch.equal(from_nir(g)(x), reference_spikes(model, x))


def test_graph_without_any_metadata_means_dt_1e4_and_reset_to_zero():
    model = build("dense", "LIF", "subtract")
    g = to_nir(model, (64,), dt=1e-4)
    g.metadata = {}
    for node in g.nodes.values():
        node.metadata = {}
    net = from_nir(g)
    assert [m.params.reset for m in _neurons(net)] == ["zero", "zero"]
    assert net.metadata["dt"] == 1e-4
    assert [m.params.decay for m in _neurons(net)] == pytest.approx([0.9, 0.9])
    # and NIR's strict v > threshold: the threshold moves to the next float32 above 1
    assert _neurons(net)[0].params.threshold == float(np.nextafter(np.float32(1.0), np.float32(2.0)))


def test_a_population_coded_net_says_so_with_its_settings_and_its_wider_input(tmp_path):
    net = get_method("stbp", {"encoder": "population", "population_size": 4, "population_low": -1.0,
                              "population_width": 0.5, "population_spikes": True}).build(
        create_architecture("rsnn", num_classes=3, input_shape=(5 * 4,), hidden=[4]))
    g = nir.read(str(write_nir(to_nir(net, (20,)), tmp_path / "p.nir")))
    meta = _plain(g.nodes["input"].metadata)
    assert meta["coding"] == "population" and int(meta["population_size"]) == 4
    assert float(meta["population_low"]) == -1.0 and float(meta["population_high"]) == 1.0
    assert float(meta["population_width"]) == 0.5 and int(meta["population_spikes"]) == 1
    assert list(g.nodes["input"].input_type["input"]) == [20]


def test_membrane_quantisation_metadata_holding_a_big_array_is_still_one_line():
    # the message showed the dict of values, and numpy prints a [3, 3] array over three lines
    g = to_nir(build("dense", "LIF", "zero"), (64,))
    lif = next(n for n in g.nodes.values() if isinstance(n, nir.LIF))
    lif.metadata.update(state_bits=np.ones((3, 3)), state_low=np.linspace(0, 1, 40))
    with pytest.raises(ConfigError) as error:
        from_nir(g)
    assert "\n" not in str(error.value) and "state_bits=an array of shape (3, 3)" in str(error.value)


@pytest.mark.parametrize(("encoder", "scale", "value"), [
    (InputEncoder("bipolar"), 1.0, 1.0),
    (SignedPoissonEncoder(2.5), 2.5, 1.0),
    (SignedPoissonEncoder(2.5, weighted=True), 2.5, 2.5),
])
def test_a_bipolar_coded_net_says_its_input_scale_and_spike_value(tmp_path, encoder, scale, value):
    """A converted net's bipolar encoder draws ``s_t = a sign(x) 1[U_t < |x| / c]``; the graph said only ``coding:
    bipolar`` (the three encoders here wrote the same metadata), so a reader could not redo the input. Now the Input
    node and the graph carry ``bipolar_scale`` c and ``bipolar_value`` a, and ``rate_bipolar(x / c) * a`` with the
    same draws is the encoder's own output."""
    net = RateNetwork(encoder, torch.nn.Sequential(TimeDistributed(torch.nn.Linear(4, 3))), SpikeRateReadout(IF()), 5)
    g = nir.read(str(write_nir(to_nir(net.eval(), (4,)), tmp_path / "b.nir")))
    for meta in (_plain(g.nodes["input"].metadata), _plain(g.metadata)):
        assert float(meta["bipolar_scale"]) == scale and float(meta["bipolar_value"]) == value
    x = torch.tensor([[-3.0, -0.5, 0.2, 1.7]])
    torch.manual_seed(1)
    ours = encoder(x, 200)
    torch.manual_seed(1)
    assert torch.equal(ours, rate_bipolar(x / scale, 200) * value)

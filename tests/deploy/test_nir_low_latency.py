"""Low-latency converted neurons (``neurons.chunked_if.ChunkedIF``: start membrane ``v_0 = th/2``, threshold-valued
and signed spikes, per-channel thresholds) written with ``to_nir(..., low_latency=True)``, run by GraphSimulator and
by the ONNX export against the converted net itself.

* The metadata rules by hand on one neuron (``deploy.neurons.low_latency_rules``) through GraphSimulator: the
  membrane starts at th/2, a negative spike takes back an early one, spikes carry the threshold.
* A converted conv net (direct input, thresholds per channel in its first layer) with every setting, 48 steps:
  GraphSimulator and onnxruntime (both forms, every state starting at zero) give the net's output spikes exactly,
  threshold-valued and some of them negative.
* Refusals in one line: the same net without ``low_latency`` (other NIR tools would run another neuron), folding its
  thresholds, and bad metadata.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepspike.cli import main
from deepspike.core.errors import ConfigError
from deepspike.methods import get_method
from deepspike.models import create_architecture
from deepspike.neurons.chunked_if import ChunkedIF, chunked_neurons

nir = pytest.importorskip("nir")
from deepspike.deploy import GraphSimulator, to_nir  # noqa: E402
from deepspike.deploy.neurons import converted_if_node, low_latency_rules  # noqa: E402
from deepspike.deploy.nir_export import graph_outputs  # noqa: E402

DT = 1e-4


def _one_neuron_graph(**rules) -> nir.NIRGraph:
    node = converted_if_node(np.array(1.0), "subtract", rules.get("initial", 0.0), rules.get("weighted", False),
                             rules.get("signed", False), (1,), DT)
    return nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([1])}), "if": node,
                               "output": nir.Output(output_type={"output": np.array([1])})},
                        edges=[("input", "if"), ("if", "output")], metadata={"dt": DT}, type_check=False)


def _run(graph, currents: list[float]) -> list[float]:
    x = torch.tensor(currents, dtype=torch.float64).reshape(-1, 1, 1)
    return GraphSimulator.rate_coded(graph).run({"input": x})["output"].flatten().tolist()


def test_the_rules_by_hand_on_one_neuron():
    # th = 1, inputs 0.6, -0.9, 0.2, 0.2. Start at 0.5: h = 1.1 fires (v 0.1), h = -0.8 < 0 with one spike: -1
    # (v 0.2), h = 0.4, h = 0.6: no spike. Unsigned from 0: h = 0.6, -0.3, -0.1, 0.1: silent.
    assert _run(_one_neuron_graph(initial=0.5, signed=True), [0.6, -0.9, 0.2, 0.2]) == [1.0, -1.0, 0.0, 0.0]
    assert _run(_one_neuron_graph(), [0.6, -0.9, 0.2, 0.2]) == [0.0, 0.0, 0.0, 0.0]
    graph = _one_neuron_graph(initial=0.5, weighted=True)
    graph.nodes["if"].v_threshold = np.full(1, 2.0, np.float32)  # start at 1.0; 1.0 + 1.2 fires, carrying 2
    assert _run(graph, [1.2, 0.1]) == [2.0, 0.0]


def _converted_net():
    torch.manual_seed(4)
    arch = create_architecture("scnn_digits", num_classes=10, input_shape=(1, 8, 8), width=1.0)
    options = {"timesteps": 48, "reset": "subtract", "encoding": "direct", "initial_membrane": 0.5,
               "spike_value": "threshold", "signed": True, "thresholds": [0.6, 0.5, 0.4, 0.3]}
    model = get_method("converted", options).build(arch).eval()
    first = chunked_neurons(model)[0]
    channels = first_channels(model)
    first.set_channel_thresholds(torch.linspace(0.3, 0.9, channels))
    return model


def first_channels(model) -> int:
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    return conv.out_channels


def test_a_converted_net_with_every_setting_runs_the_same_in_the_simulator_and_onnxruntime():
    model = _converted_net()
    image = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    x = image.unsqueeze(0).expand(48, *image.shape).contiguous()  # direct input: the image every step
    ours, spiking = graph_outputs(model, x)
    graph = to_nir(model, (1, 8, 8), low_latency=True)
    meta = graph.nodes["1_if"].metadata
    assert (meta["initial"], meta["weighted"], meta["signed"]) == (0.5, True, True)
    assert len(set(np.asarray(graph.nodes["1_if"].v_threshold)[:, 0, 0].tolist())) > 1  # per channel
    sim = GraphSimulator.rate_coded(graph).run({"input": x.double()})["output"].float()
    th = float(chunked_neurons(model)[-1].threshold)
    assert spiking and (ours == th).any() and (ours == -th).any()  # threshold-valued spikes, some of them negative
    assert torch.equal(sim, ours)
    pytest.importorskip("onnxruntime")
    from deepspike.deploy import nir_to_onnx, onnx_session, run_onnx

    for form in ("step", "sequence"):
        assert torch.equal(run_onnx(onnx_session(nir_to_onnx(graph, form=form)), x), ours)


def test_refusals():
    model = _converted_net()
    with pytest.raises(ConfigError, match=r"\(export --onnx writes it\)"):
        to_nir(model, (1, 8, 8))
    with pytest.raises(ConfigError, match="keeps its thresholds; export it without folding"):
        to_nir(model, (1, 8, 8), fold_thresholds=True, low_latency=True)
    graph = _one_neuron_graph(initial=0.5)
    graph.nodes["if"].metadata["initial"] = 1.5
    with pytest.raises(ConfigError, match="expected a fraction in"):
        low_latency_rules(graph.nodes["if"])
    graph.nodes["if"].metadata.update(initial=0.5, signed=True, reset="zero")
    with pytest.raises(ConfigError, match="must reset by subtraction"):
        GraphSimulator.rate_coded(graph)


def test_a_converted_neuron_without_reset_runs_as_the_graph_says():
    # ChunkedIF(reset="none"): v_t = h_t, as for every neuron. Its inference loop subtracted the threshold after each
    # spike (0, 1, 0, 1 for a constant 0.6 from 0, where neuron_multistep gives 0, 1, 1, 1), so the IF node written
    # for it (metadata reset "none") and the ONNX model disagreed with the neuron they were written from
    th = torch.tensor([0.5, 0.8, 1.0, 1.3])
    neuron = ChunkedIF(1.0, "none", initial=0.5, weighted=True)
    neuron.set_channel_thresholds(th)
    x = torch.rand(12, 3, 4, generator=torch.Generator().manual_seed(7)) * 1.2 - 0.3
    with torch.no_grad():
        ours = neuron(x)
    node = converted_if_node(th.numpy(), "none", 0.5, True, False, (4,), DT)
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([4])}), "if": node,
                                "output": nir.Output(output_type={"output": np.array([4])})},
                         edges=[("input", "if"), ("if", "output")], metadata={"dt": DT}, type_check=False)
    sim = GraphSimulator.rate_coded(graph).run({"input": x.double()})["output"].float()
    assert (ours != 0).sum() > 12 and torch.equal(sim, ours)


@pytest.mark.parametrize("meta", [{"initial": np.linspace(0.0, 0.9, 40)}, {"weighted": np.ones((3, 3), bool)},
                                  {"initial": "0.5"}, {"signed": np.int64(1)}, {"initial": True}])
def test_bad_low_latency_metadata_in_a_file_is_one_line(tmp_path, capsys, meta):
    # numpy printed a long or 2-D array over several lines inside the message
    graph = _one_neuron_graph(initial=0.5, weighted=True, signed=True)
    graph.nodes["if"].metadata.update(meta)
    source = tmp_path / "bad.nir"
    nir.write(str(source), graph)
    assert main(["export", str(source), "--onnx", str(tmp_path / "bad.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected a fraction in [0, 1) and two true/false flags" in err
    assert not (tmp_path / "bad.onnx").exists()


def test_a_whole_number_start_of_zero_read_from_a_file_is_a_fraction():
    # a file written by hand with initial 0 (an integer: np.int64 read back) was refused as not 'a fraction in [0, 1)'
    graph = _one_neuron_graph(initial=0.5, signed=True)
    graph.nodes["if"].metadata["initial"] = np.int64(0)
    assert low_latency_rules(graph.nodes["if"]) == (0.0, False, True)
    assert _run(graph, [0.6, 0.5, -0.9]) == [0.0, 1.0, -1.0]  # h = 0.6, 1.1 fires (v 0.1), -0.8 < 0 after a spike


@pytest.mark.parametrize("rules", [{"initial": 0.5}, {"weighted": True}, {"signed": True}])
def test_from_nir_refuses_a_low_latency_neuron_it_would_run_as_a_plain_one(tmp_path, rules):
    # from_nir ignored the metadata and built a plain IF from v_0 = 0 with 0/1 spikes: for inputs 0.6, -0.9 the file
    # (start th/2, signed) fires [1, -1] and the imported net gave [0, 0], silently (deepspike eval scored another net)
    from deepspike.deploy import from_nir

    graph = _one_neuron_graph(**rules)
    with pytest.raises(ConfigError, match="node 'if' is a low-latency converted neuron .* GraphSimulator.rate_coded"):
        from_nir(graph)
    nir.write(str(tmp_path / "ll.nir"), graph)
    with pytest.raises(ConfigError, match="low-latency"):
        from_nir(tmp_path / "ll.nir")
    plain = from_nir(_one_neuron_graph())  # no low-latency metadata: imported as before
    assert plain(torch.tensor([0.6, 0.5]).reshape(2, 1, 1)).flatten().tolist() == [0.0, 1.0]

"""``deepspike export MODEL.nir --onnx PATH`` (``deploy.onnx_from_nir``): a NIR file that no run produced, written as
ONNX under either reading and checked against GraphSimulator reading it the same way; the refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import deepspike as ds
from deepspike.cli import main
from deepspike.core.errors import ConfigError
from deepspike.deploy.conformance import sample_spikes

nir = pytest.importorskip("nir")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from deepspike.deploy import GraphSimulator  # noqa: E402
from deepspike.deploy.onnx_run import onnx_session, run_onnx  # noqa: E402
from deploy.nir_files import DT, tiny_graph, write  # noqa: E402

READINGS = {"rate": ("euler", "currents"), "exact": ("exact", "areas")}


@pytest.mark.parametrize("reading", ["rate", "exact"])
def test_a_nir_file_becomes_an_onnx_model_that_reads_it_as_asked(tmp_path, capsys, reading):
    source = write(tiny_graph(), tmp_path / "tiny.nir")
    path = tmp_path / "tiny.onnx"
    assert main(["export", str(source), "--onnx", str(path), "--onnx-reading", reading]) == 0
    summary = json.loads(capsys.readouterr().out)["onnx"]
    assert summary["reading"] == reading and summary["form"] == "step" and summary["verified"]["equal"]
    x = sample_spikes((1, 8, 8), 60, batch=3, rate=0.4, seed=5)
    expected = GraphSimulator(tiny_graph(), DT, *READINGS[reading]).run({"input": x.double()})["output"].float()
    assert expected.sum() > 0 and torch.equal(run_onnx(onnx_session(path), x), expected)


def test_the_files_dt_can_be_replaced(tmp_path, capsys):
    source = write(tiny_graph(), tmp_path / "tiny.nir")
    assert main(["export", str(source), "--onnx", str(tmp_path / "a.onnx"), "--dt", "0.002",
                 "--onnx-form", "sequence"]) == 0
    assert json.loads(capsys.readouterr().out)["onnx"]["verified"]["equal"]
    assert "dt=0.002 s" in onnx.load(str(tmp_path / "a.onnx")).doc_string


def test_refusals_are_one_line_and_write_nothing(tmp_path, capsys):
    source = write(tiny_graph(), tmp_path / "tiny.nir")
    not_nir = tmp_path / "notes.txt"
    not_nir.write_text("hello")
    cases = [([str(source), "--onnx", str(tmp_path / "a.onnx"), "--check"], "not --check"),
             ([str(source), "--nir", str(tmp_path / "b.nir")], "with --onnx PATH only"),
             ([str(source), "--onnx", str(tmp_path / "c.onnx"), "--fold-thresholds"], "not --fold-thresholds"),
             ([str(not_nir), "--onnx", str(tmp_path / "d.onnx")], str(not_nir))]
    for args, message in cases:
        assert main(["export", *args]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "tiny.nir"]


def test_a_graph_with_two_inputs_is_written_and_its_check_says_why_it_was_skipped(tmp_path, capsys):
    ones = np.ones(3, dtype=np.float32)
    nodes = {"a": nir.Input(input_type={"input": np.array([3])}), "b": nir.Input(input_type={"input": np.array([3])}),
             "if": nir.IF(r=ones / DT, v_threshold=ones, v_reset=0 * ones),
             "output": nir.Output(output_type={"output": np.array([3])})}
    graph = nir.NIRGraph(nodes=nodes, edges=[("a", "if"), ("b", "if"), ("if", "output")], metadata={"dt": DT},
                         type_check=False)
    source = write(graph, tmp_path / "two.nir")
    assert main(["export", str(source), "--onnx", str(tmp_path / "two.onnx")]) == 0
    summary = json.loads(capsys.readouterr().out)["onnx"]
    assert "2 Input nodes" in summary["verified"]["skipped"] and set(summary["inputs"]) == {"a", "b"}


def test_a_small_file_declaring_a_huge_input_is_written_and_its_check_skipped_not_allocated(tmp_path, capsys):
    # a file of a few KB whose Input declares [1, 40000, 40000] made the check draw 100 steps of two samples: torch's
    # "can't allocate memory: you tried to allocate 1280000000000 bytes" traceback (exit 1), after the ONNX file
    one = np.ones(1, dtype=np.float32)
    side = np.array([1, 40000, 40000])
    nodes = {"input": nir.Input(input_type={"input": side}), "if": nir.IF(r=one / DT, v_threshold=one, v_reset=0 * one),
             "output": nir.Output(output_type={"output": side})}
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "if"), ("if", "output")], metadata={"dt": DT},
                         type_check=False)
    source = write(graph, tmp_path / "huge.nir")
    assert source.stat().st_size < 100_000
    assert main(["export", str(source), "--onnx", str(tmp_path / "huge.onnx")]) == 0
    skipped = json.loads(capsys.readouterr().out)["onnx"]["verified"]["skipped"]
    assert skipped.startswith("the check would take 7,152.6 GiB") and (tmp_path / "huge.onnx").is_file()


def test_a_graph_whose_input_and_output_are_named_like_a_state_pair_exports_and_verifies(tmp_path, capsys):
    """Input ``state.x`` and Output ``next.x``: the file was written, then the command exited 2 ('this model has 0'
    data inputs) and the summary listed the data input as a state."""
    ones = np.ones(3, dtype=np.float32)
    nodes = {"state.x": nir.Input(input_type={"input": np.array([3])}),
             "if": nir.IF(r=ones / DT, v_threshold=ones, v_reset=0 * ones),
             "next.x": nir.Output(output_type={"output": np.array([3])})}
    graph = nir.NIRGraph(nodes=nodes, edges=[("state.x", "if"), ("if", "next.x")], metadata={"dt": DT},
                         type_check=False)
    source = write(graph, tmp_path / "named.nir")
    assert main(["export", str(source), "--onnx", str(tmp_path / "named.onnx")]) == 0
    summary = json.loads(capsys.readouterr().out)["onnx"]
    assert summary["inputs"] == {"state.x": ["batch", 3]} and summary["outputs"] == {"next.x": ["batch", 3]}
    assert summary["states"] == {"state.if.v": ["batch", 3]}
    assert summary["verified"]["equal"] and summary["verified"]["spikes_ours"] > 0


def test_a_dt_of_true_for_a_nir_file_is_refused(tmp_path):
    # ds.export(file, onnx=..., dt=True) wrote a model stepping 1 s (bool is an int); a run's export (check_dt) too
    source = write(tiny_graph(), tmp_path / "tiny.nir")
    with pytest.raises(ConfigError, match=r"^ONNX export: dt = True is not a positive number of seconds"):
        ds.export(source, onnx=tmp_path / "a.onnx", dt=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.nir"]


@pytest.mark.parametrize(("fmt", "replay"), [("ttfs", "deepspike.deploy.ttfs_graph_times"),
                                             ("ttfs_window", "deepspike.deploy.nir_window_replay.replay_window_graph")])
def test_deepspikes_own_ttfs_graph_is_refused(tmp_path, capsys, fmt, replay):
    """A TTFS graph (fire-once neurons, bias-spike inputs) was written with the default 'rate' reading and not
    checked (its bias inputs made the check skip it); it is refused in one line, naming the replay of its format (a
    ttfs_window file was sent to ttfs_graph_times, which refuses it: 'needs a graph written by to_nir_ttfs')."""
    graph = tiny_graph()
    graph.metadata = {**graph.metadata, "format": fmt}
    source = write(graph, tmp_path / "ttfs.nir")
    assert main(["export", str(source), "--onnx", str(tmp_path / "t.onnx")]) == 2
    err = capsys.readouterr().err
    assert f"a TTFS graph (metadata format '{fmt}'), which --onnx does not run" in err
    assert err.strip().endswith(f"replay it with {replay}")
    assert not (tmp_path / "t.onnx").exists()


def test_an_li_trace_that_happens_to_be_zeros_and_ones_is_checked_as_a_membrane(tmp_path, capsys):
    """Forward Euler with tau = dt and r = 1 makes the LI trace its input, h[k] = x[k]: the sample spikes, all 0 or
    1. Whether the output is spikes was read from its values, so this trace was compared as spikes (entry by entry,
    exactly); it is read from the node feeding the Output, an LI: compared as a membrane by its largest difference.
    A spiking readout, also through a Delay line, is still compared as spikes."""
    from deepspike.deploy.onnx_from_nir import spiking_output

    ones = np.ones(3)  # float64: tau = dt exactly, decay 1 - dt/tau = 0
    nodes = {"input": nir.Input(input_type={"input": np.array([3])}),
             "li": nir.LI(tau=ones * DT, r=ones, v_leak=0 * ones),
             "output": nir.Output(output_type={"output": np.array([3])})}
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "li"), ("li", "output")], metadata={"dt": DT}, type_check=False)
    x = sample_spikes((3,), 10, seed=1)
    assert torch.equal(GraphSimulator(graph, DT, "euler", "currents").run({"input": x.double()})["output"].float(), x)
    assert main(["export", str(write(graph, tmp_path / "li.nir")), "--onnx", str(tmp_path / "li.onnx")]) == 0
    verified = json.loads(capsys.readouterr().out)["onnx"]["verified"]
    assert verified["membrane"] and verified["max_abs_difference"] == 0.0
    assert spiking_output(GraphSimulator(tiny_graph(), DT))
    delayed = tiny_graph()
    delayed.nodes["late"] = nir.Delay(delay=np.full(3, 2 * DT))
    delayed.edges = [e for e in delayed.edges if e[1] != "output"] + [("spk", "late"), ("late", "output")]
    assert spiking_output(GraphSimulator(delayed, DT)) and not spiking_output(GraphSimulator(graph, DT))

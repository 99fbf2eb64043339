"""``from_nir``'s own checks: the step ``dt`` (from the argument or the graph) is a positive finite number; LI and I
output nodes run as one Euler step of dt."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deepspike.core.errors import ConfigError

nir = pytest.importorskip("nir")
from deepspike.analysis.monitor import NetworkMonitor  # noqa: E402
from deepspike.deploy import from_nir, to_nir  # noqa: E402
from deepspike.methods import create_model  # noqa: E402
from deploy.nir_files import replace, tiny_graph, word_padded_conv, write  # noqa: E402


@pytest.mark.parametrize("dt", [0.0, -1e-3, float("nan"), float("inf")])
def test_a_bad_dt_argument_is_refused(dt):
    with pytest.raises(ConfigError) as e:
        from_nir(tiny_graph(), dt=dt)
    assert str(e.value) == f"NIR import: dt = {dt} is not a positive number of seconds (the dt argument)"


def test_a_dt_beyond_float32s_normal_numbers_is_refused_as_export_refuses_it():
    """export --dt refused a dt that is no normal float32 (check_dt) where eval FILE.nir --dt took any positive
    number: dt = 1e-300 ran (every leak factor 1, every input scaled to 0) and scored chance."""
    for dt in (1e-300, 1e300):
        shown = re.escape(f"{dt:g}")
        with pytest.raises(ConfigError, match=rf"^NIR import: dt = {shown} s is beyond float32's normal numbers .* "
                                              r"\(the dt argument\)$"):
            from_nir(tiny_graph(), dt=dt)
        graph = tiny_graph()
        graph.metadata["dt"] = dt
        with pytest.raises(ConfigError, match=r"beyond float32's normal numbers .* \(the graph's metadata\)$"):
            from_nir(graph)
    assert from_nir(tiny_graph(), dt=1.2e-38).metadata["dt"] == 1.2e-38  # float32's smallest normal is 1.1755e-38


@pytest.mark.parametrize(("dt", "shown"), [(True, "True"), ("0.1", "'0.1'"), ([1e-4], "[0.0001]"),
                                          (10**400, "(an integer of 1329 bits)")],
                         ids=["bool", "text", "list", "huge int"])
def test_a_dt_argument_that_is_not_a_number_is_refused_as_given(dt, shown):
    # before: True ran with dt = 1 s and '0.1' with 0.1 s, [1e-4] was reported as 'dt = nan', 10**400 an OverflowError
    with pytest.raises(ConfigError) as e:
        from_nir(tiny_graph(), dt=dt)
    assert str(e.value) == f"NIR import: dt = {shown} is not a positive number of seconds (the dt argument)"


def test_a_boolean_dt_in_the_metadata_is_refused_as_the_argument_is(tmp_path):
    """A file's graph metadata ``dt = True`` (or a node's, read when the graph says none) was read as 1 s and the net
    ran 10,000 times too coarse; it is refused in one line, naming where it was read. ``dt=False`` is no fallback."""
    graph = tiny_graph()
    graph.metadata["dt"] = True
    with pytest.raises(ConfigError) as e:
        from_nir(write(graph, tmp_path / "bool_dt.nir"))
    assert str(e.value) == (f"{tmp_path / 'bool_dt.nir'}: dt = True is not a positive number of seconds (the graph's "
                            "metadata)")
    del graph.metadata["dt"]
    graph.nodes["input"].metadata = {"dt": np.bool_(False)}
    with pytest.raises(ConfigError, match=r"^NIR import: dt = False is not a positive number of seconds \(the "
                                          r"metadata of node 'input'\)$"):
        from_nir(graph)
    graph.nodes["input"].metadata = {"dt": np.float32(2e-3)}
    assert from_nir(graph).metadata["dt"] == float(np.float32(2e-3))


@pytest.mark.parametrize(("source", "shown"), [(["model.nir"], "['model.nir']"), (None, "None"), (5, "5"),
                                              (b"model.nir", "b'model.nir'")], ids=["list", "None", "int", "bytes"])
def test_a_source_that_is_neither_a_path_nor_a_graph_is_refused_in_one_line(source, shown):
    # before: AttributeError "'list' object has no attribute 'metadata'" (also from ds.evaluate_nir([...], "digits"))
    with pytest.raises(ConfigError) as e:
        from_nir(source)
    assert str(e.value) == f"from_nir takes a NIR file path or a nir.NIRGraph, got {shown}"


@pytest.mark.parametrize(("stored", "dt"), [("0.001", 1e-3), (np.array(b"2.5e-4"), 2.5e-4), (" .5 ", 0.5)])
def test_a_dt_stored_as_the_text_of_a_number_is_read(tmp_path, stored, dt):
    """HDF5 may hold an attribute as text (str or bytes): a plain decimal number is read, as the file's numbers are."""
    assert from_nir(replace(write(tiny_graph(), tmp_path / "m.nir"), "metadata/dt", stored)).metadata["dt"] == dt


@pytest.mark.parametrize(("stored", "shown"), [(np.array(b"soon"), "'soon'"), ("1_0e-3", "'1_0e-3'"), ("nan", "'nan'"),
                                               ("0x1p-10", "'0x1p-10'"), ("-1e-3", "'-1e-3'"),
                                               (np.array([1e-3]), "array([0.001])")])
def test_a_bad_dt_in_the_file_is_refused_as_stored(tmp_path, stored, shown):
    """float() read "1_0e-3" as 0.01 s (python's digit grouping); the others were reported as "dt = nan"."""
    path = replace(write(tiny_graph(), tmp_path / "m.nir"), "metadata/dt", stored)
    with pytest.raises(ConfigError) as e:
        from_nir(path)
    assert str(e.value) == f"{path}: dt = {shown} is not a positive number of seconds (the graph's metadata)"


def test_a_nodes_dt_that_is_no_number_is_refused_naming_the_node():
    """A node's text "abc" was reported as "dt = nan ... (the graph's metadata)"."""
    graph = tiny_graph()
    del graph.metadata["dt"]
    graph.nodes["input"].metadata = {"dt": "abc"}
    with pytest.raises(ConfigError, match=r"^NIR import: dt = 'abc' is not a positive number of seconds \(the "
                                          r"metadata of node 'input'\)$"):
        from_nir(graph)


def test_the_graphs_dt_is_used(tmp_path):
    net = from_nir(write(tiny_graph(), tmp_path / "m.nir"))
    assert net.metadata["dt"] == 1e-4 and net.input_shape == (1, 8, 8)
    with torch.no_grad():
        assert net(torch.ones(3, 2, 1, 8, 8)).shape == (3, 2, 3)


def test_a_dt_argument_overrides_the_graphs():
    # the module docstring said dt "comes from the graph's metadata (else the argument)"; the argument wins: LI with
    # tau = 1e-2, R = 100 on the graph's dt 1e-4 decays by 0.99 and adds x, on dt = 1e-3 by 0.9 and adds 10 x
    ones = np.ones(2, dtype=np.float32)
    graph = _integrator_graph(nir.LI(tau=ones * 1e-2, r=ones * 100, v_leak=ones * 0))
    x = torch.tensor([[[1.0, 0.0]], [[0.0, 0.0]]])  # [T=2, B=1, 2]
    with torch.no_grad():
        assert torch.allclose(from_nir(graph)(x)[:, 0, 0], torch.tensor([1.0, 0.99]))
        assert torch.allclose(from_nir(graph, dt=1e-3)(x)[:, 0, 0], torch.tensor([10.0, 9.0]))
    assert from_nir(graph, dt=1e-3).metadata["dt"] == 1e-3


def _integrator_graph(node) -> nir.NIRGraph:
    """input [2] -> ``node`` (a NIR LI or I) -> output [2], dt = 1e-4."""
    nodes = {"input": nir.Input(input_type={"input": np.array([2])}), "v": node,
             "output": nir.Output(output_type={"output": np.array([2])})}
    return nir.NIRGraph(nodes=nodes, edges=[("input", "v"), ("v", "output")], metadata={"dt": 1e-4}, type_check=False)


E0_AT_0_E1_AT_2 = torch.tensor([[[1.0, 0.0]], [[0.0, 0.0]], [[0.0, 1.0]]])  # [T=3, B=1, 2]


def test_an_li_node_runs_as_its_euler_step():
    """LI ``tau dv/dt = -v + R I`` (tau = 1e-2, R = 100, v_leak = 0), Euler step dt = 1e-4: ``v <- (1 - dt/tau) v
    + (dt R / tau) I = 0.99 v + x``; by hand the trace of e0 at t=0, e1 at t=2 is [1, 0], [0.99, 0], [0.9801, 1]."""
    ones = np.ones(2, dtype=np.float32)
    net = from_nir(_integrator_graph(nir.LI(tau=ones * 1e-2, r=ones * 100, v_leak=ones * 0)))
    with torch.no_grad():
        trace = net(E0_AT_0_E1_AT_2)
    torch.testing.assert_close(trace[:, 0], torch.tensor([[1.0, 0.0], [0.99, 0.0], [0.9801, 1.0]]))


def test_an_li_node_with_a_leak_potential_is_refused():
    """``v_leak = 1`` drives the membrane to 1 without input; it was dropped and the trace stayed at 0."""
    ones = np.ones(2, dtype=np.float32)
    with pytest.raises(ConfigError, match=r"only v_leak = 0 is supported \(an LI node\)"):
        from_nir(_integrator_graph(nir.LI(tau=ones * 1e-2, r=ones * 100, v_leak=ones)))


@pytest.mark.parametrize("tau", [0.0, -1e-4, 0.5e-4])
def test_an_li_node_faster_than_the_step_is_refused_on_import(tau):
    """``tau < dt`` has no forward Euler step in [0, 1): ``tau = 0`` was a ZeroDivisionError traceback, ``tau =
    dt / 2`` and ``-dt`` a net that from_nir built and that failed on its first input ("readout decay=-1.0")."""
    ones = np.ones(2, dtype=np.float32)
    with pytest.raises(ConfigError, match=r"^NIR import: an LI node's tau = .* must be at least dt = 0.0001"):
        from_nir(_integrator_graph(nir.LI(tau=ones * tau, r=ones, v_leak=ones * 0)))


def test_an_li_node_with_tau_equal_to_dt_passes_its_input_through():
    """``tau = dt``: decay ``1 - dt/tau = 0``, gain ``R dt / tau = R``, so ``v_t = R x_t`` (R = 2); by hand the trace
    [2, 0], [0, 0], [0, 2] (it was refused when run: "readout decay=0.0 is outside (0, 1]")."""
    ones = np.ones(2, dtype=np.float64)
    net = from_nir(_integrator_graph(nir.LI(tau=ones * 1e-4, r=ones * 2, v_leak=ones * 0)))
    with torch.no_grad():
        trace = net(E0_AT_0_E1_AT_2)
    torch.testing.assert_close(trace[:, 0], torch.tensor([[2.0, 0.0], [0.0, 0.0], [0.0, 2.0]]))


def test_an_i_node_sums_its_input():
    """I ``dv/dt = R I`` with R = 1e4, dt = 1e-4: each step adds ``dt R x = x``; by hand the running sum
    [1, 0], [1, 0], [1, 1]."""
    net = from_nir(_integrator_graph(nir.I(r=np.full(2, 1e4, dtype=np.float32))))
    with torch.no_grad():
        trace = net(E0_AT_0_E1_AT_2)
    torch.testing.assert_close(trace[:, 0], torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0]]))


def test_an_imported_membrane_readout_is_priced_as_the_nets():
    """A membrane readout's output neurons integrate at every step, (0 MACs, 1 AC) each (``V_T = sum_t x_t``); its
    import is an ``Integrator`` whose updates the activity recorder left out (78 update ACs per sample for the net,
    48 for its import). By hand, per sample: T = 3 steps of 16 hidden LIF neurons at (1, 1) and 10 outputs at
    (0, 1)."""
    net = create_model("mlp", method="stbp", num_classes=10, input_shape=(1, 4, 4), model_args={"hidden": [16]},
                       timesteps=3, encoder="direct", readout="membrane").eval()
    x = torch.rand(2, 1, 4, 4)
    imported = from_nir(to_nir(net, (1, 4, 4)))
    with torch.no_grad(), NetworkMonitor(net) as own:
        net(x)
    with torch.no_grad(), NetworkMonitor(imported) as theirs:
        imported(x.unsqueeze(0).expand(3, -1, -1, -1, -1))  # direct coding: the image at every step, [T, B, ...]
    hand = (3 * 16, 3 * 16 + 3 * 10)
    for s in (own.summary(), theirs.summary()):
        assert (s["update_macs_per_sample"], s["update_acs_per_sample"]) == hand


def _scaled_graph(scale: bool, readout) -> nir.NIRGraph:
    """input [4] -> Affine -> (a NIR Scale node) -> IF [3] -> Affine -> ``readout`` (LI / I) [2], dt = 1e-4."""
    g = np.random.default_rng(2)
    ones = np.ones(3, np.float32)
    nodes = {"input": nir.Input(input_type={"input": np.array([4])}),
             "fc": nir.Affine(weight=g.normal(0.5, 0.5, (3, 4)).astype(np.float32), bias=np.zeros(3, np.float32)),
             **({"scale": nir.Scale(scale=np.array([0.5, 2.0, 1.5], np.float32))} if scale else {}),
             "if": nir.IF(r=ones * 1e4, v_threshold=ones, v_reset=0 * ones),
             "out": nir.Affine(weight=g.normal(0.0, 0.5, (2, 3)).astype(np.float32), bias=np.zeros(2, np.float32)),
             "v": readout, "output": nir.Output(output_type={"output": np.array([2])})}
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata={"dt": 1e-4}, type_check=False)


@pytest.mark.parametrize(("scale", "readout", "hand"), [
    # T = 5 steps per sample: 3 IF neurons at (0 MACs, 2 ACs) each; I with r dt = 1 at (0, 1) per output
    (False, nir.I(r=np.full(2, 1e4, np.float32)), (0, 5 * 3 * 2 + 5 * 2)),
    # a NIR Scale node: one product per value and step, 5 * 3 MACs (before: left out of the count)
    (True, nir.I(r=np.full(2, 1e4, np.float32)), (5 * 3, 5 * 3 * 2 + 5 * 2)),
    # an LI with an input gain r dt / tau = 2 (tau = 1e-3, r = 20): its decay and its gain, (2, 0) per output
    (True, nir.LI(tau=np.full(2, 1e-3, np.float32), r=np.full(2, 20.0, np.float32), v_leak=np.zeros(2, np.float32)),
     (5 * 3 + 5 * 2 * 2, 5 * 3 * 2)),
], ids=["i", "scale_node_i", "scale_node_gained_li"])
def test_an_imported_scale_node_and_a_readouts_gain_are_priced(scale, readout, hand):
    net = from_nir(_scaled_graph(scale, readout))
    x = (torch.rand(5, 2, 4, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    with torch.no_grad(), NetworkMonitor(net) as monitor:
        net(x)
    s = monitor.summary()
    assert (s["update_macs_per_sample"], s["update_acs_per_sample"]) == hand


@pytest.mark.parametrize("padding, kernel, dilation", [("same", (3, 5), (1, 1)), ("same", (3, 3), (2, 1)),
                                                       ("valid", (3, 5), (1, 1))])
def test_a_conv_padded_by_a_word_imports_as_torchs_own_padding(tmp_path, padding, kernel, dilation):
    """NIR allows padding "same" / "valid" (torch's meaning); the import refused it ('string padding ... is not
    supported'). Read from a file, the net equals torch's ``F.conv2d(padding=word)``."""
    graph, weight, bias = word_padded_conv(padding, kernel, dilation)
    net = from_nir(write(graph, tmp_path / "conv.nir"))
    x = torch.rand(3, 2, 1, 6, 7, generator=torch.Generator().manual_seed(1))
    expected = F.conv2d(x.flatten(0, 1), torch.tensor(weight, dtype=torch.float32),
                        torch.tensor(bias, dtype=torch.float32), padding=padding, dilation=dilation)
    with torch.no_grad():
        torch.testing.assert_close(net(x).flatten(0, 1), expected)


def test_a_non_spiking_readout_that_does_not_say_how_it_decodes_reads_its_membrane():
    """Another tool's LI / I readout and no metadata ``decode``: the net's metadata says ``membrane`` (it said nothing,
    and ``deepspike eval`` counted the trace as spikes); by hand, LI decay 0.5, gain 1: inputs [10, 0] then [-10, 3]
    leave the trace [5 - 10, 3] = [-5, 3] (class 1) where its sum over the steps is [5, 3] (class 0). A file's own
    decode, and a spiking readout, are left as they are."""
    ones = np.ones(2, dtype=np.float32)
    li = nir.LI(tau=ones * 2e-4, r=ones * 2, v_leak=ones * 0)
    net = from_nir(_integrator_graph(li))
    with torch.no_grad():
        trace = net(torch.tensor([[[10.0, 0.0]], [[-10.0, 3.0]]]))
    torch.testing.assert_close(trace[-1, 0], torch.tensor([-5.0, 3.0]))
    assert net.metadata == {"dt": 1e-4, "decode": "membrane"}
    assert from_nir(_integrator_graph(nir.I(r=ones))).metadata["decode"] == "membrane"
    said = _integrator_graph(li)
    said.metadata["decode"] = "rate"
    assert from_nir(said).metadata["decode"] == "rate"
    assert "decode" not in from_nir(tiny_graph()).metadata


def test_an_li_or_i_readout_with_per_neuron_constants_imports_and_runs_as_graphsimulator():
    """LI with tau = [2, 4] dt and r = [1, 3]: by hand (forward Euler, decay 1 - dt/tau = [0.5, 0.75], gain r dt/tau =
    [0.5, 0.75]) inputs [2, 4], [0, 0], [2, 4] leave [1, 3], [0.5, 2.25], [1.25, 4.6875]; I with r = [1, 2] / dt sums
    [x, 2x]. Both were refused ("tau must be the same for every neuron of a layer") though IF/LIF/CubaLIF with
    per-neuron constants import and GraphSimulator runs them."""
    from deepspike.deploy import GraphSimulator

    dt = 1e-4
    x = torch.tensor([[[2.0, 4.0]], [[0.0, 0.0]], [[2.0, 4.0]]])  # [T=3, B=1, 2]
    li = _integrator_graph(nir.LI(tau=np.array([2, 4]) * dt, r=np.array([1.0, 3.0]), v_leak=np.zeros(2)))
    i = _integrator_graph(nir.I(r=np.array([1.0, 2.0]) / dt))
    expected = {"li": torch.tensor([[1.0, 3.0], [0.5, 2.25], [1.25, 4.6875]]),
                "i": torch.tensor([[2.0, 8.0], [2.0, 8.0], [4.0, 16.0]])}
    for name, graph in (("li", li), ("i", i)):
        net = from_nir(graph)
        with torch.no_grad():
            torch.testing.assert_close(net(x)[:, 0], expected[name])
        simulated = GraphSimulator(graph, dt, "euler", "currents").run({"input": x.double()})["output"]
        torch.testing.assert_close(simulated[:, 0].float(), expected[name])
        assert net.metadata["decode"] == "membrane"


def test_integer_and_boolean_input_is_cast_to_the_weights_float_dtype():
    """Spike counts as uint8 / int64 and spikes as bool ended in torch's RuntimeError ("Input type (bool) and bias
    type (float) should be the same"); they are the same input as its float32 values, also for a float64 net."""
    net = from_nir(tiny_graph())
    x = (torch.rand((6, 2, 1, 8, 8), generator=torch.Generator().manual_seed(3)) < 0.4)
    with torch.no_grad():
        expected = net(x.float())
        assert 0 < expected.sum() < expected.numel()
        for kind in (torch.bool, torch.uint8, torch.int64):
            out = net(x.to(kind))
            assert out.dtype == torch.float32 and torch.equal(out, expected)
        assert net.double()(x).dtype == torch.float64


@pytest.mark.parametrize("kind", [torch.float64, torch.bfloat16, torch.float16])
def test_float_input_of_another_dtype_is_cast_to_the_weights_dtype(kind):
    """float64 (numpy's default, analog currents) and bfloat16 / float16 input ended in torch's "Input type (double)
    and bias type (float) should be the same"; it runs as its values in float32 (float64 rounded once), and float32
    input into a float64 net as float64."""
    net = from_nir(tiny_graph())
    x = torch.rand((6, 2, 1, 8, 8), generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 2.0
    with torch.no_grad():
        expected = net(x.to(kind).float())
        assert 0 < expected.sum() < expected.numel()
        out = net(x.to(kind))
        assert out.dtype == torch.float32 and torch.equal(out, expected)
        assert torch.equal(net.double()(x.to(kind).float()), net(x.to(kind).double()))


def test_complex_input_is_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"^NIR network input must be real numbers \[T, B, \.\.\.\], got a "
                                          r"torch.complex64 tensor$"):
        from_nir(tiny_graph())(torch.zeros((2, 1, 1, 8, 8), dtype=torch.complex64))

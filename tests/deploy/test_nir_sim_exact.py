"""GraphSimulator's default scheme (``integration="exact"``, ``signals="areas"``), the one ``ttfs_graph_times``
runs TTFS graphs with: by hand on one LIF neuron (where forward Euler fires differently), the same spikes when the
scheme is named as when it is left out, and CubaLIF refused under the two mixed schemes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from deepspike.coding.ttfs_input import TTFSInput
from deepspike.core.errors import ConfigError
from deepspike.methods.ttfs_network import TTFSNetwork
from deepspike.ttfs.layers import TTFSConv2d, TTFSLinear, TTFSMaxPool2d

nir = pytest.importorskip("nir")
from deepspike.deploy import GraphSimulator, to_nir_ttfs  # noqa: E402


def _one_lif(v_threshold: float) -> nir.NIRGraph:
    one = np.ones(1, dtype=np.float32)
    nodes = {"input": nir.Input(input_type={"input": np.array([1])}),
             "lif": nir.LIF(tau=one, r=one, v_leak=0 * one, v_threshold=v_threshold * one, v_reset=0 * one),
             "output": nir.Output(output_type={"output": np.array([1])})}
    return nir.NIRGraph(nodes=nodes, edges=[("input", "lif"), ("lif", "output")], type_check=False)


def test_exact_lif_by_hand_where_euler_differs():
    """Areas 0.6 at steps 0 and 1, tau = r = 1, dt = 0.5: V jumps by r a / tau = 0.6 and is tested at once, so
    V = 0.6 at step 0 and 0.6 e^{-0.5} + 0.6 = 0.9639 at step 1 (exact), 0.6 * 0.5 + 0.6 = 0.9 (Euler)."""
    x = torch.tensor([0.6, 0.6], dtype=torch.float64).reshape(2, 1, 1)
    assert 0.9 < 0.93 < 0.6 * math.exp(-0.5) + 0.6 < 0.97
    for th, exact, euler in ((0.93, [0.0, 1.0], [0.0, 0.0]), (0.97, [0.0, 0.0], [0.0, 0.0]),
                             (0.89, [0.0, 1.0], [0.0, 1.0])):
        assert GraphSimulator(_one_lif(th), 0.5).run({"input": x})["output"].reshape(-1).tolist() == exact
        out = GraphSimulator(_one_lif(th), 0.5, integration="euler").run({"input": x})["output"]
        assert out.reshape(-1).tolist() == euler


def test_an_affine_bias_is_a_current_so_each_step_of_areas_gets_bias_dt():
    """NIR's Affine bias is a constant current: with signals "areas" (the default) a step of dt = 0.1 receives the
    area b dt = 2 * 0.1 = 0.2, so an I node (r = 1, gain r per area) reads 0.2, 0.4, 0.6 from zero input; with
    "currents" (``rate_coded``: gain r dt, the bias held over the step) the same 0.2, 0.4, 0.6 (a bias of 2 per step
    of areas gave 2, 4, 6)."""
    one = np.ones(1, dtype=np.float32)
    nodes = {"input": nir.Input(input_type={"input": np.array([1])}),
             "fc": nir.Affine(weight=np.ones((1, 1), dtype=np.float32), bias=2 * one), "i": nir.I(r=one),
             "output": nir.Output(output_type={"output": np.array([1])})}
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "i"), ("i", "output")], type_check=False)
    x = torch.zeros(3, 1, 1, dtype=torch.float64)
    for sim in (GraphSimulator(graph, 0.1), GraphSimulator.rate_coded(graph, 0.1)):
        assert sim.run({"input": x})["output"].reshape(-1).tolist() == pytest.approx([0.2, 0.4, 0.6], rel=1e-6)


def test_an_li_node_relaxes_towards_its_v_leak():
    """``leak(v) = v_leak + (v - v_leak) e^{-dt/tau}`` ("exact", "areas": tested, then leaked): LI, tau = r = 1,
    v_leak = 0.5, dt = 0.5, zero input, V from 0: h = 0, 0.5 (1 - e^{-0.5}) = 0.19673, 0.5 (1 - e^{-1}) = 0.31606
    (a leak towards 0 kept 0)."""
    one = np.ones(1, dtype=np.float32)
    nodes = {"input": nir.Input(input_type={"input": np.array([1])}), "li": nir.LI(tau=one, r=one, v_leak=one / 2),
             "output": nir.Output(output_type={"output": np.array([1])})}
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "li"), ("li", "output")], type_check=False)
    out = GraphSimulator(graph, 0.5).run({"input": torch.zeros(3, 1, 1, dtype=torch.float64)})["output"]
    assert out.reshape(-1).tolist() == pytest.approx([0.0, 0.5 * (1 - math.exp(-0.5)), 0.5 * (1 - math.exp(-1))])


def test_a_neuron_resets_to_its_own_v_reset():
    """IF (r = 1: an area of 1 adds 1), v_threshold 1.05, v_reset [0.1, 0.0] per neuron, input 1 a step: V = 1, then
    2 (both fire, reset to 0.1 and 0.0), then 1.1 (fires) and 1.0 (does not): spikes [0, 0], [1, 1], [1, 0]."""
    two = np.ones(2, dtype=np.float32)
    nodes = {"input": nir.Input(input_type={"input": np.array([2])}),
             "if": nir.IF(r=two, v_threshold=1.05 * two, v_reset=np.array([0.1, 0.0], dtype=np.float32)),
             "output": nir.Output(output_type={"output": np.array([2])})}
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "if"), ("if", "output")], type_check=False)
    out = GraphSimulator(graph, 0.5).run({"input": torch.ones(3, 1, 2, dtype=torch.float64)})["output"]
    assert out.reshape(3, 2).tolist() == [[0.0, 0.0], [1.0, 1.0], [1.0, 0.0]]


def _ttfs_graph():
    torch.manual_seed(0)
    body = nn.Sequential(TTFSConv2d(1, 3, 3, padding=1, kernel="exp"), TTFSMaxPool2d(2),
                         TTFSConv2d(3, 4, 3, kernel="exp"), nn.Flatten(), TTFSLinear(16, 3, kernel="exp"))
    return to_nir_ttfs(TTFSNetwork(TTFSInput(), body.double()).eval(), (1, 8, 8))


def _feed(graph, steps: int, bsz: int) -> dict[str, torch.Tensor]:
    """Random input spikes (areas of 1) on the spike input, one bias spike at step 0 on every other Input."""
    g = torch.Generator().manual_seed(1)
    feed = {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.Input):
            shape = tuple(int(s) for s in np.asarray(node.input_type["input"]).ravel())
            feed[name] = torch.zeros(steps, bsz, *shape, dtype=torch.float64)
            feed[name][0] = 1.0
    feed["input"] = (torch.rand(steps, bsz, 1, 8, 8, generator=g) < 0.02).double()
    return feed


def test_ttfs_graph_default_is_the_named_exact_scheme_and_cuba_refuses_the_others():
    graph = _ttfs_graph()
    feed = _feed(graph, 150, 3)
    default = GraphSimulator(graph, 0.02).run(feed)["output"]
    named = GraphSimulator(graph, 0.02, integration="exact", signals="areas").run(feed)["output"]
    assert default.sum() > 0 and torch.equal(default, named)
    for scheme in (("euler", "areas"), ("exact", "currents")):
        with pytest.raises(ConfigError, match=r"^NIR simulation: CubaLIF node '\w+' is simulated with "
                                              r"integration='exact' and signals='areas', or 'euler' and 'currents'"):
            GraphSimulator(graph, 0.02, *scheme)


def _one_cuba(tau_syn: float, tau_mem: float, v_threshold: float) -> nir.NIRGraph:
    one = np.ones(1)
    node = nir.CubaLIF(tau_syn=tau_syn * one, tau_mem=tau_mem * one, r=one, v_leak=0 * one,
                       v_threshold=v_threshold * one, v_reset=0 * one, w_in=one)
    nodes = {"input": nir.Input(input_type={"input": np.array([1])}), "cuba": node,
             "output": nir.Output(output_type={"output": np.array([1])})}
    return nir.NIRGraph(nodes=nodes, edges=[("input", "cuba"), ("cuba", "output")], type_check=False)


def _cuba_impulse_response(t: float, tau_syn: float, tau_mem: float) -> float:
    """V(t) after an impulse of area 1 at t = 0 (w_in = r = 1, no threshold reached): I(t) = e^{-t/tau_syn} /
    tau_syn, V(t) = (e^{-t/tau_syn} - e^{-t/tau_mem}) / (tau_syn - tau_mem), t e^{-t/tau} / tau^2 for equal ones."""
    if tau_syn == tau_mem:
        return t * math.exp(-t / tau_mem) / tau_mem**2
    return (math.exp(-t / tau_syn) - math.exp(-t / tau_mem)) / (tau_syn - tau_mem)


@pytest.mark.parametrize(("tau_syn", "tau_mem"), [(1.0, 1.0), (1.0, 1e-3), (1e-3, 1.0), (0.5, 2.0)])
def test_exact_cubalif_membrane_by_hand_even_for_steps_far_beyond_a_time_constant(tau_syn, tau_mem):
    """The membrane at the end of steps 0, 1, 2 (t = 1, 2, 3 with dt = 1) after an impulse at step 0 is the closed
    form's, also where dt / tau = 1000 made the step's coefficient inf * 0 = NaN (no spike, ever); a threshold just
    below V(dt) fires at step 1 (the crossing at the end of step 0), one just above it does not then."""
    x = torch.zeros(3, 1, 1, dtype=torch.float64)
    x[0] = 1.0
    sim = GraphSimulator(_one_cuba(tau_syn, tau_mem, 1e9), 1.0)
    for k in range(3):
        assert sim.run({"input": x[k:k + 1]})["output"].sum() == 0
        membrane = float(sim.neurons["cuba"].state[0])  # V at the end of step k, t = (k + 1) dt
        assert membrane == pytest.approx(_cuba_impulse_response(k + 1.0, tau_syn, tau_mem), rel=1e-12)
    v1 = _cuba_impulse_response(1.0, tau_syn, tau_mem)
    for th, fired in ((v1 * (1 - 1e-9), 1.0), (v1 * (1 + 1e-9), 0.0)):
        assert GraphSimulator(_one_cuba(tau_syn, tau_mem, th), 1.0).run({"input": x})["output"][1].item() == fired


def test_per_element_parameters_in_a_flat_layout_act_on_their_own_elements():
    """A [2, 2] layer whose LIF parameters, Delay and Threshold are written flat ([4], as nir_shapes accepts: one value
    per element in any layout) runs as a numpy loop over the 4 elements in row-major order (before, a RuntimeError:
    [4] broadcast against the [B, 2, 2] state)."""
    dt, steps = 0.5, 8
    tau, th = np.array([0.5, 1.0, 2.0, 4.0]), np.array([0.3, 0.5, 0.7, 0.9])
    delay_steps, cut = np.array([0, 1, 2, 3]), np.array([0.1, 0.2, 0.3, 0.4])
    lif = nir.LIF(tau=tau, r=np.ones(4), v_leak=np.zeros(4), v_threshold=th, v_reset=np.zeros(4))
    nodes = {"input": nir.Input(input_type={"input": np.array([2, 2])}), "lif": lif,
             "delay": nir.Delay(delay=delay_steps * dt), "output": nir.Output(output_type={"output": np.array([2, 2])}),
             "raw": nir.Input(input_type={"input": np.array([2, 2])}), "cut": nir.Threshold(threshold=cut),
             "above": nir.Output(output_type={"output": np.array([2, 2])})}
    edges = [("input", "lif"), ("lif", "delay"), ("delay", "output"), ("raw", "cut"), ("cut", "above")]
    x = torch.rand(steps, 1, 2, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.3
    out = GraphSimulator(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), dt).run({"input": x, "raw": x})
    a, v, fired = x.reshape(steps, 4).numpy(), np.zeros(4), []
    for k in range(steps):  # "areas": jump by r a / tau, test, reset to 0, leak over the step
        h = v + a[k] / tau
        fired.append(h > th)
        v = np.where(h > th, 0.0, h) * np.exp(-dt / tau)
    fired = np.array(fired, dtype=float)
    delayed = np.stack([np.r_[np.zeros(d), fired[:steps - d, i]] for i, d in enumerate(delay_steps)], axis=1)
    assert fired.sum() > 4
    np.testing.assert_array_equal(out["output"].reshape(steps, 4).numpy(), delayed)
    np.testing.assert_array_equal(out["above"].reshape(steps, 4).numpy(), (a > cut).astype(float))

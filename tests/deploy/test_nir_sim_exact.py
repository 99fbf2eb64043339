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

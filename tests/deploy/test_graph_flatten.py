"""``deploy.graph_flatten.inline_subgraphs``: a NIR graph whose node is itself a graph, made flat."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepspike.core.errors import ConfigError

nir = pytest.importorskip("nir")
from deepspike.deploy.graph_flatten import inline_subgraphs  # noqa: E402
from deepspike.deploy.nir_sim import GraphSimulator  # noqa: E402


def _doubling() -> nir.NIRGraph:
    """input [3] -> lin (2 I) -> output."""
    return nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}),
                               "lin": nir.Linear(weight=2 * np.eye(3, dtype=np.float32)),
                               "output": nir.Output(output_type={"output": np.array([3])})},
                        edges=[("input", "lin"), ("lin", "output")], type_check=False)


def _outer(scale_name: str) -> nir.NIRGraph:
    """input -> r (the doubling subgraph) -> ``scale_name`` (x10) -> output."""
    nodes = {"input": nir.Input(input_type={"input": np.array([3])}), "r": _doubling(),
             scale_name: nir.Scale(scale=np.full(3, 10.0, dtype=np.float32)),
             "output": nir.Output(output_type={"output": np.array([3])})}
    edges = [("input", "r"), ("r", scale_name), (scale_name, "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-4}, type_check=False)


def test_an_inlined_subgraph_computes_what_it_held():
    flat = inline_subgraphs(nir, _outer("scale"))
    assert set(flat.nodes) == {"input", "r.lin", "scale", "output"}
    y = GraphSimulator(flat, 1e-4, "euler", "currents").run({"input": torch.ones(1, 1, 3, dtype=torch.float64)})
    assert torch.equal(y["output"], torch.full((1, 1, 3), 20.0, dtype=torch.float64))  # 1 * 2 * 10


def test_an_inlined_name_that_names_a_node_already_is_refused():
    # the outer Scale named 'r.lin' was replaced by the inner Linear and its edge became a loop: the simulator gave
    # 2 (the Scale gone) where the graph says 20
    with pytest.raises(ConfigError, match=r"^NIR import: subgraph 'r''s node 'lin' would be inlined as 'r.lin', "
                                          r"which already names a node of the graph$"):
        inline_subgraphs(nir, _outer("r.lin"))


@pytest.mark.parametrize(("inner_lin", "expected"), [(False, 10.0), (True, 30.0)])
def test_a_subgraph_that_passes_its_input_straight_on_is_inlined(inner_lin, expected):
    # an inner edge input -> output left an edge to the removed 'r.output': "edge 'input' -> 'r.output' names a
    # missing node"; now the subgraph is the identity (10 x 1 = 10), or with its doubling branch 10 (2 + 1) = 30
    sub = _doubling()
    sub.edges = [("input", "output"), *(sub.edges if inner_lin else [])]
    if not inner_lin:
        del sub.nodes["lin"]
    graph = _outer("scale")
    graph.nodes["r"] = sub
    flat = inline_subgraphs(nir, graph)
    y = GraphSimulator(flat, 1e-4, "euler", "currents").run({"input": torch.ones(1, 1, 3, dtype=torch.float64)})
    assert torch.equal(y["output"], torch.full((1, 1, 3), expected, dtype=torch.float64))

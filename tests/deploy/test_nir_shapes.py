"""``check_shapes``: a node that does not take what the nodes before it give is one DataCorruptError line,
raised when the graph is imported (not when the net first runs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepspike.core.errors import DataCorruptError

nir = pytest.importorskip("nir")
from deepspike.deploy import GraphSimulator, from_nir  # noqa: E402
from deepspike.deploy.nir_shapes import check_shapes  # noqa: E402
from deploy.nir_files import DT, replace, tiny_graph, write  # noqa: E402


def _pool(kernel: int):
    return nir.AvgPool2d(kernel_size=np.array([kernel, kernel]), stride=np.array([1, 1]), padding=np.array([0, 0]))


def _ifs(n: int):
    return nir.IF(r=np.ones(n), v_threshold=np.ones(n), v_reset=np.zeros(n))


BROKEN = {  # name: (nodes replaced or added, edges added, the message after "NIR import: ")
    "affine": ({"fc": nir.Affine(weight=np.ones((10, 77)), bias=np.zeros(10))}, [],
               "node 'fc': weight [10, 77] does not take the 128 features node 'flat' gives"),
    "conv_channels": ({"input": nir.Input(input_type={"input": np.array([3, 8, 8])})}, [],
                      "node 'conv': weight takes [1, H, W] inputs, node 'input' gives [3, 8, 8]"),
    "conv_rank": ({"input": nir.Input(input_type={"input": np.array([1, 8])})}, [],
                  "node 'conv': a Conv2d takes [channels, height, width], node 'input' gives [1, 8]"),
    "pool_window": ({"lif": _pool(16)}, [],
                    "node 'lif': the 16x16 window does not fit the [2, 8, 8] input node 'conv' gives"),
    "flatten_dims": ({"flat": nir.Flatten(input_type={"input": np.array([2, 8, 8])}, start_dim=3, end_dim=-1)}, [],
                     "node 'flat': start_dim 3 / end_dim -1 do not fit the [2, 8, 8] values node 'lif' gives"),
    "scale": ({"lif": nir.Scale(scale=np.ones(5))}, [],
              "node 'lif': scale has shape (5,), node 'conv' gives [2, 8, 8] values"),
    "neurons": ({"spk": _ifs(4)}, [], "node 'spk': r has shape (4,), node 'fc' gives [3] values"),
    "join": ({"half": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))},
             [("lif", "half"), ("half", "flat")],
             "node 'flat': its inputs [2, 8, 8] from 'lif' and [2, 4, 4] from 'half' cannot be summed"),
    "join_rank": ({"cut": nir.Flatten(input_type={"input": np.array([2, 8, 8])}, start_dim=1, end_dim=-1),
                   "side": nir.Affine(weight=np.ones((3, 64)), bias=np.zeros(3))},
                  [("lif", "cut"), ("cut", "side"), ("side", "spk")],  # [3] + [2, 3] would sum over the batch axis
                  "node 'spk': its inputs [3] from 'fc' and [2, 3] from 'side' cannot be summed"),
    "output": ({"output": nir.Output(output_type={"output": np.array([4])})}, [],
               "node 'output': shape [4] does not hold the [3] values node 'spk' gives"),
    "no_input_edge": ({"extra": _ifs(3)}, [("extra", "spk"), ("extra", "output")],
                      "node 'extra': no edge leads to it (only Input nodes may lack one)"),
    "unreached_cycle": ({"a": _ifs(3), "b": _ifs(3)}, [("a", "b"), ("b", "a"), ("b", "output")],
                        # was "no edge leads to it", though 'b' -> 'a' does
                        "node 'a': only the cycle closed by 'b' -> 'a' leads to it; no path from an Input node does"),
    "input_shape": ({"input": nir.Input(input_type={"input": np.array([0, 8])})}, [],
                    "node 'input': shape [0, 8] is not a list of sizes of at least 1"),
    "after_cubalif": ({"spk": nir.CubaLIF(tau_syn=np.ones(3), tau_mem=np.ones(3), r=np.ones(3), v_leak=np.zeros(3),
                                          v_threshold=np.ones(3), v_reset=np.zeros(3), w_in=np.ones(3)),
                       "output": nir.Output(output_type={"output": np.array([4])})}, [],  # nothing was checked after
                      "node 'output': shape [4] does not hold the [3] values node 'spk' gives"),  # a CubaLIF
    "after_output": ({"tail": nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2))}, [("output", "tail")],
                     # from_nir returned the tail's [2] values in place of the Output's [3]
                     "node 'output': an Output node ends the graph, but it feeds 'tail'"),
    "after_output_branch": ({"tail": nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)), "side": _ifs(3)},
                            [("fc", "side"), ("side", "output"), ("output", "tail")],  # was a KeyError when run
                            "node 'output': an Output node ends the graph, but it feeds 'tail'"),
    "into_input": ({"back": nir.Affine(weight=np.ones((64, 3)), bias=np.zeros(64))}, [("spk", "back"),
                                                                                        ("back", "input")],
                   "node 'input': an Input node is fed by the caller, but 'back' feeds it"),
    "feedback_broadcast": ({"rec": nir.Linear(weight=np.ones((1, 3)))}, [("spk", "rec"), ("rec", "spk")],
                           "node 'spk': the [1] values fed back from 'rec' do not match the [3] it receives"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_nodes_that_do_not_fit_are_refused_at_import(case):
    nodes, edges, message = BROKEN[case]
    g = tiny_graph()
    g.nodes.update(nodes)
    g.edges.extend(edges)
    with pytest.raises(DataCorruptError) as e:
        from_nir(g)
    assert str(e.value) == f"NIR import: {message}"


def test_a_file_names_itself(tmp_path):
    path = replace(write(tiny_graph(), tmp_path / "m.nir"), "nodes/fc/weight", np.ones((10, 77), dtype=np.float32))
    replace(path, "nodes/fc/bias", np.zeros(10, dtype=np.float32))
    with pytest.raises(DataCorruptError) as e:
        from_nir(path)
    assert str(e.value) == f"{path}: node 'fc': weight [10, 77] does not take the 128 features node 'flat' gives"


def test_sound_graphs_pass_and_run():
    check_shapes(nir, tiny_graph(), "NIR import")
    g = tiny_graph()  # a join of equal shapes and a Scale that broadcasts over the channels are sound
    g.nodes.update({"lif": nir.Scale(scale=np.ones((2, 1, 1))), "skip": nir.Scale(scale=np.array(0.5))})
    g.edges.extend([("lif", "skip"), ("skip", "flat")])
    for graph in (tiny_graph(), g):
        with torch.no_grad():
            assert from_nir(graph)(torch.ones(4, 2, 1, 8, 8)).shape == (4, 2, 3)


def test_an_edge_to_a_missing_node_names_the_file(tmp_path):
    """An ``edges`` dataset naming a node the file does not hold: one line that names the file (before, graph_order's
    ``NIR graph: edge ...`` without it), and the same line for a graph object with ``NIR import``."""
    g = tiny_graph()
    g.edges.append(("fc", "ghost"))
    path = write(g, tmp_path / "m.nir")
    for source, where in ((path, str(path)), (g, "NIR import")):
        with pytest.raises(DataCorruptError) as e:
            from_nir(source)
        assert str(e.value) == f"{where}: edge 'fc' -> 'ghost' names a missing node"


def test_a_graph_whose_end_is_no_output_node_is_refused(tmp_path):
    """NIR's graph outputs are its Output nodes (the nir package appends one to every other leaf when it type-checks).
    A chain ending at ``spk`` without its Output imported as if ``spk`` were the output, and GraphSimulator returned
    no output at all (``{}``); a dead-end branch was computed and dropped. Each is now one line naming the node, for
    a graph object, a file and the simulator."""
    chain = tiny_graph()
    del chain.nodes["output"]
    chain.edges.remove(("spk", "output"))
    branch = tiny_graph()
    branch.nodes["side"] = nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2))
    branch.edges.append(("fc", "side"))
    path = write(chain, tmp_path / "m.nir")
    cases = ((chain, "NIR import", "spk"), (path, str(path), "spk"), (branch, "NIR import", "side"))
    for source, where, leaf in cases:
        with pytest.raises(DataCorruptError) as e:
            from_nir(source)
        assert str(e.value) == (f"{where}: node {leaf!r}: it feeds no node and is not an Output node (a graph's "
                                "outputs are its Output nodes)")
    with pytest.raises(DataCorruptError, match=r"^NIR simulation: node 'spk': it feeds no node and is not an Output"):
        GraphSimulator(chain, DT)
    loop = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}),
                               "lif": nir.IF(r=np.ones(3), v_threshold=np.ones(3), v_reset=np.zeros(3)),
                               "rec": nir.Linear(weight=np.eye(3))},
                        edges=[("input", "lif"), ("lif", "rec"), ("rec", "lif")], type_check=False)
    with pytest.raises(DataCorruptError, match=r"^NIR import: the graph has no Output node \(a graph's outputs are "):
        from_nir(loop)

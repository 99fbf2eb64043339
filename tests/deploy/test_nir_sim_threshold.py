"""GraphSimulator's NIR Threshold node: ``z = H(x - threshold)`` per step, strict (a value at the threshold
gives 0), element by element."""

from __future__ import annotations

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")
from deepspike.deploy import GraphSimulator  # noqa: E402


def test_threshold_node_fires_where_the_input_exceeds_its_threshold():
    th = np.array([0.5, 1.0, -0.25], dtype=np.float32)
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}),
                                "thr": nir.Threshold(threshold=th),
                                "output": nir.Output(output_type={"output": np.array([3])})},
                         edges=[("input", "thr"), ("thr", "output")], type_check=False)
    x = torch.tensor([[[0.6, 1.0, -0.3]], [[0.5, 2.0, 0.0]]], dtype=torch.float64)  # [T=2, B=1, 3]
    out = GraphSimulator(graph, 1e-3).run({"input": x})["output"]
    # hand-computed: step 0: 0.6 > 0.5, 1.0 = 1.0 (not above), -0.3 < -0.25; step 1: 0.5 = 0.5, 2 > 1, 0 > -0.25
    assert out.tolist() == [[[1.0, 0.0, 0.0]], [[0.0, 1.0, 1.0]]]

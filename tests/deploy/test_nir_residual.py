"""Residual rate-coded nets exported to NIR: the graph branches and joins, and deepspike's importer
(``from_nir``, reading nothing but the file) gives the network's own output spikes, step for step."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.deploy import from_nir, to_nir, write_nir
from deepspike.deploy.families import reference_spikes
from deepspike.layers.containers import ResidualBlock
from deepspike.methods import get_method
from deepspike.models import create_architecture
from deepspike.neurons import LIF

nir = pytest.importorskip("nir")


def _resnet(reset: str, decay: float):
    torch.manual_seed(0)
    arch = create_architecture("resnet", num_classes=5, input_shape=(1, 8, 8), width=0.25, batch_norm=False)
    return get_method("stbp", {"timesteps": 4, "decay": decay, "reset": reset, "threshold": 0.5}).build(arch).eval()


@pytest.mark.parametrize("reset,decay", [("zero", 0.5), ("subtract", 1.0)])
def test_residual_graph_gives_the_same_output_spikes(reset, decay, tmp_path):
    model = _resnet(reset, decay)
    write_nir(to_nir(model, (1, 8, 8)), tmp_path / "res.nir")
    graph = nir.read(str(tmp_path / "res.nir"))
    joins = [dst for dst in graph.nodes if sum(d == dst for _, d in graph.edges) == 2]
    assert len(joins) == 3  # one junction per residual block, each fed by its body and its shortcut
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(40, 3, 1, 8, 8, generator=g) < 0.4).float()
    ours = reference_spikes(model, x)
    with torch.no_grad():
        theirs = from_nir(graph)(x)
    assert ours.sum() > 0 and torch.equal(theirs, ours)


def test_residual_nets_are_exported_without_threshold_folding_only():
    with pytest.raises(ConfigError, match="residual shortcut"):
        to_nir(_resnet("zero", 0.5), (1, 8, 8), fold_thresholds=True)


class _HalvingLIF(LIF):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) / 2


def test_a_residual_blocks_own_neuron_of_the_users_is_refused():
    model = _resnet("zero", 0.5)
    block = next(m for m in model.modules() if isinstance(m, ResidualBlock))
    block.act = _HalvingLIF(decay=0.5, threshold=0.5)
    with pytest.raises(ConfigError, match="_HalvingLIF overrides forward"):
        to_nir(model, (1, 8, 8))


def test_a_branching_graph_whose_node_names_hold_dots_imports(tmp_path):
    """NIR names such as "fc.0" (and every inlined subgraph's "block.lif") crashed torch's ModuleDict with a
    KeyError; the same graph with the dots renamed gives the same spikes."""
    import numpy as np

    weight = np.arange(12, dtype=np.float32).reshape(3, 4) / 10

    def graph(a: str, b: str):
        nodes = {"in": nir.Input(np.array([4])), a: nir.Affine(weight, np.zeros(3, np.float32)),
                 b: nir.Affine(-weight / 2, np.ones(3, np.float32) / 4),
                 "n": nir.IF(r=np.ones(3, np.float32), v_threshold=np.ones(3, np.float32)),
                 "out": nir.Output(np.array([3]))}
        edges = [("in", a), ("in", b), (a, "n"), (b, "n"), ("n", "out")]
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1.0}, type_check=False)  # IF: r = 1 / dt

    x = torch.rand(6, 2, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        dotted, plain = from_nir(graph("fc.0", "skip.1"))(x), from_nir(graph("fc0", "skip1"))(x)
    assert dotted.sum() > 0 and torch.equal(dotted, plain)

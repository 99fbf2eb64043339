"""The current-based LIF (``method.neuron=synaptic``) as NIR ``CubaLIF``: exported, read back by ``from_nir`` and
simulated by ``GraphSimulator.rate_coded`` (float64, reading only the graph), all three give the PyTorch net's output
spikes, spike for spike; a neuron without a leak, which has no finite CubaLIF time constant, is one line."""

from __future__ import annotations

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.methods import get_method
from deepspike.models import create_architecture
from deepspike.neurons.synaptic import SynapticLIF

nir = pytest.importorskip("nir")
from deepspike.deploy import GraphSimulator, from_nir, to_nir, write_nir  # noqa: E402


def _synaptic_net(**options):
    torch.manual_seed(4)
    arch = create_architecture("scnn_digits", num_classes=10, input_shape=(1, 8, 8), width=1.0)
    settings = {"timesteps": 6, "encoder": "poisson", "neuron": "synaptic", "syn_decay": 0.6, "decay": 0.7,
                "threshold": 0.3, **options}
    return get_method("stbp", settings).build(arch).eval()


@pytest.mark.parametrize(("dt", "fold", "reset"), [(1e-4, False, "zero"), (1e-3, True, "subtract")])
def test_a_synaptic_net_round_trips_as_cubalif(tmp_path, dt, fold, reset):
    model = _synaptic_net(reset=reset)
    path = write_nir(to_nir(model, (1, 8, 8), dt=dt, fold_thresholds=fold), tmp_path / "m.nir")
    graph = nir.read(str(path))
    cuba = [n for n in graph.nodes.values() if isinstance(n, nir.CubaLIF)]
    assert len(cuba) == sum(isinstance(m, SynapticLIF) for m in model.modules())
    assert {n.metadata["syn_decay"] for n in cuba} == {0.6} and {n.metadata["reset"] for n in cuba} == {reset}
    x = (torch.rand(6, 5, 1, 8, 8, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    with torch.no_grad():
        ours, theirs = model.readout.neuron(model.body(x)), from_nir(path)(x)
    simulated = GraphSimulator.rate_coded(graph).run({"input": x})["output"].float()
    assert ours.sum() > 0 and torch.equal(theirs, ours)
    assert torch.equal(simulated, ours)


@pytest.mark.parametrize("options", [{"syn_decay": 1.0}, {"decay": 1.0}])
def test_a_synaptic_neuron_without_a_leak_is_refused(options):
    with pytest.raises(ConfigError, match="^NIR export: a synaptic neuron with decay .* has no finite CubaLIF time "
                                          "constant"):
        to_nir(_synaptic_net(**options), (1, 8, 8))

"""The current-based LIF (``method.neuron=synaptic``) as NIR ``CubaLIF``: exported, read back by ``from_nir`` and
simulated by ``GraphSimulator.rate_coded`` (float64, reading only the graph), all three give the PyTorch net's output
spikes, spike for spike; a neuron without a leak, which has no finite CubaLIF time constant, is one line."""

from __future__ import annotations

import numpy as np
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


@pytest.mark.parametrize("dt", [1e-4, 1e-3])
def test_a_synaptic_net_read_back_runs_its_own_float32_decays(dt):
    # before: the rounded-up taus read back decay 0.7 at dt = 1e-4 as 0.69999999 and syn_decay 0.9 at dt = 1e-3 as
    # 0.89999998 (the next float32 below)
    model = _synaptic_net(decay=0.7, syn_decay=0.9)
    back = from_nir(to_nir(model, (1, 8, 8), dt=dt))
    neurons = [m for m in back.modules() if isinstance(m, SynapticLIF)]
    assert neurons and all(np.float32(m.fixed.decay) == np.float32(0.7) for m in neurons)
    assert all(np.float32(m.syn_decay) == np.float32(0.9) for m in neurons)


def test_cuba_and_learnable_taus_read_back_every_float32_decay_a_float32_tau_gives():
    # before: the rounded-up taus of a trained layer (exact=False) read back another float32 decay for ~20% of
    # random decays in [0.5, 1); now as an imported layer's (time_constants_reading_back)
    from deepspike.deploy.neurons import cuba_node, learnable_node

    dt, m = 1e-3, 2000
    rng = np.random.default_rng(5)
    k, alpha = (rng.uniform(0.5, 1.0, m).astype(np.float32) for _ in range(2))
    cuba = cuba_node(k, alpha, np.ones(m), dt, {})
    lif = learnable_node(k, 1.0 - k, np.ones(m), "zero", (m,), dt)
    for tau, wanted in ((cuba.tau_mem, k), (cuba.tau_syn, alpha), (lif.tau, k)):
        assert np.array_equal((1.0 - dt / tau.astype(np.float64)).astype(np.float32), wanted)


def test_a_cubalif_whose_tau_syn_is_dt_reads_as_no_synaptic_memory():
    """tau_syn = dt is the shortest CubaLIF synapse forward Euler runs: alpha = 1 - dt/tau_syn = 0 (the current is
    the step's input); tau_mem = 4 dt: decay 0.75; input scale (w_in dt / tau_syn) (r dt / tau_mem) = 1 * 1 for w_in
    = 1, r = 4. A tau_syn below dt (alpha < 0) stays refused."""
    from deepspike.deploy.neurons import synaptic_params

    one = np.ones(1, dtype=np.float32)
    node = nir.CubaLIF(tau_syn=0.5 * one, tau_mem=2.0 * one, r=4 * one, v_leak=0 * one, v_threshold=one,
                       v_reset=0 * one, w_in=one)
    params, syn_decay, scale = synaptic_params(node, 0.5)
    assert (syn_decay, params.decay, scale) == (0.0, 0.75, 1.0)
    with pytest.raises(ConfigError, match=r"^NIR import: CubaLIF needs tau_syn >= dt and tau_mem > dt"):
        synaptic_params(node, 0.6)

"""The windowed ReL-PSP TTFS network against its ANN (closed form) and the event-driven simulator."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.methods import get_method
from deepspike.methods.window_graph import event_stages
from deepspike.methods.window_measures import window_measures
from deepspike.methods.window_network import calibrate_windows, recording
from deepspike.models import create_architecture
from deepspike.ttfs.window_sim import simulate

NETS = {
    "dense": ("zhang2021_fc400", {}, (1, 6, 6)),
    "conv_avg": ("vgg", dict(blocks=[[4], [6]], hidden=[12], batch_norm=False, pool="avg"), (2, 8, 8)),
    "conv_max_bn": ("vgg", dict(blocks=[[4, 4], [6]], hidden=[12], batch_norm=True, pool="max"), (1, 8, 8)),
    "residual_bn": ("resnet", dict(), (1, 8, 8)),
}


def _randomise_batch_norms(model: nn.Module, gen: torch.Generator) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen, dtype=m.running_mean.dtype) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen, dtype=m.running_var.dtype) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen, dtype=m.weight.dtype) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen, dtype=m.bias.dtype) * 0.3)


def _converted(name: str, kwargs: dict, shape: tuple[int, ...], seed: int = 0):
    """A random ANN of the architecture (biases and batch-norms random) and its windowed TTFS image."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    arch = create_architecture(name, num_classes=5, input_shape=shape, **({"width": 0.05} if name == "zhang2021_fc400"
                                                                          else {}), **kwargs)
    if name == "resnet":
        arch = create_architecture("resnet", num_classes=5, input_shape=shape, width=0.25)
    ann = get_method("ann", {}).build(arch).double()
    for m in ann.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
            m.bias.data.normal_(0.0, 0.1, generator=gen)
    _randomise_batch_norms(ann, gen)
    ann.eval()
    method = get_method("ttfs_window", {})
    snn = method.build(arch).double()
    method.init_from_run(snn, "ann", ann)
    x = torch.randn(64, *shape, generator=gen, dtype=torch.float64)
    calibrate_windows(snn, [x])
    return ann, snn.eval(), x, shape


@pytest.mark.parametrize("net", sorted(NETS))
def test_closed_form_equals_the_ann(net):
    ann, snn, x, _ = _converted(*NETS[net])
    with torch.no_grad():
        expected, got = ann(x), snn(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-9 * float(expected.abs().max()))


@pytest.mark.parametrize("net", sorted(NETS))
def test_event_driven_simulation_gives_the_same_spikes_and_scores(net):
    ann, snn, x, shape = _converted(*NETS[net])
    stages = event_stages(snn, shape)
    with torch.no_grad(), recording(snn):
        scores = snn(x)
        offsets = [m.last_offsets for m in snn.neuron_layers()]
        input_offsets = snn.encoder.last_offsets.reshape(2, x.shape[0], -1)
    result = simulate(stages, input_offsets, float(snn.encoder.window))
    torch.testing.assert_close(result.potentials, ann(x).detach(), rtol=1e-5, atol=1e-9 * float(scores.abs().max()))
    neuron_pops = [i + 2 for i, s in enumerate(stages) if hasattr(s, "fires") and s.fires]
    assert len(neuron_pops) == len(offsets)
    for pop, tau in zip(neuron_pops, offsets):
        t_min = result.windows[pop][0]
        expected = (t_min + tau).reshape(x.shape[0], -1)
        assert torch.equal(torch.isfinite(result.times[pop]), torch.isfinite(expected))
        finite = torch.isfinite(expected)
        torch.testing.assert_close(result.times[pop][finite], expected[finite], rtol=1e-9, atol=1e-9)


def test_windows_start_where_the_previous_end():
    _, snn, _, shape = _converted(*NETS["conv_max_bn"])
    result = simulate(event_stages(snn, shape), torch.full((2, 1, math.prod(shape)), math.inf, dtype=torch.float64),
                      float(snn.encoder.window))
    windows = snn.windows()
    neuron_windows = [w for w in result.windows[2:]]
    starts = sorted({w for w in neuron_windows})
    assert starts[0] == (windows[0], windows[0] + windows[1])
    assert math.isclose(snn.output_window_start(), sum(windows[:-1]))


def _hand_made_net():
    """The net of ``test_spikes_counted_on_a_hand_made_net`` (no biases) and its two inputs."""
    arch = create_architecture("zhang2021_fc400", num_classes=2, input_shape=(1, 1, 2), width=3 / 400)
    snn = get_method("ttfs_window", {}).build(arch).double()
    hidden, out = [m for m in snn.modules() if isinstance(m, nn.Linear)]
    hidden.weight.data = torch.tensor([[1.0, 0.5], [-1.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    out.weight.data = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], dtype=torch.float64)
    return snn, torch.tensor([[[[1.0, 1.0]]], [[[0.0, 2.0]]]], dtype=torch.float64)


def test_spikes_counted_on_a_hand_made_net():
    """2 inputs -> 3 hidden -> 2 outputs; inputs (1, 1) and (0, 2) give hidden potentials (1.5, 0, -1) and
    (1, 2, 0): 1 + 2 hidden spikes (0 and negative potentials are silent), input spikes 2 + 1."""
    snn, x = _hand_made_net()
    calibrate_windows(snn, [x])
    assert snn.windows() == [2.0, 2.0, 2.0]
    measures = window_measures(snn, [(x, torch.zeros(2, dtype=torch.long))])
    assert measures["input_spikes"] == 1.5
    # hidden spikes 1 + 2, output spikes (scores (1.5, 0) and (1, 2)) 1 + 2: 6 of 2 x 5 neurons
    assert measures["spikes_per_neuron"] == pytest.approx(6 / 10)
    assert measures["spiking_fraction/hidden1"] == pytest.approx(0.5)
    # synaptic events: 3 input spikes x fan-out 3, then 1 + 2 hidden spikes x fan-out 2: 15 for 2 samples
    assert measures["synaptic_ops"] == 7.5
    # decision: output window [4, 6]; scores 1.5 -> 4 + 2 - 1.5 = 4.5, scores (1, 2) -> 4 + 2 - 2 = 4
    assert measures["latency"] == pytest.approx(4.25) and measures["total_time"] == 6.0
    # saturated: hidden spikes at their window start (offset 0, potential >= the window T = 2): 1 of the 3
    assert measures["saturated_fraction"] == pytest.approx(1 / 3)
    with recording(snn), torch.no_grad():
        snn(x)
        tau = snn.neuron_layers()[0].last_offsets
    expected = torch.tensor([[0.5, math.inf, math.inf], [1.0, 0.0, math.inf]], dtype=torch.float64)
    assert torch.equal(tau, expected)  # T - a: 2 - 1.5, 2 - 1, and a = 2 = T fires at the window start


def test_an_uncalibrated_network_refuses_to_evaluate():
    arch = create_architecture("zhang2021_fc400", num_classes=2, input_shape=(1, 2, 2), width=0.01)
    snn = get_method("ttfs_window", {}).build(arch).eval()
    with pytest.raises(ConfigError, match="not calibrated"):
        snn(torch.zeros(1, 1, 2, 2))


def test_calibration_scales_the_largest_values_by_the_margin_and_keeps_the_mode():
    # largest input 2, hidden value 2 (potential 1 x 0 + 1 x 2), output score 2: windows 1.5 x 2 = 3 each; the net
    # goes back to its mode, and a recording block leaves no offsets behind
    snn, x = _hand_made_net()
    snn.train()
    assert calibrate_windows(snn, [x], margin=1.5) == [3.0, 3.0, 3.0] and snn.training
    assert calibrate_windows(snn.eval(), [x], margin=0.5) == [1.0, 1.0, 1.0] and not snn.training
    with recording(snn), torch.no_grad():
        snn.eval()(x)
        assert snn.neuron_layers()[0].last_offsets is not None
    assert all(m.last_offsets is None for m in (snn.encoder, *snn.neuron_layers(), snn.readout))

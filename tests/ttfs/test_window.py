"""Windowed ReL-PSP neurons: the closed form by hand, and the event-driven simulator on a hand-made case."""

import math

import torch

from deepspike.ttfs.window import decode_offsets, encode_values, window_offsets
from deepspike.ttfs.window_layers import WindowInput, WindowNeurons, WindowReadout
from deepspike.ttfs.window_sim import NeuronStage, Synapses, simulate


def test_offsets_by_hand_and_their_values_are_the_clipped_relu():
    a = torch.tensor([-1.0, 0.0, 0.5, 2.0, 3.0, 7.0], dtype=torch.float64, requires_grad=True)
    tau = window_offsets(a, 3.0, alpha=2.0)  # theta = 6: tau = 3 - a / 2, saturated at a >= 6
    assert tau.tolist() == [math.inf, math.inf, 2.75, 2.0, 1.5, 0.0]
    x = decode_offsets(tau, 3.0)
    assert x.tolist() == [0.0, 0.0, 0.25, 1.0, 1.5, 3.0]  # clip(relu(a) / alpha, 0, T)
    tau[torch.isfinite(tau)].sum().backward()
    assert a.grad.tolist() == [0.0, 0.0, -0.5, -0.5, -0.5, 0.0]  # d tau / d a = -1 / alpha inside the window


def test_input_code():
    assert encode_values(torch.tensor([0.0, 0.25, 1.0, 2.0]), 1.0).tolist() == [math.inf, 0.75, 0.0, 0.0]


def test_simulator_on_a_hand_made_neuron():
    """Inputs at t = 0.2 and 0.5 (window [0, 1]) with weights 1 and 2, bias 0.3: V(1) = 0.8 + 2 * 0.5 + 0.3 = 2.1;
    window T = 3, alpha = 1: fires at 1 + 3 - 2.1 = 1.9. A second neuron with weights -1, -1 stays silent."""
    times = torch.tensor([[[0.2, 0.5]], [[math.inf, math.inf]]], dtype=torch.float64)
    weight = torch.tensor([[1.0, 2.0], [-1.0, -1.0]], dtype=torch.float64)
    hidden = NeuronStage([Synapses(0, weight)], torch.tensor([0.3, 0.0], dtype=torch.float64), 3.0)
    out = NeuronStage([Synapses(2, torch.eye(2, dtype=torch.float64))], torch.zeros(2, dtype=torch.float64), 5.0,
                      fires=False)
    result = simulate([hidden, out], times, 1.0)
    assert torch.allclose(result.times[2], torch.tensor([[1.9, math.inf]], dtype=torch.float64))
    assert result.windows[2] == (1.0, 4.0)
    # The output reads the hidden values at t = 4: 4 - 1.9 = 2.1 and 0 (silent).
    assert torch.allclose(result.potentials, torch.tensor([[2.1, 0.0]], dtype=torch.float64))


def test_a_nan_potential_gives_a_nan_offset_and_value_not_no_spike():
    """A NaN potential was taken as "no spike" (+inf, value 0) while the layers' values clip(a / alpha, 0, T) are
    NaN: a NaN input was coded as 0 by WindowInput in silence. It now propagates, as through the ANN's ReLU."""
    a = torch.tensor([math.nan, -1.0, 0.0, 0.5, 7.0], dtype=torch.float64)
    tau = window_offsets(a, 3.0, alpha=2.0)
    assert math.isnan(tau[0]) and tau[1:].tolist() == [math.inf, math.inf, 2.75, 0.0]
    x = decode_offsets(tau, 3.0)
    assert math.isnan(x[0]) and x[1:].tolist() == [0.0, 0.0, 0.25, 3.0]
    assert math.isnan(encode_values(torch.tensor([math.nan]), 1.0).item())
    values = torch.tensor([[math.nan, 0.5, -0.5]])
    out = WindowInput(window=1.0).eval()(values)
    assert math.isnan(out[0, 0]) and out[0, 1:].tolist() == [0.5, -0.5]  # before: 0.0 for the NaN
    for layer in (WindowNeurons(window=1.0), WindowReadout(window=1.0)):
        layer.eval().record = True
        layer(values)
        assert math.isnan(layer.last_offsets[0, 0]) and layer.last_offsets[0, 1:].tolist() == [0.5, math.inf]

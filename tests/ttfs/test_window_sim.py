"""The event-driven simulator of windowed ReL-PSP networks: its refusals of arguments it cannot simulate."""

import math

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.ttfs.window_sim import NeuronStage, Synapses, simulate

F64 = torch.float64


def _run(window=3.0, alpha=1.0, input_window=1.0, first=0.2, weight=1.0, delay=0.0):
    """The hand-made neuron of test_window (inputs at ``first`` and 0.5, weights ``weight`` and 2, bias 0.3)."""
    times = torch.tensor([[[first, 0.5]], [[math.inf, math.inf]]], dtype=F64)
    hidden = NeuronStage([Synapses(0, torch.tensor([[weight, 2.0]], dtype=F64), delay)], torch.tensor([0.3], dtype=F64),
                         window, alpha)
    out = NeuronStage([Synapses(2, torch.eye(1, dtype=F64))], torch.zeros(1, dtype=F64), 5.0, fires=False)
    return simulate([hidden, out], times, input_window)


def test_the_hand_made_neuron_still_fires_at_its_closed_form_time():
    result = _run()  # V(1) = 0.8 + 2 * 0.5 + 0.3 = 2.1: fires at 1 + 3 - 2.1
    assert result.times[2].item() == pytest.approx(1.9)


@pytest.mark.parametrize("arguments, message", [
    # before: window 0 or NaN gave NaN potentials (and a spike at the window start for 0); alpha 0 a spike at once,
    # alpha -1 silence; an input window of NaN NaN potentials; NaN and -inf input times counted as no spike
    ({"window": 0.0}, "stage 0 needs a finite window and alpha > 0"),
    ({"window": math.nan}, "stage 0 needs a finite window and alpha > 0"),
    ({"alpha": 0.0}, "stage 0 needs a finite window and alpha > 0"),
    ({"alpha": -1.0}, "stage 0 needs a finite window and alpha > 0"),
    ({"delay": math.inf}, "stage 0 needs a finite window and alpha > 0 and delays >= 0"),
    ({"input_window": math.nan}, "the input window must be a finite number > 0"),
    ({"first": math.nan}, "input spike times contain NaN or -inf"),
    ({"first": -math.inf}, "input spike times contain NaN or -inf"),
    ({"weight": math.nan}, "stage 0's weights or bias contain NaN or inf"),
])
def test_arguments_it_cannot_simulate_are_one_line_config_errors(arguments, message):
    with pytest.raises(ConfigError, match=message) as err:
        _run(**arguments)
    assert "\n" not in str(err.value)


def test_a_delay_and_a_longer_input_window_by_hand():
    """A delay of 0.5 opens the window at 1 + 0.5 and shifts every arrival (bias spike included) with it:
    V(1.5) = 1 * 0.8 + 2 * 0.5 + 0.3 = 2.1 again, so the spike comes at 1.5 + 3 - 2.1 = 2.4. An input window of 2 (no
    delay) opens at 2 and spreads the bias over it (weight 0.3 / 2 for 2): V(2) = 1.8 + 2 * 1.5 + 0.3 = 5.1, which
    a window of 6 turns into a spike at 2 + 6 - 5.1 = 2.9."""
    delayed = _run(delay=0.5)
    assert delayed.windows[2] == (1.5, 4.5) and delayed.times[2].item() == pytest.approx(2.4)
    assert _run(window=6.0, input_window=2.0).times[2].item() == pytest.approx(2.9)


def test_a_potential_of_exactly_zero_never_fires():
    """Inputs at 0.25 and 0.5 with weights 1 and -1.5: V(1) = 0.25 - 0.25 = 0 exactly, which the ramp brings to the
    threshold only at the window's end: a = 0 is no spike, as in the closed form (``window_offsets``)."""
    times = torch.tensor([[[0.25, 0.5]], [[math.inf, math.inf]]], dtype=F64)
    hidden = NeuronStage([Synapses(0, torch.tensor([[1.0, -1.5]], dtype=F64))], torch.zeros(1, dtype=F64), 3.0)
    out = NeuronStage([Synapses(2, torch.eye(1, dtype=F64))], torch.zeros(1, dtype=F64), 5.0, fires=False)
    assert simulate([hidden, out], times, 1.0).times[2].item() == math.inf

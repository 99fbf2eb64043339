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

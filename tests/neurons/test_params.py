"""``NeuronParams`` refuses what the neuron update cannot mean, in one line (``ConfigError``)."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.neurons.dynamics import neuron_multistep
from deepspike.neurons.params import NeuronParams


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(decay="0.5"), "decay must be a number"),
    (dict(threshold="1"), "threshold must be a number"),
    (dict(threshold=True), "threshold must be a number"),
    (dict(threshold=1e300), "at most float32's"),  # finite in Python, inf in float32: NaN spikes once
    (dict(threshold=3.5e38), "at most float32's"),
    # 1e-320 is 0 in float32: every LIF fired at every step on a zero input (method.threshold=1e-320 was taken)
    (dict(threshold=1e-320), r"^neuron threshold=1e-320 must be a finite number > 0 \(at least float32's smallest "
                             r"normal 1.175e-38, at most float32's 3.403e\+38\)$"),
    (dict(detach_reset="no"), "detach_reset must be true or false"),  # once taken as true
    (dict(leak_grad=1), "leak_grad must be true or false"),
    (dict(surrogate_args=[1, 2]), "surrogate_args must be a mapping"),
    (dict(surrogate_args="abc"), "surrogate_args must be a mapping"),
])
def test_values_the_update_cannot_mean_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        NeuronParams(**kwargs)


def test_the_largest_float32_threshold_is_taken_and_never_fires():
    params = NeuronParams(threshold=float(torch.finfo(torch.float32).max), reset="subtract")
    s, _ = neuron_multistep(torch.tensor([[0.0], [1.0], [1.0]]), params)
    assert torch.equal(s, torch.zeros(3, 1))


def test_the_smallest_normal_float32_threshold_is_taken_and_a_zero_input_never_fires():
    params = NeuronParams(threshold=float(torch.finfo(torch.float32).tiny))
    s, _ = neuron_multistep(torch.zeros(3, 1), params)
    assert torch.equal(s, torch.zeros(3, 1))

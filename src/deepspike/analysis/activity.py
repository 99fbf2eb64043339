"""Spike activity of a rate-coded network per layer: ``rate = spikes / (neurons * T * samples)`` and
``spikes_per_sample = spikes / samples``, recorded by ``layers.activity_recorder.ActivityRecorder`` on every
spiking neuron module (``is_spiking_neuron``, spikes ``[T, B, ...]``) without changing the outputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from torch import nn

from deepspike.layers.activity_recorder import ActivityRecorder
from deepspike.training.evaluate import EVAL_SEED, eval_pass


@dataclass
class LayerActivity:
    name: str
    neurons: int
    spikes: float
    steps: int
    samples: int

    @property
    def rate(self) -> float:
        """Mean spikes per neuron per time step."""
        return self.spikes / max(1, self.neurons * self.steps * self.samples)

    @property
    def spikes_per_sample(self) -> float:
        return self.spikes / max(1, self.samples)


@dataclass
class Activity:
    layers: list[LayerActivity]

    @property
    def spikes_per_sample(self) -> float:
        return sum(layer.spikes_per_sample for layer in self.layers)

    @property
    def mean_rate(self) -> float:
        """Spikes over all neuron-steps of all layers."""
        total = sum(layer.neurons * layer.steps * layer.samples for layer in self.layers)
        return sum(layer.spikes for layer in self.layers) / max(1, total)


def measure_activity(model: nn.Module, batches: Iterable, seed: int = EVAL_SEED) -> Activity:
    """Run ``model`` over ``batches`` in an ``eval_pass`` and return its per-layer spike activity.

    A network that runs time in chunks (the converted network) counts each sample once per layer and the
    steps of all its chunks (``steps`` = the steps of the last pass).
    """
    with eval_pass(model, seed), ActivityRecorder(model, codings=("rate",), operations=False) as recorder:
        for x, _ in batches:
            model(x)
    layers = recorder.layers.values()
    return Activity([LayerActivity(r.name, r.neurons, r.spikes, r.steps, r.samples) for r in layers])

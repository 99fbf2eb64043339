"""Spike activity of a rate-coded network, recorded by forward hooks without changing its outputs.

Any module with the class attribute ``is_spiking_neuron = True`` emits spikes ``[T, B, ...]``; a hook
adds up its spikes. Per layer: ``rate = spikes / (neurons * T * samples)`` and
``spikes_per_sample = spikes / samples``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

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


def spiking_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every spiking neuron module of ``model`` in registration order."""
    return [(n, m) for n, m in model.named_modules() if getattr(type(m), "is_spiking_neuron", False)]


class SpikeRecorder:
    """Context manager: while active, adds up the spikes of every spiking module of ``model``.

    A network that runs time in chunks (several neuron calls per forward call of ``model``, e.g. the
    converted network) counts each sample once and the steps of all its chunks.
    """

    def __init__(self, model: nn.Module) -> None:
        self.layers = {name: LayerActivity(name, 0, 0.0, 0, 0) for name, _ in spiking_modules(model)}
        self._model = model
        self._modules = spiking_modules(model)
        self._handles: list = []
        self._steps_in_call: dict[str, int] = {}

    def __enter__(self) -> SpikeRecorder:
        self._handles.append(self._model.register_forward_pre_hook(self._begin))
        for name, module in self._modules:
            self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def _begin(self, module: nn.Module, args) -> None:
        self._steps_in_call.clear()

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name: str):
        def record(module: nn.Module, inputs, output: torch.Tensor) -> None:
            spikes = output[0] if isinstance(output, tuple) else output  # [T, B, ...]
            layer = self.layers[name]
            layer.neurons = spikes[0, 0].numel()
            if name not in self._steps_in_call:  # first chunk of this forward call
                layer.samples += spikes.shape[1]
            self._steps_in_call[name] = self._steps_in_call.get(name, 0) + spikes.shape[0]
            layer.steps = self._steps_in_call[name]
            layer.spikes += float(spikes.detach().abs().sum())

        return record

    def result(self) -> Activity:
        return Activity(list(self.layers.values()))


def measure_activity(model: nn.Module, batches: Iterable, seed: int = EVAL_SEED) -> Activity:
    """Run ``model`` over ``batches`` in an ``eval_pass`` and return its per-layer spike activity."""
    with eval_pass(model, seed), SpikeRecorder(model) as recorder:
        for x, _ in batches:
            model(x)
    return recorder.result()

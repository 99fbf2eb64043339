"""Accuracy of a converted network along time (sengupta2019 Fig. 4) with its spikes (Fig. 5) and ACs.

One simulation of ``T`` steps per test batch reports the scores after each checkpoint step ``t``
(``ConvertedNetwork.trace``); the activity recorder counts, over the same run, the spikes of every neuron
layer and the synaptic operations ``sum_t sum_j 1[x_t,j != 0] F_j`` of every synaptic layer (fan-out ``F``,
``layers.fan_out``), each per test sample. A synaptic layer is named by its ``TimeDistributed`` wrapper.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

from deepspike.layers.activity_recorder import ActivityRecorder
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods.converted_network import ConvertedNetwork
from deepspike.training.evaluate import eval_pass


def checkpoints_for(timesteps: int, points: int = 40) -> list[int]:
    """Sorted time steps at which accuracy is reported: log-spaced and evenly spaced points, ending at T."""
    grid = np.concatenate([np.geomspace(1, timesteps, points), np.linspace(timesteps / points, timesteps, points)])
    return sorted({int(round(t)) for t in grid if 1 <= round(t) <= timesteps} | {timesteps})


@dataclass
class AccuracySweep:
    """Accuracy after each of ``marks`` steps over ``samples`` test images, and the activity per sample:
    ``spikes`` and ``neurons`` per neuron layer, ``accumulates`` per synaptic layer."""

    marks: list[int]
    accuracy: list[float]
    samples: int
    seconds: float
    spikes: dict[str, float]
    neurons: dict[str, int]
    accumulates: dict[str, float]


def sweep_accuracy(
    snn: ConvertedNetwork, batches: Iterable, timesteps: int, log: Callable[[str], None]
) -> AccuracySweep:
    """Run ``snn`` for ``timesteps`` steps on ``batches`` of ``(x, y)``; accuracy at ``checkpoints_for(T)``."""
    marks = checkpoints_for(timesteps)
    correct = torch.zeros(len(marks), dtype=torch.long)
    start = time.perf_counter()
    # eval_pass seeds with EVAL_SEED: the same draws as `deepspike eval` on the converted run.
    with eval_pass(snn), ActivityRecorder(snn) as recorder:
        for x, y in batches:
            with recorder.network_pass(len(y)):
                scores = snn.trace(x, timesteps, marks)  # [C, B, K]
            correct += (scores.argmax(dim=2) == y).sum(dim=1).cpu()
            n = recorder.samples
            log(f"  {n} test images: accuracy at T={timesteps} so far {correct[-1].item() / n:.4f}")
    seconds = time.perf_counter() - start
    n = max(1, recorder.samples)
    return AccuracySweep(
        marks,
        (correct.double() / n).tolist(),
        recorder.samples,
        seconds,
        {name: layer.spikes / n for name, layer in recorder.layers.items()},
        {name: layer.neurons for name, layer in recorder.layers.items()},
        _accumulates(snn, recorder, n),
    )


def _accumulates(snn: ConvertedNetwork, recorder: ActivityRecorder, samples: int) -> dict[str, float]:
    """Operations per sample of each ``TimeDistributed`` synaptic layer, named by the wrapper."""
    wrapped = (f"{name}.module" for name, m in snn.named_modules() if isinstance(m, TimeDistributed))
    return {
        name.removesuffix(".module"): recorder.synapses[name].operations / samples
        for name in wrapped
        if name in recorder.synapses
    }

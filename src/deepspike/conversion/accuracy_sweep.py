"""Accuracy of a converted network along time (sengupta2019 Fig. 4) with its spikes (Fig. 5) and ACs.

One simulation of ``T`` steps per test batch reports the scores after each checkpoint step ``t``
(``ConvertedNetwork.trace``); the activity recorder counts, over the same run, the spikes of every neuron
layer and the synaptic operations ``sum_t sum_j 1[x_t,j != 0] F_j`` of every synaptic layer (fan-out ``F``,
``layers.fan_out``), each per test sample, with the part of them that are MACs (``layers.activity_records``'
pricing rule, the one ``deepspike analyze`` uses). A synaptic layer is named by its ``TimeDistributed`` wrapper.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

from deepspike.layers.activity_recorder import ActivityRecorder
from deepspike.layers.activity_records import update_totals
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods.converted_network import ConvertedNetwork
from deepspike.training.evaluate import eval_pass


def checkpoints_for(timesteps: int, points: int = 40) -> list[int]:
    """Sorted time steps at which accuracy is reported: log-spaced and evenly spaced points, every power of
    two, ending at T."""
    grid = np.concatenate([np.geomspace(1, timesteps, points), np.linspace(timesteps / points, timesteps, points)])
    return sorted({int(round(t)) for t in grid if 1 <= round(t) <= timesteps} | set(table_timesteps(timesteps)))


def table_timesteps(timesteps: int) -> list[int]:
    """The T of the summary's tables: every power of two up to ``timesteps``, and ``timesteps``."""
    return sorted({2**k for k in range(timesteps.bit_length()) if 2**k <= timesteps} | {timesteps})


@dataclass
class AccuracySweep:
    """Accuracy after each of ``marks`` steps over ``samples`` test images, and the activity per sample:
    ``spikes`` and ``neurons`` per neuron layer, ``accumulates`` (synaptic operations, ACs + MACs) per synaptic layer
    (after all T steps); ``accumulates_at[i]`` and ``macs_at[i]`` (the MACs among them: all of a layer's operations
    when the recorder priced the layer as analog, ``SynapseRecord.add_inputs``, else none) per synaptic layer and
    ``spikes_at[i]`` (all neuron layers) after ``marks[i]`` steps; ``update_ops_per_step``: the neurons' own state
    updates (MACs, ACs) per sample and time step (``neurons.update_cost``; every neuron updates at every step)."""

    marks: list[int]
    accuracy: list[float]
    samples: int
    seconds: float
    spikes: dict[str, float]
    neurons: dict[str, int]
    accumulates: dict[str, float]
    accumulates_at: list[dict[str, float]]
    spikes_at: list[float]
    macs_at: list[dict[str, float]]
    update_ops_per_step: tuple[float, float] | None = (0.0, 0.0)


def sweep_accuracy(
    snn: ConvertedNetwork, batches: Iterable, timesteps: int, log: Callable[[str], None]
) -> AccuracySweep:
    """Run ``snn`` for ``timesteps`` steps on ``batches`` of ``(x, y)``; accuracy at ``checkpoints_for(T)``."""
    marks = checkpoints_for(timesteps)
    correct = torch.zeros(len(marks), dtype=torch.long)
    start = time.perf_counter()
    synapses = _synaptic_layers(snn)
    ops_at = [dict.fromkeys(synapses, 0.0) for _ in marks]
    spikes_at = [0.0] * len(marks)
    # eval_pass seeds with EVAL_SEED: the same draws as `deepspike eval` on the converted run.
    with eval_pass(snn), ActivityRecorder(snn) as recorder:
        for x, y in batches:
            base = _counts(recorder, synapses)

            def at_mark(t: int, base=base) -> None:
                i = marks.index(t)
                ops, spikes = _counts(recorder, synapses)
                spikes_at[i] += spikes - base[1]
                for name in synapses:
                    ops_at[i][name] += ops[name] - base[0][name]

            with recorder.network_pass(len(y)):
                scores = snn.trace(x, timesteps, marks, on_checkpoint=at_mark)  # [C, B, K]
            correct += (scores.argmax(dim=2) == y).sum(dim=1).cpu()
            n = recorder.samples
            log(f"  {n} test images: accuracy at T={timesteps} so far {correct[-1].item() / n:.4f}")
    seconds = time.perf_counter() - start
    n = max(1, recorder.samples)
    analog = {name for name in synapses if name in recorder.synapses and recorder.synapses[name].analog}
    macs_at = [{name: ops[name] if name in analog else 0.0 for name in synapses} for ops in ops_at]  # by layer
    return AccuracySweep(
        marks,
        (correct.double() / n).tolist(),
        recorder.samples,
        seconds,
        {name: layer.spikes / n for name, layer in recorder.layers.items()},
        {name: layer.neurons for name, layer in recorder.layers.items()},
        _per_sample(_counts(recorder, synapses)[0], recorder, n),
        [_per_sample(layer_ops, recorder, n) for layer_ops in ops_at],
        [spikes / n for spikes in spikes_at],
        [_per_sample(layer_macs, recorder, n) for layer_macs in macs_at],
        _update_ops_per_step(recorder, n * timesteps),
    )


def _update_ops_per_step(recorder: ActivityRecorder, sample_steps: int) -> tuple[float, float] | None:
    """(MACs, ACs) of the neurons' own updates per sample and step, from the recorder's totals over
    ``sample_steps`` = samples x T (``layers.activity_records.update_totals``: None when a layer is not
    priced), the membrane readout's integrator (``readout_updates``) included."""
    totals = update_totals(recorder.layers.values(), sample_steps, tuple(recorder.readout_updates))
    if totals["unpriced_update_layers"]:
        return None
    return totals["update_macs_per_sample"], totals["update_acs_per_sample"]


def _per_sample(ops: dict[str, float], recorder: ActivityRecorder, samples: int) -> dict[str, float]:
    """Operations per sample of the layers the recorder counts (conv, linear, pool), named by their wrapper."""
    return {_short(name): value / samples for name, value in ops.items() if name in recorder.synapses}


def _synaptic_layers(snn: ConvertedNetwork) -> list[str]:
    """The recorder's names of the ``TimeDistributed`` synaptic layers (``<wrapper>.module``), build order."""
    return [f"{name}.module" for name, m in snn.named_modules() if isinstance(m, TimeDistributed)]


def _short(name: str) -> str:
    """A synaptic layer named by its ``TimeDistributed`` wrapper."""
    return name.removesuffix(".module")


def _counts(recorder: ActivityRecorder, synapses: list[str]) -> tuple[dict[str, float], float]:
    """The recorder's running operations (ACs + MACs) per synaptic layer (0 where none were recorded yet) and spikes
    of all neurons."""
    ops = {name: recorder.synapses[name].operations if name in recorder.synapses else 0.0 for name in synapses}
    return ops, sum(layer.spikes for layer in recorder.layers.values())

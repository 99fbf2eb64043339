"""The TTFS measures (``ttfs.measures``) of a model over batches, from the activity recorder's spike times."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice

import torch
from torch import nn

from deepspike.layers.activity_recorder import ActivityRecorder
from deepspike.ttfs.measures import TTFSMeasures


@torch.no_grad()
def collect_measures(model: nn.Module, batches: Iterable, max_batches: int | None = None) -> dict[str, float]:
    """Run ``model`` (eval mode) over the first ``max_batches`` of ``batches`` of ``(x, y)``; the measures.

    The output layer is the last TTFS neuron layer; ``model(x)`` must return its times ``[B, K]``. A model
    without TTFS neuron layers gives ``{}``.
    """
    recorder = ActivityRecorder(model, codings=("ttfs",), operations=False, keep_last_times=True)
    names = list(recorder.layers)
    if not names:
        return {}
    measures = TTFSMeasures(names)
    was_training = model.training
    model.eval()
    try:
        with recorder:
            for x, _y in islice(batches, max_batches):
                output = model(x)
                measures.add([recorder.layers[n].last_times for n in names[:-1]], output)
    finally:
        model.train(was_training)
    return measures.result()

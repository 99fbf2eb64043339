"""Spike rasters: which neurons of each spiking layer of a rate-coded net fire at which time step, for one input.

``record_raster(model, x, max_neurons)`` runs one sample ``x [1, ...]`` through a time-stepped network
(``forward(x) -> scores``, spiking modules ``[T, B, ...] -> [T, B, ...]`` marked ``is_spiking_neuron``) in an
``eval_pass`` (the evaluation seed, so a raster is reproducible; a random encoder draws for this one sample, not as
in ``deepspike eval``'s batches) with a forward hook on every
spiking module, and keeps per layer the neurons that fired at least once, ``max_neurons`` of them evenly spaced in
index order when more fired (the layer's range of rates, rather than its busiest, often saturated, neurons)::

    {"layer": module name, "neurons": n (the layer's size), "timesteps": T,
     "shown": [i_0 < i_1 < ...] (indices into the layer's flattened output), "active": neurons that fired,
     "events": [[t, r], ...] (neuron shown[r] spiked at step t, 0-based), "spikes": all of the layer's spikes}

(a multi-spike neuron's count of ``k``, ``neurons.multi_spike``, is one event and ``k`` spikes, as the activity
recorder counts them).

A hook on a neuron also keeps the fused neuron + pooling kernel from replacing it (``layers.spiking_sequential``),
so the recorded output is the neuron's own ``[T, B, ...]`` spikes; the scores are not changed by recording.
"""

from __future__ import annotations

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_whole
from deepspike.layers.activity_recorder import emits_counts, sample_axis
from deepspike.training.evaluate import EVAL_SEED, eval_pass


def check_one_sample(model: nn.Module, x: torch.Tensor, what: str) -> None:
    """A one-line ``ConfigError`` unless ``x`` is one sample: ``[1, ...]``, or ``[T, 1, ...]`` for a net that takes
    its input already coded in time (class attribute ``takes_coded_input``: an imported NIR net); a NumPy array or a
    list was an AttributeError ("'numpy.ndarray' object has no attribute 'dim'")."""
    axis = sample_axis(model)
    if not isinstance(x, torch.Tensor):
        raise ConfigError(f"{what} of one sample: x must be a torch.Tensor {'[T, 1, ...]' if axis else '[1, ...]'}, "
                          f"got {type(x).__name__}")
    if x.dim() <= axis or x.shape[axis] != 1:
        raise ConfigError(f"{what} of one sample: x must be {'[T, 1, ...]' if axis else '[1, ...]'}, got "
                          f"{tuple(x.shape)}")


def record_raster(model: nn.Module, x: torch.Tensor, max_neurons: int = 32, seed: int = EVAL_SEED) -> list[dict]:
    """The raster of every spiking layer of ``model`` for the one sample ``x [1, ...]`` (module docstring)."""
    check_one_sample(model, x, "a raster is")
    if not is_whole(max_neurons, 1):  # 2.5, True and "3" were TypeError tracebacks from torch.linspace or "<"
        raise ConfigError(f"--raster must be >= 1 neurons per layer (0 turns the raster off), got {max_neurons!r}")
    outputs: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_hook(_keep(name, outputs)) for name, m in model.named_modules()
             if getattr(m, "is_spiking_neuron", False)]
    try:
        with eval_pass(model, seed):
            model(x)
    finally:
        for h in hooks:
            h.remove()
    counting = {name for name, m in model.named_modules() if emits_counts(m)}
    return [_layer_raster(name, s, max_neurons, name in counting) for name, s in outputs.items()]


def _keep(name: str, outputs: dict[str, torch.Tensor]):
    def hook(module: nn.Module, args, out) -> None:
        if isinstance(out, torch.Tensor) and out.dim() >= 2 and out.shape[1] == 1:  # [T, 1, ...] spikes
            s = out.detach().float().reshape(out.shape[0], -1)  # [T, N]
            outputs[name] = s if name not in outputs else torch.cat([outputs[name], s])  # a net run in pieces
    return hook


def _layer_raster(name: str, s: torch.Tensor, max_neurons: int, counts: bool = False) -> dict:
    """The raster dict of one layer's spikes ``s [T, N]`` (module docstring; ``counts``: ``s`` holds spike counts)."""
    fired = (s != 0).sum(0)  # [N] steps each neuron fired at
    active = torch.nonzero(fired).flatten()  # [A] neurons that fired, in index order
    # evenly spaced among them: the layer's range of rates, not its busiest
    shown = evenly_spaced(active, min(max_neurons, len(active))).tolist()
    return {"layer": name, "neurons": int(s.shape[1]), "timesteps": int(s.shape[0]), "shown": shown,
            "active": int((fired != 0).sum()), "events": spike_events(s[:, shown] != 0),
            "spikes": int(s.sum()) if counts else int(fired.sum())}


def evenly_spaced(indices: torch.Tensor, n: int) -> torch.Tensor:
    """``n <= len(indices)`` of ``indices [A]``, evenly spaced in their order (the first and the last included)."""
    return indices[torch.linspace(0, len(indices) - 1, n).round().long()]


def spike_events(spiked: torch.Tensor) -> list[list[int]]:
    """``[[t, r], ...]`` where ``spiked [T, R]`` (bool) is true, ordered by step ``t``, then row ``r``."""
    steps, rows = torch.nonzero(spiked, as_tuple=True)  # row-major: ordered by step
    return torch.stack([steps, rows], 1).tolist()

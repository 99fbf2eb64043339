"""Which modules of a network are neurons, told by class attributes (no import of the neuron packages).

- Rate-coded spiking neurons: class attribute ``is_spiking_neuron = True``; output spikes ``[T, B, ...]``.
- TTFS neuron layers: class attributes ``is_ttfs_layer = True`` and ``ttfs_role == "neurons"`` (the default
  when ``ttfs_role`` is absent; pools and time-domain norms are not neurons); output spike times
  ``[B, ...]``, ``+inf`` = no spike. An average pool's windows are neurons too (``is_ttfs_pool_neurons``), which
  the analysis counts (``ActivityRecorder(pool_neurons=True)``).
- Windowed TTFS neurons (``ttfs.window_layers``): class attribute ``is_window_neuron = True``; their output is
  the values their spikes code, their absolute spike times ``[B, ...]`` are ``module.spike_times_of(input)``.
- ANN neurons: ``nn.ReLU`` or a class with ``is_analog_neuron = True`` (``layers.qcfs.QCFS``); output
  activations ``[B, ...]``.
"""

from __future__ import annotations

from torch import nn


def is_spiking_neuron(module: nn.Module) -> bool:
    """A rate-coded spiking neuron module (class attribute ``is_spiking_neuron``)."""
    return bool(getattr(type(module), "is_spiking_neuron", False))


def is_ttfs_neuron_layer(module: nn.Module) -> bool:
    """A TTFS layer whose outputs are neuron spikes (``ttfs_role`` "neurons" or unset; not "pool"/"norm")."""
    cls = type(module)
    return bool(getattr(cls, "is_ttfs_layer", False)) and getattr(cls, "ttfs_role", "neurons") == "neurons"


def is_ttfs_pool_neurons(module: nn.Module) -> bool:
    """A TTFS pool whose windows are neurons that fire (zhou2021's average pool, ``TTFSAvgPool2d``: ``ttfs_role``
    "pool" and its own spikes, ``report_spikes``), not a relay of an input spike (the max pool)."""
    cls = type(module)
    return bool(getattr(cls, "is_ttfs_layer", False)) and getattr(cls, "ttfs_role", None) == "pool" and callable(
        getattr(cls, "report_spikes", None))


def neuron_coding(module: nn.Module) -> str | None:
    """``"rate"``, ``"ttfs"`` or ``"analog"`` (ANN activation) for a neuron module, None for anything else."""
    if is_spiking_neuron(module):
        return "rate"
    if is_ttfs_neuron_layer(module) or getattr(type(module), "is_window_neuron", False):
        return "ttfs"
    analog = isinstance(module, nn.ReLU) or getattr(type(module), "is_analog_neuron", False)
    return "analog" if analog else None


def ttfs_neuron_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every TTFS neuron layer of ``model`` in registration (forward) order."""
    return [(name, m) for name, m in model.named_modules() if is_ttfs_neuron_layer(m)]

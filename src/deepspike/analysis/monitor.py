"""One monitor for rate-coded and TTFS networks: spikes, sparsity, spike times and synaptic operations.

Forward hooks only read tensors, so the network's outputs are unchanged. What is hooked:

- Spiking neuron modules (class attribute ``is_spiking_neuron``): spikes ``[T, B, ...]`` (time chunks of one
  forward call add up). Per layer: spikes, neuron-steps, neurons that fired at least once, spikes per step.
- TTFS neuron layers (class attributes ``is_ttfs_layer`` and ``ttfs_role == "neurons"``, the default when
  absent; pools and time-domain norms are not neurons): output spike times ``[B, ...]``, ``+inf`` = no spike.
  Per layer: spikes (finite times), a sample of the spike times; the last TTFS layer of a forward call is the
  output layer, whose earliest spike per sample is the decision time.
- Synaptic layers (``Conv2d``, ``Linear``, ``AvgPool2d``, TTFS layers with a ``weight``): every non-zero
  (rate) or finite (TTFS) input is an event that costs ``fan-out`` operations (``analysis.fanout``):
  ``ops = sum_j 1[x_j event] F_j``. Inputs holding only values in {-1, 0, 1} (or spike times) are spikes
  and the operations are accumulates (ACs); analog inputs (direct encoding, NeuNorm, pooled values) make
  them multiply-accumulates (MACs), still counted only for non-zero inputs.
- The encoder (``model.encoder``): its output, when spike-valued, gives the input spikes (lee2020 Table 8
  counts them); for TTFS nets without an encoder, the finite inputs of the first TTFS layer are the
  input spikes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from deepspike.analysis.fanout import fan_out_map

MAX_TIMES = 20_000  # TTFS spike times kept per layer for histograms


@dataclass
class NeuronLayer:
    """Activity of one spiking layer, summed over the recorded samples."""

    name: str
    coding: str  # "rate" or "ttfs"
    neurons: int = 0  # per sample
    spikes: float = 0.0
    neuron_steps: float = 0.0  # rate: neurons x steps x samples; ttfs: neurons x samples
    active: float = 0.0  # neurons that fired at least once, summed over samples
    step_counts: list[float] = field(default_factory=list)  # rate: spikes at step t (all samples)
    times: list[float] = field(default_factory=list)  # ttfs: a sample of finite spike times

    def as_dict(self, samples: int) -> dict:
        n = max(1, samples)
        return {
            "name": self.name,
            "coding": self.coding,
            "neurons": self.neurons,
            "spikes_per_sample": self.spikes / n,
            "rate": self.spikes / self.neuron_steps if self.neuron_steps else 0.0,
            "sparsity": self.active / (self.neurons * n) if self.neurons else 0.0,
        }


@dataclass
class SynapseLayer:
    """Input events and the operations they cost in one synaptic layer, summed over samples."""

    name: str
    module_type: str
    events: float = 0.0
    acs: float = 0.0
    macs: float = 0.0

    def as_dict(self, samples: int) -> dict:
        n = max(1, samples)
        return {
            "name": self.name,
            "type": self.module_type,
            "events_per_sample": self.events / n,
            "acs_per_sample": self.acs / n,
            "macs_per_sample": self.macs / n,
        }


def is_ttfs_neuron_layer(module: nn.Module) -> bool:
    """A TTFS layer whose outputs are neuron spikes (``ttfs_role`` "neurons" or unset; not "pool"/"norm")."""
    cls = type(module)
    return bool(getattr(cls, "is_ttfs_layer", False)) and getattr(cls, "ttfs_role", "neurons") == "neurons"


def _is_spike_valued(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x.abs() == 1)).all())


class NetworkMonitor:
    """Context manager recording activity and operations of ``model`` (see the module docstring).

    After the ``with`` block: ``samples``, ``layers`` (name -> ``NeuronLayer``), ``synapses`` (name ->
    ``SynapseLayer``), ``input_spikes``, ``analog_input``, ``decision_times`` (TTFS), ``summary()``.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.samples = 0
        self.forwards = 0
        self.steps = 0  # time steps of the last forward call (rate nets)
        self.input_spikes = 0.0
        self.analog_input = False
        self.layers: dict[str, NeuronLayer] = {}
        self.synapses: dict[str, SynapseLayer] = {}
        self.decision_times: list[float] = []
        self.undecided = 0
        self._fan: dict[tuple[str, tuple[int, ...]], torch.Tensor | None] = {}
        self._handles: list = []
        self._fired: dict[str, torch.Tensor] = {}
        self._offset: dict[str, int] = {}
        self._ttfs_order: list[str] = []
        self._last_ttfs: torch.Tensor | None = None
        self._encoder_seen = False

    # -- hooks ---------------------------------------------------------------------------------------
    def __enter__(self) -> NetworkMonitor:
        hooks = [
            self.model.register_forward_pre_hook(self._begin),
            self.model.register_forward_hook(self._end),
        ]
        encoder = getattr(self.model, "encoder", None)
        if isinstance(encoder, nn.Module):
            hooks.append(encoder.register_forward_hook(self._encoder))
        for name, m in self.model.named_modules():
            cls = type(m)
            if getattr(cls, "is_spiking_neuron", False):
                self.layers[name] = NeuronLayer(name, "rate")
                hooks.append(m.register_forward_hook(self._rate(name)))
            elif is_ttfs_neuron_layer(m):
                self.layers[name] = NeuronLayer(name, "ttfs")
                hooks.append(m.register_forward_hook(self._ttfs(name)))
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.AvgPool2d)) or (
                getattr(cls, "is_ttfs_layer", False) and isinstance(getattr(m, "weight", None), torch.Tensor)
            ):
                self.synapses[name] = SynapseLayer(name, cls.__name__)
                hooks.append(m.register_forward_hook(self._synapse(name)))
        self._handles = hooks
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _begin(self, module, args) -> None:
        self.samples += int(args[0].shape[0])
        self.forwards += 1
        self._fired.clear()
        self._offset.clear()
        self._ttfs_order.clear()
        self._last_ttfs = None
        self._encoder_seen = False

    def _end(self, module, args, output) -> None:
        for name, fired in self._fired.items():
            self.layers[name].active += float(fired.sum())
        if self._offset:
            self.steps = max(self._offset.values())
        if self._last_ttfs is not None:  # earliest output spike per sample = decision time
            first = self._last_ttfs.flatten(1).min(dim=1).values  # [B, ...] -> [B]
            finite = torch.isfinite(first)
            self.decision_times += first[finite].tolist()
            self.undecided += int((~finite).sum())

    def _encoder(self, module, args, output) -> None:
        x = output.detach()
        self._encoder_seen = True
        if _is_spike_valued(x):
            self.input_spikes += float((x != 0).sum())
        elif torch.isinf(x).any() or (bool((x >= 0).all()) and x.dim() == args[0].dim()):
            # TTFS encoders give times [B, ...] (same rank as the image): finite entries are spikes
            self.input_spikes += float(torch.isfinite(x).sum())
        else:
            self.analog_input = True

    def _rate(self, name: str):
        def hook(module, args, output) -> None:
            s = (output[0] if isinstance(output, tuple) else output).detach()  # [T, B, ...]
            layer = self.layers[name]
            layer.neurons = s[0, 0].numel()
            layer.spikes += float(s.abs().sum())
            layer.neuron_steps += s.numel()
            per_step = s.abs().flatten(1).sum(dim=1).tolist()  # [T]
            t0 = self._offset.get(name, 0)
            if len(layer.step_counts) < t0 + len(per_step):
                layer.step_counts += [0.0] * (t0 + len(per_step) - len(layer.step_counts))
            for t, c in enumerate(per_step):
                layer.step_counts[t0 + t] += c
            self._offset[name] = t0 + len(per_step)
            fired = (s != 0).any(dim=0)  # [B, ...]
            self._fired[name] = fired | self._fired[name] if name in self._fired else fired

        return hook

    def _ttfs(self, name: str):
        def hook(module, args, output) -> None:
            t = (output[0] if isinstance(output, tuple) else output).detach()  # [B, ...] spike times
            layer = self.layers[name]
            finite = torch.isfinite(t)
            layer.neurons = t[0].numel()
            layer.spikes += float(finite.sum())
            layer.neuron_steps += t.numel()
            self._fired[name] = finite
            room = MAX_TIMES - len(layer.times)
            if room > 0:
                layer.times += t[finite][:room].tolist()
            if not self._ttfs_order and not self._encoder_seen:
                self.input_spikes += float(torch.isfinite(args[0].detach()).sum())
            self._ttfs_order.append(name)
            self._last_ttfs = t

        return hook

    def _synapse(self, name: str):
        def hook(module, args, output) -> None:
            x = args[0].detach()  # [N, ...]: samples (x time steps for rate nets)
            ttfs = getattr(type(module), "is_ttfs_layer", False)
            key = (name, tuple(x.shape[1:]))
            if key not in self._fan:
                self._fan[key] = fan_out_map(module, tuple(x.shape[1:]))
            fan = self._fan[key]
            if fan is None:
                return
            events = torch.isfinite(x) if ttfs else x != 0
            ops = float((events * fan.to(x.device)).sum())  # sum_j 1[event_j] F_j
            layer = self.synapses[name]
            layer.events += float(events.sum())
            if ttfs or _is_spike_valued(x):
                layer.acs += ops
            else:
                layer.macs += ops

        return hook

    # -- results -------------------------------------------------------------------------------------
    def histograms(self) -> list[dict]:
        """Per spiking layer: ``step_counts`` (rate: spikes per sample at each step) or ``times`` (TTFS)."""
        n = max(1, self.samples)
        return [
            {
                "name": layer.name,
                "coding": layer.coding,
                "times": list(layer.times),
                "step_counts": [c / n for c in layer.step_counts],
            }
            for layer in self.layers.values()
            if layer.neurons
        ]

    def summary(self) -> dict:
        """Per-sample totals and per-layer dicts (JSON-ready)."""
        n = max(1, self.samples)
        layers = [layer.as_dict(self.samples) for layer in self.layers.values() if layer.neurons]
        neurons = sum(layer.neurons for layer in self.layers.values())
        active = sum(layer.active for layer in self.layers.values())
        hidden = sum(layer.spikes for layer in self.layers.values()) / n
        acs = sum(s.acs for s in self.synapses.values()) / n
        macs = sum(s.macs for s in self.synapses.values()) / n
        decided = len(self.decision_times)
        return {
            "samples": self.samples,
            "timesteps": self.steps,
            "input_spikes_per_sample": self.input_spikes / n,
            "analog_input": self.analog_input,
            "neuron_spikes_per_sample": hidden,
            "spikes_per_sample": hidden + self.input_spikes / n,
            "sparsity": active / (neurons * n) if neurons else 0.0,
            "acs_per_sample": acs,
            "macs_per_sample": macs,
            "synops_per_sample": acs + macs,
            "decision_time_mean": sum(self.decision_times) / decided if decided else None,
            "undecided_fraction": self.undecided / n if self.decision_times or self.undecided else None,
            "layers": layers,
            "synapses": [s.as_dict(self.samples) for s in self.synapses.values()],
        }

"""One activity recorder for every spiking network: spikes, spike times, inputs and synaptic operations.

Forward hooks only read tensors, so the network's outputs are unchanged. A *network pass* is one call of
``model`` over ``x [B, ...]`` (``[T, B, ...]`` for a net with ``takes_coded_input``; its forward pre-hook starts it,
its forward hook ends it) or one ``network_pass`` block for
networks driven by another method (``ConvertedNetwork.trace``); a network that runs time in chunks calls
its neuron layers several times in one pass. What is hooked (``layers.neuron_kinds``, ``layers.fan_out``):

- Neuron layers of the chosen ``codings``, recorded in ``layers`` (name -> ``NeuronRecord``): rate-coded
  spikes ``[T, B, ...]`` (chunks of one pass add up in time), TTFS spike times ``[B, ...]`` (the last TTFS
  layer of a pass is the output layer, whose earliest spike per sample is the decision time), ANN ReLUs
  (inputs only). ``inputs="peak"`` / ``"values"`` also keeps each layer's largest input / positive inputs.
- Synaptic layers (``operations=True``), in ``synapses`` (name -> ``SynapseRecord``): events and ACs/MACs; a module
  with ``synaptic_operations`` (an attention product of two spike maps) counts its own. In a windowed TTFS net an
  average pool has no neurons and folds into the next synaptic layer, which prices the pool's input spikes through
  it (``_fold_pool``).
- The encoder (``model.encoder``): its output, when spike-valued, gives the input spikes; event frames of counts
  (``FrameEncoder``, whole numbers >= 0) give their sum as input events, a count of ``k`` being ``k`` spikes, which
  the first synaptic layer of the pass receives as ``k`` events of ``F_j`` ACs each (``SynapseRecord.add_inputs``
  with ``counts``; it counted one event and priced MACs, as for analog input); TTFS
  encoders give times ``[B, ...]`` (finite = spike; never those of a time-stepped net, ``eval_timesteps``, whose
  encoder gives steps ``[T, B, ...]``); other outputs are analog input, and the first synaptic layer of
  the pass, which receives it, is priced in MACs (``SynapseRecord.add_inputs``) even when one sample repeated over T
  steps looks like spikes of one size. Without an encoder, the finite inputs
  of the first TTFS layer of a pass are the input spikes.
- Likewise from the model's structure: a synaptic layer whose input is the output of an average pool without
  neurons (``nn.AvgPool2d``; the same storage, as a flattened view too) with no neuron layer run between them
  receives averages of spikes and is priced in MACs (``_averages``), whatever its values look like.
- Multi-spike neurons (``neurons.multi_spike``, ``max_spikes > 1``: ``emits_counts``) output spike counts
  ``n_t in {0..N}``: their layer records ``sum n_t`` spikes (so its rate, spikes per neuron and step, may exceed 1),
  and a synaptic layer whose input is that output (the same storage, as a ``[T B, F]`` view too) receives a count of
  ``k`` as ``k`` spike events of ``F_j`` ACs each, as an encoder's event counts; it gave one event per non-zero count,
  priced in MACs as analog input. A ``SpikeDelay`` (``spike_delay``) or a max pool fed such counts passes counts on
  (``COUNT_CARRIERS``: a new tensor of the same counts, moved in time or picked per window).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.layers.activity_records import NeuronRecord, SynapseRecord, is_event_counts, is_spike_valued
from deepspike.layers.event_frames import FrameEncoder
from deepspike.layers.fan_out import POOLS, fan_out_map, is_synaptic_layer, pooled_fan_out
from deepspike.layers.lean_avg_pool import pool_window
from deepspike.layers.neuron_kinds import is_ttfs_pool_neurons, neuron_coding
from deepspike.layers.spike_delay import SpikeDelay
from deepspike.neurons.update_cost import neuron_update_ops

CODINGS = ("rate", "ttfs", "analog")
COUNT_CARRIERS = (SpikeDelay, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool2d)
"""Modules whose output, given a multi-spike neuron's counts, is counts (``ActivityRecorder._carried``)."""
INPUT_RECORDS = ("peak", "values")


def _counts_own_operations(module: nn.Module) -> bool:
    """Whether ``module`` counts its synaptic operations itself: ``synaptic_operations(*inputs) -> (events,
    operations, analog)`` (``layers.spiking_attention.AttentionProduct``, whose inputs are multiplied together)."""
    return callable(getattr(module, "synaptic_operations", None))


def _averages(module: nn.Module) -> bool:
    """Whether ``module``'s output is averages of its inputs: an ``nn.AvgPool2d`` (``LeanAvgPool2d``) whose window
    holds more than one input. It has no neurons (spikebp's ``SpikingAvgPool`` and ``TTFSAvgPool2d`` emit their own
    neurons' spikes), so the next synaptic layer, unless a neuron layer runs between them, receives values
    ``{0, 1/k^2, 2/k^2, ...}`` of spikes: analog input, priced in MACs even where each feature shows one value (a
    Linear after a pool and a Flatten, whose features each read one window: 1.0 in one, 0.25 in another)."""
    return isinstance(module, nn.AvgPool2d) and math.prod(pool_window(module)[0]) > 1


def sample_axis(model: nn.Module) -> int:
    """The axis of ``model``'s input ``x`` that holds the samples: 0 (``x [B, ...]``), 1 for a net that takes its input
    already coded in time (class attribute ``takes_coded_input``: an imported NIR net, ``x [T, B, ...]``)."""
    return 1 if getattr(type(model), "takes_coded_input", False) else 0


def encoder_output_kind(module: nn.Module, x: torch.Tensor) -> str:
    """What an encoder's output ``x`` (``[T, B, ...]``) holds, one rule for the recorder and the perturbations
    (``analysis.perturb.SpikeDeletion``): ``"counts"`` for event frames of counts (a ``FrameEncoder``'s whole numbers
    >= 0 with one above 1, ``is_event_counts``: a count of ``k`` is ``k`` input events, even where every entry of a
    sample is ``k``), ``"spikes"`` for spike-valued output (``is_spike_valued``: ``0`` or ``+-m_c``, one magnitude per
    index of axis 1; binary frames), else ``"other"`` (analog input, or a TTFS encoder's times)."""
    if isinstance(module, FrameEncoder) and is_event_counts(x) and x.numel() and float(x.max()) > 1:
        return "counts"
    return "spikes" if is_spike_valued(x) else "other"


def emits_counts(module: nn.Module) -> bool:
    """Whether neuron ``module`` fires several spikes a step and outputs their count (``neurons.multi_spike``'s
    ``MultiSpikeLIF`` / ``MultiSpikeSynapticLIF`` with ``max_spikes > 1``)."""
    return getattr(module, "max_spikes", 1) > 1


def _first(output) -> torch.Tensor:
    return (output[0] if isinstance(output, tuple) else output).detach()


def _spike_output(module: nn.Module, args, output) -> torch.Tensor:
    """What a spiking module emitted: its output, or for windowed TTFS modules (which pass on the values their
    spikes code) ``spike_times_of(input)``."""
    if hasattr(module, "spike_times_of"):
        return module.spike_times_of(args[0].detach())
    return _first(output)


@dataclass
class _Pass:
    """State of the network pass under way."""

    fired: dict[str, torch.Tensor] = field(default_factory=dict)  # layer -> neurons fired so far [B, ...]
    steps: dict[str, int] = field(default_factory=dict)  # rate layer -> its steps so far
    last_ttfs: torch.Tensor | None = None  # times of the latest TTFS layer [B, ...]
    encoder_seen: bool = False
    analog_encoder: bool = False  # the encoder's output (what the first synaptic layer receives) is analog
    counts_encoder: bool = False  # ... is event counts (``encoder_output_kind``): a count of k is k spikes
    synapse_seen: bool = False
    pooled: tuple | None = None  # windowed nets: (pool, its input's events per position [C, H, W]) not yet priced
    averages: list = field(default_factory=list)  # outputs of average pools since the latest neuron layer ran
    # (held, so that no later tensor of the pass takes their storage)
    counts: list = field(default_factory=list)  # outputs of multi-spike neurons (``emits_counts``) of the pass, held


class ActivityRecorder:
    """Context manager recording the activity of ``model`` (see the module docstring).

    codings: neuron layers to hook ("rate", "ttfs", "analog"); outputs: record their spikes/times;
    inputs: None, "peak" or "values" (their inputs); operations: record synaptic layers; only: names of the
    neuron layers to hook (None = all); keep_last_times: keep each TTFS layer's times of the latest pass;
    pool_neurons: also record a TTFS average pool's neurons (``is_ttfs_pool_neurons``, one per window) as a "ttfs"
    layer, as a spikebp pool's IF neurons are (what ``deepspike analyze`` counts and prices; the TTFS measures'
    hidden layers are the neuron layers only).
    Totals: ``samples``, ``steps`` (time steps of the latest pass), ``input_spikes``, ``analog_input``,
    ``decision_times`` and ``undecided`` (TTFS samples without an output spike).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        codings: Collection[str] = ("rate", "ttfs"),
        outputs: bool = True,
        inputs: str | None = None,
        operations: bool = True,
        only: Collection[str] | None = None,
        keep_last_times: bool = False,
        pool_neurons: bool = False,
    ) -> None:
        if not set(codings) <= set(CODINGS) or inputs not in (None, *INPUT_RECORDS):
            raise ConfigError(f"bad recorder choice: codings {list(codings)}, inputs {inputs!r}")
        self.model, self.outputs, self.inputs, self.keep_last_times = model, outputs, inputs, keep_last_times
        self.samples, self.steps, self.input_spikes, self.analog_input = 0, 0, 0.0, False
        self.decision_times: list[float] = []
        self.undecided = 0
        pools = pool_neurons and "ttfs" in codings
        coding = {name: "ttfs" if pools and is_ttfs_pool_neurons(m) else neuron_coding(m)
                  for name, m in model.named_modules()}
        self._neurons = {name: m for name, m in model.named_modules()
                         if coding[name] in codings and (only is None or name in only)}
        self.layers = {name: NeuronRecord(name, coding[name]) for name in self._neurons}
        self._synaptic = {n: m for n, m in model.named_modules()
                          if operations and (is_synaptic_layer(m) or _counts_own_operations(m))}
        # in windowed TTFS nets every non-zero value a synaptic layer receives is one spike (after an average pool: the
        # spikes entering it, ``_fold_pool``): its synapses add
        self._time_stepped = hasattr(model, "eval_timesteps")  # a rate net (sweeps.takes_timesteps): no TTFS input
        self._value_spikes = any(getattr(type(m), "is_window_neuron", False) for m in model.modules())
        self.synapses = {n: SynapseRecord(n, type(m).__name__) for n, m in self._synaptic.items()}
        self._all_neurons = [m for name, m in model.named_modules() if operations and coding[name] is not None]
        self._readouts = [m for m in model.modules() if outputs and getattr(m, "prices_own_updates", False)]
        self.readout_updates = [0.0, 0.0]  # (MACs, ACs) of non-spiking output integrators, all samples
        self._fan: dict[tuple[str, tuple[int, ...]], torch.Tensor | None] = {}
        self._handles: list = []
        self._pass = _Pass()

    def __enter__(self) -> ActivityRecorder:
        hooks = [self.model.register_forward_pre_hook(self._begin, with_kwargs=True),
                 self.model.register_forward_hook(self._end)]
        encoder = getattr(self.model, "encoder", None)
        if self.outputs and isinstance(encoder, nn.Module):
            hooks.append(encoder.register_forward_hook(self._encoder))
        for name, m in self._neurons.items():
            coding = self.layers[name].coding
            if self.inputs is not None:
                hooks.append(m.register_forward_pre_hook(self._input(name)))
            if self.outputs and coding != "analog":
                hooks.append(m.register_forward_hook(self._rate(name) if coding == "rate" else self._ttfs(name)))
        hooks += [m.register_forward_hook(self._synapse(name)) for name, m in self._synaptic.items()]
        hooks += [m.register_forward_hook(self._readout) for m in self._readouts]
        hooks += [m.register_forward_hook(self._neuron_ran) for m in self._all_neurons]
        hooks += [m.register_forward_hook(self._carried) for m in self.model.modules() if isinstance(m, COUNT_CARRIERS)]
        self._handles = hooks
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    @contextmanager
    def network_pass(self, samples: int) -> Iterator[None]:
        """A network pass over ``samples`` samples for networks not run by ``model(x)``."""
        self._start_pass(samples)
        yield
        self._finish_pass()

    def _begin(self, module, args, kwargs) -> None:
        """A pass over the model's input ``x``: its first positional argument, or its first tensor keyword argument
        (``model(x=...)``; that gave an IndexError here); anything else is a one-line ``ConfigError``."""
        x = args[0] if args else next((v for v in kwargs.values() if isinstance(v, torch.Tensor)), None)
        if not isinstance(x, torch.Tensor) or x.dim() <= sample_axis(module):
            raise ConfigError(f"the activity recorder needs {type(module).__name__}'s input x [B, ...] "
                              f"(or [T, B, ...]) as a tensor, positional or keyword; got {type(x).__name__}")
        self._start_pass(int(x.shape[sample_axis(module)]))

    def _end(self, module, args, output) -> None:
        self._finish_pass()

    def _start_pass(self, samples: int) -> None:
        self.samples += samples
        self._pass = _Pass()
        if self.keep_last_times:
            for record in self.layers.values():
                record.last_times = None

    def _finish_pass(self) -> None:
        for name, fired in self._pass.fired.items():
            self.layers[name].active += float(fired.sum())
        if self._pass.steps:
            self.steps = max(self._pass.steps.values())
        if self._pass.last_ttfs is not None:  # earliest output spike per sample = decision time
            first = self._pass.last_ttfs.flatten(1).min(dim=1).values  # [B, ...] -> [B]
            finite = torch.isfinite(first)
            self.decision_times += first[finite].tolist()
            self.undecided += int((~finite).sum())

    def _encoder(self, module, args, output) -> None:
        x = _spike_output(module, args, output)
        self._pass.encoder_seen = True
        kind = encoder_output_kind(module, x)
        if kind == "spikes":
            self.input_spikes += float((x != 0).sum())
        elif kind == "counts":  # event counts [T, B, ...]: a count of k is k input events (spikes)
            self.input_spikes += float(x.sum())
            self._pass.counts_encoder = True
        elif isinstance(module, FrameEncoder):  # frames that are not counts (normalised): analog input
            self.analog_input = self._pass.analog_encoder = True
        elif not self._time_stepped and (torch.isinf(x).any() or (bool((x >= 0).all()) and x.dim() == args[0].dim())):
            # TTFS encoders give times [B, ...] (same rank as the image): finite entries are spikes; a time-stepped
            # net's encoder gives steps [T, B, ...], of the same rank for a sequence [B, T, F] (population values)
            self.input_spikes += float(torch.isfinite(x).sum())
        else:
            self.analog_input = self._pass.analog_encoder = True

    def _readout(self, module, args, output) -> None:
        """A module that ``prices_own_updates`` (a non-spiking output integrator, an imported NIR ``Scale``) on values
        ``[T, B, ...]``: its ``update_ops`` (with its ``input_gain_ops``: ``neuron_update_ops``) per value and step,
        as a spiking neuron's are counted (``NeuronRecord.add_spikes``)."""
        macs, acs = neuron_update_ops(module)
        self.readout_updates[0] += macs * args[0].numel()
        self.readout_updates[1] += acs * args[0].numel()

    def _neuron_ran(self, module, args, output) -> None:
        """A neuron layer (of any coding) ran: what the next synaptic layer receives is its output (one written in
        place into a pool's output too), not averages."""
        self._pass.averages = []

    def _carried(self, module, args, output) -> None:
        """A ``COUNT_CARRIERS`` module ran: its output is counts when its input was a multi-spike neuron's
        (``_Pass.counts``): a ``SpikeDelay``'s one step later, a max pool's the largest count of each window."""
        if self._reads(args[0], self._pass.counts):
            self._pass.counts.append(_first(output))

    def _input(self, name: str):
        def hook(module, args) -> None:
            self.layers[name].add_input(args[0].detach(), self.inputs == "values")

        return hook

    def _rate(self, name: str):
        def hook(module, args, output) -> None:
            t0 = self._pass.steps.get(name, 0)
            s = _first(output)
            counts = emits_counts(module)
            if counts:
                self._pass.counts.append(s)
            fired = self.layers[name].add_spikes(s, t0, neuron_update_ops(module, t0, s.shape[0]), counts)
            self._pass.steps[name] = self.layers[name].steps
            seen = self._pass.fired.get(name)
            self._pass.fired[name] = fired if seen is None else fired | seen

        return hook

    def _ttfs(self, name: str):
        def hook(module, args, output) -> None:
            t = _spike_output(module, args, output)
            if self._pass.last_ttfs is None and not self._pass.encoder_seen:
                self.input_spikes += float(torch.isfinite(args[0].detach()).sum())
            self._pass.fired[name] = self.layers[name].add_times(t, self.keep_last_times)
            self._pass.pooled = None  # a pool before these neurons pooled their currents, not spikes
            self._pass.last_ttfs = t

        return hook

    def _synapse(self, name: str):
        def hook(module, args, output) -> None:
            if _counts_own_operations(module):  # a product of two spike maps: no fixed fan-out
                self._pass.synapse_seen = True
                self.synapses[name].add_operations(*module.synaptic_operations(*args))
                return
            x = args[0].detach()  # [N, ...]: samples (x time steps for rate nets)
            key = (name, tuple(x.shape[1:]))
            if key not in self._fan:
                fan = fan_out_map(module, key[1])
                self._fan[key] = None if fan is None else fan.to(x.device, torch.int64)
            first, self._pass.synapse_seen = not self._pass.synapse_seen, True
            if self._value_spikes and self._fold_pool(name, module, x, self._fan[key]):
                return
            # analog whatever its values look like: the encoder's output (the pass's first synaptic layer receives it),
            # or an average pool's, with no neuron layer between (``_averages``)
            counts = (first and self._pass.counts_encoder or self._reads(x, self._pass.counts)) and is_event_counts(x)
            analog = (first and (self._pass.analog_encoder or self._pass.counts_encoder) and not counts
                      or self._reads(x, self._pass.averages))
            if _averages(module):
                self._pass.averages.append(_first(output))
            if self._fan[key] is not None:
                ttfs = bool(getattr(type(module), "is_ttfs_layer", False))
                self.synapses[name].add_inputs(x, self._fan[key], ttfs, self._value_spikes, analog, counts)

        return hook

    @staticmethod
    def _reads(x: torch.Tensor, outputs: list) -> bool:
        """Whether ``x`` is (a view of) one of ``outputs``: those of the average pools run since the latest neuron layer
        (``_Pass.averages``), or of the pass's multi-spike neurons (``_Pass.counts``)."""
        ptr = x.untyped_storage().data_ptr()
        return x.numel() > 0 and any(a.untyped_storage().data_ptr() == ptr for a in outputs)

    def _fold_pool(self, name: str, module: nn.Module, x: torch.Tensor, fan: torch.Tensor | None) -> bool:
        """In a windowed TTFS net an average pool has no neurons: it is part of the next synaptic layer's synapses
        (``methods.window_network``). The pool's input spikes ``x [N, C, H, W]`` are its events (no operations of its
        own) and are kept until a neuron layer fires (a pool of currents folds into the layer before it); the next
        synaptic layer of the pass prices them, ``ops = sum_j 1[x_j != 0] F'_j`` with
        ``F'`` its fan-out through the pool (``fan_out.pooled_fan_out``), as its events in ACs (each is one spike),
        instead of its input's non-zero averages. True when ``module`` was priced here."""
        pending, self._pass.pooled = self._pass.pooled, None
        if isinstance(module, POOLS):
            per_input = (x != 0).sum(dim=0, dtype=torch.int32).long()  # [C, H, W]
            self.synapses[name].add_operations(int(per_input.sum()), 0, False)
            self._pass.pooled = (module, per_input)
            return True
        if pending is None:
            return False
        pool, per_input = pending
        if fan is None:
            return False
        key = (f"{name} through its pool", tuple(per_input.shape))  # the same every pass: worked out once
        if key not in self._fan:
            self._fan[key] = pooled_fan_out(pool, key[1], fan).to(per_input.device, torch.int64)
        folded = self._fan[key]
        events, ops = torch.stack([per_input.sum(), (per_input * folded).sum()]).tolist()
        self.synapses[name].add_operations(events, ops, False)
        return True

"""What the activity recorder (``layers.activity_recorder``) keeps per neuron layer and per synaptic layer.

Neuron layer, summed over the recorded samples: rate-coded spikes ``s [T, B, ...]`` add
``spikes = sum 1[s != 0]`` (a spike of any value is one spike: binary, signed, or carrying its threshold ``th_c``;
a multi-spike neuron's count ``n`` is ``n`` spikes: ``sum n``),
``neuron_steps = numel(s)`` and the spikes of every step (``step_counts[t0 + t]``,
``t0`` = the steps of the layer's earlier chunks in the same network pass); TTFS times ``t [B, ...]`` add
``spikes = #finite(t)``, ``neuron_steps = numel(t)`` and a sample of the finite times. Inputs ``x`` (the
current a neuron layer receives) keep their largest value and, when asked, every positive value.

Synaptic layer: every non-zero (rate) or finite (TTFS) input ``x_j`` is an event costing ``F_j``
operations (``layers.fan_out``): ``ops = sum_j 1[x_j event] F_j``, counted exactly in integers.

Pricing (the one rule of every energy figure: ``deepspike analyze``/``compare`` through ``models.energy.energy_table``
and ``deepspike convert``'s per-T rows, both from these records): an operation is an accumulate (AC) when the event is
a spike, a multiply-accumulate (MAC) when it carries an analog value (an event-frame count of ``k`` is ``k`` spikes,
``k`` events and ``k F_j`` ACs, and so is a multi-spike neuron's count of ``k``, ``neurons.multi_spike``). A spike
is an event of a fixed size: binary or
signed spikes ``{-1, 0, 1}``, and threshold-valued spikes ``{-th_c, 0, th_c}`` (one magnitude per channel ``c``,
``is_spike_valued``), whose magnitude folds into the weights (``w th_c`` stored once), so one event adds one weight per
synapse. A value that varies from event to event is analog: the average of spikes over a pooling window (``{0, 1/4,
1/2, ...}`` after a 2x2 average pool of spikes), the pixels of direct input, the sums ``{0, 1, 2}`` of a SEW-ResNet
``add`` junction (``layers.sew``: one graded value formed at the junction, one event of ``F_j`` MACs, as the
"multi-bit (integer) spikes" of SEW shortcuts are read in Yao et al. 2023's Spike-driven Transformer, which moved its
shortcuts before the neurons to keep spikes binary; an event-frame count of ``k`` is instead ``k`` sensor events); each
event then multiplies the weight by the value. TTFS spike times and the values of windowed TTFS nets (each non-zero
value is one spike; an average pool there folds into the next layer, which prices the spikes entering the pool:
``ActivityRecorder._fold_pool``) are ACs.
A rate-coded neuron's own state update at every step is priced apart, from its ``update_ops()`` (``(MACs, ACs)`` per
neuron and step, ``neurons.update_cost``; with ``input_gain_ops``, the product ``c x_t`` of an input gain run just
before it: ``neuron_update_ops``) times its neuron steps; a TTFS layer's, and that of a neuron without
``update_ops``, is not priced (``unpriced``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

MAX_TIMES = 20_000  # TTFS spike times kept per layer (for histograms)


def is_spike_valued(x: torch.Tensor) -> bool:
    """True when ``x [N, C, ...]`` holds spikes: every entry is ``0`` or ``+-m_c``, one magnitude ``m_c > 0`` per
    index ``c`` of axis 1 (the channel of a conv input ``[N, C, H, W]``, the feature of a linear input ``[N, F]``).

    ``m_c = max_{n, ...} |x[n, c, ...]|`` and the test is ``x == sign(x) m_c`` exactly: binary and signed spikes
    (``m_c = 1``) and threshold-valued spikes (``m_c = th``, one threshold per layer or per channel, as converted nets
    with ``spike_value: threshold`` emit) pass; averages of spikes (several multiples of ``1/k^2`` per channel) and
    analog inputs fail. The test reads values: a channel that shows one magnitude in ``x`` passes, so an analog
    ``[1, F]`` (one row), one direct-input sample repeated over T rows, or a pooled map with one non-zero value per
    channel passes as well (the recorder prices the layer receiving an analog encoder's output, and the one after an
    average pool without neurons, in MACs from the model's structure, and ``SynapseRecord.add_inputs`` prices by
    layer, so a later call reprices it). For a
    time-major input ``[T, B, ...]`` (spikebp's ``SpikingAvgPool``) axis 1 is the batch: one magnitude per sample,
    which binary spikes meet.
    """
    if x.numel() == 0:
        return True
    if x.dim() < 2:
        return torch.equal(x, torch.sign(x))
    magnitude = x.abs().amax(dim=[d for d in range(x.dim()) if d != 1], keepdim=True)  # [1, C, 1, ...]
    return torch.equal(x, torch.sign(x) * magnitude)


def is_event_counts(x: torch.Tensor) -> bool:
    """True when every entry of ``x`` is a whole number >= 0: event frames of counts (``FrameEncoder``), where a count
    of ``k`` is ``k`` input events."""
    return bool((x >= 0).all()) and torch.equal(x, x.round())


@dataclass
class NeuronRecord:
    """Activity of one neuron layer (``coding``: "rate", "ttfs" or "analog"), summed over samples."""

    name: str
    coding: str
    neurons: int = 0  # per sample
    samples: int = 0  # samples of the network passes that reached the layer
    steps: int = 0  # rate: time steps of the latest network pass
    spikes: float = 0.0
    neuron_steps: float = 0.0  # rate: neurons x steps x samples; ttfs: neurons x samples
    active: float = 0.0  # neurons that fired at least once, summed over samples
    step_counts: list[float] = field(default_factory=list)  # rate: spikes at step t (all samples)
    times: list[float] = field(default_factory=list)  # ttfs: a sample of finite spike times
    last_times: torch.Tensor | None = None  # ttfs: output times [B, ...] of the latest pass (when kept)
    input_peak: float = -math.inf  # largest input value
    input_values: list[torch.Tensor] = field(default_factory=list)  # positive inputs (when kept)
    update_macs: float = 0.0  # rate: the neurons' own state updates (neurons.update_cost), all samples
    update_acs: float = 0.0
    unpriced: bool = False  # a neuron of the layer does not say what its update costs (no ``update_ops``)

    def add_spikes(self, s: torch.Tensor, t0: int, update_ops: tuple[int, int] | None = None,
                   counts: bool = False) -> torch.Tensor:
        """Add spikes ``s [T, B, ...]`` starting at step ``t0`` of the pass, and ``update_ops`` (MACs, ACs; None:
        not priced) per neuron and step for each of them; ``counts``: ``s`` holds spike counts ``n_t in {0..N}``
        (multi-spike neurons, ``neurons.multi_spike``), ``sum n_t`` spikes, so ``spikes / neuron_steps`` may exceed 1;
        returns fired ``[B, ...]``."""
        self.neurons = s[0, 0].numel()
        if update_ops is None:
            self.unpriced = True
        else:
            self.update_macs += update_ops[0] * s.numel()
            self.update_acs += update_ops[1] * s.numel()
        if t0 == 0:
            self.samples += s.shape[1]
        self.steps = t0 + s.shape[0]
        # [T]: sum n_t for counts, else sum 1[s_t != 0], one per spike whatever its value
        per_step = (s.flatten(1).sum(1, dtype=torch.float64) if counts else s.flatten(1).ne(0).sum(1)).tolist()
        self.spikes += sum(per_step)
        self.neuron_steps += s.numel()
        if len(self.step_counts) < self.steps:
            self.step_counts += [0.0] * (self.steps - len(self.step_counts))
        for t, count in enumerate(per_step):
            self.step_counts[t0 + t] += count
        return s.any(dim=0)

    def add_times(self, t: torch.Tensor, keep_last: bool) -> torch.Tensor:
        """Add spike times ``t [B, ...]`` (``+inf`` = no spike); returns fired ``[B, ...]``."""
        finite = torch.isfinite(t)
        self.unpriced = True  # a TTFS neuron's update (its spike time from its inputs) is not priced
        self.neurons = t[0].numel()
        self.samples += t.shape[0]
        self.spikes += float(finite.sum())
        self.neuron_steps += t.numel()
        room = MAX_TIMES - len(self.times)
        if room > 0:
            self.times += t[finite][:room].tolist()
        if keep_last:
            self.last_times = t
        return finite

    def add_input(self, x: torch.Tensor, keep_values: bool) -> None:
        """Keep the largest entry of the input ``x`` and, if ``keep_values``, its positive entries."""
        self.input_peak = max(self.input_peak, float(x.max()))
        if keep_values:
            values = x.detach().flatten().float().cpu()
            self.input_values.append(values[values > 0])


def update_totals(layers: Iterable[NeuronRecord], samples: int, readouts: tuple[float, float] = (0.0, 0.0)) -> dict:
    """The neurons' own state updates per sample (``neurons.update_cost``): ``update_macs_per_sample`` and
    ``update_acs_per_sample``, None when a layer that spiked is not priced (a TTFS layer, a neuron without
    ``update_ops``: a partial total would read as the whole), and ``unpriced_update_layers`` naming those layers.
    ``readouts``: the (MACs, ACs) of non-spiking output integrators (``ActivityRecorder.readout_updates``), all
    samples."""
    layers = list(layers)
    unpriced = [layer.name for layer in layers if layer.neurons and layer.unpriced]
    n = max(1, samples)
    return {
        "update_macs_per_sample": None if unpriced else (sum(layer.update_macs for layer in layers) + readouts[0]) / n,
        "update_acs_per_sample": None if unpriced else (sum(layer.update_acs for layer in layers) + readouts[1]) / n,
        "unpriced_update_layers": unpriced,
    }


@dataclass
class SynapseRecord:
    """Input events and the operations they cost in one synaptic layer, summed over samples."""

    name: str
    module_type: str
    events: float = 0.0
    acs: float = 0.0
    macs: float = 0.0
    analog: bool = False  # an input of this layer was analog: all its operations are MACs

    @property
    def operations(self) -> float:
        """ACs + MACs."""
        return self.acs + self.macs

    def add_inputs(self, x: torch.Tensor, fan: torch.Tensor, ttfs: bool, value_spikes: bool = False,
                   analog: bool = False, counts: bool = False) -> None:
        """Add the events of inputs ``x [N, ...]`` (finite if ``ttfs``, else non-zero), fan-out ``fan [...]``:
        ``ops = sum_j 1[x_j event] F_j``; ``counts``: ``x`` holds event counts (``is_event_counts``, a
        ``FrameEncoder``'s frames reaching the first synaptic layer), a count of ``k`` being ``k`` events, each one
        spike: ``events = sum_j x_j``, ``ops = sum_j x_j F_j`` ACs. Priced by the module docstring's rule: ACs for
        spikes (``ttfs``, ``counts``, ``is_spike_valued(x)``, or ``value_spikes``: each non-zero value is one spike of
        a windowed TTFS net), MACs
        for analog inputs (averages of spikes, direct input; ``analog``: the caller knows ``x`` is analog, as the
        recorder does for the layer that receives an analog encoder's output). The price is the layer's, not the
        call's: once one call's input is analog, every operation of the layer is a MAC, those of earlier calls
        included (a call whose values happen to look like spikes, such as a pooled map with one value per channel,
        is repriced by the next call that shows they are not)."""
        events = x.round().long() if counts else torch.isfinite(x) if ttfs else x != 0
        per_input = events.sum(dim=0, dtype=torch.int64)  # [...] events per input position
        count, ops = torch.stack([per_input.sum(), (per_input * fan).sum()]).tolist()  # ops: sum_j 1[x_j] F_j
        spikes = ttfs or value_spikes or counts or (not analog and is_spike_valued(x))
        self.add_operations(count, ops, not spikes)

    def add_operations(self, events: float, operations: float, analog: bool) -> None:
        """Add counted ``events`` and ``operations`` (a layer that counts its own, such as an attention product),
        priced as MACs from the first call whose input is ``analog`` on (``add_inputs``), else as ACs."""
        self.events += events
        if analog and not self.analog:
            self.analog = True  # what a layer receives does not change between calls: reprice the earlier ones
            self.macs, self.acs = self.macs + self.acs, 0.0
        if self.analog:
            self.macs += operations
        else:
            self.acs += operations

"""STDP on chosen synaptic layers of a rate-coded network, beside gradient training (``method.stdp_layers``).

``StdpLearner.attach(net, body, layers, rule)`` makes layers ``layers`` (0-based, counting the body's linear and
convolutional layers in forward order, not those inside a recurrent layer) learn by the trace rule of
``layers.stdp_rule`` instead of by gradients: their parameters stop taking gradients, their weights start clipped
into ``[w_min, w_max]``, and after every training batch's backward pass ``apply()`` adds the rule's ``dW`` for that
batch. The rest of the network trains by the loss as before, with gradients flowing through the STDP layers to the
layers before them: the hybrid of unsupervised feature layers and a supervised classifier (SpikingJelly's STDP
tutorial trains its convolutions this way).

Each layer must drive its neurons directly: the next module of its container is the neuron, after batch-norms at
most (refused at ``attach`` otherwise: the classifier, a residual branch's last layer, a pooling before the neuron).

Activity is recorded as ``layers.rate_penalty.HiddenRates`` records rates: a forward pre-hook on the network opens
the recording in training calls with gradients; a forward hook on each STDP layer keeps its input ``[T, B, ...]``
and its output's shape, and a forward hook on its neuron takes the spikes and adds the layer's ``LTP`` and ``LTD``
sums at once (in float32, outside autocast), so no sequence is held past its neuron. The hooks are on only in
training mode (a hooked neuron runs unfused), so evaluation keeps every fused kernel. ``epochs = N``
(``method.stdp_epochs``) limits learning to the first N epochs (unsupervised features first, then the loss alone;
the trainer's ``begin_epoch`` schedule, so a resumed run does what the uncut one did); after them the hooks stay
off. Under data parallelism the sums and sample counts are added over the ranks before the step, so every rank makes
the same step. The rule needs each sample's whole sequence in one call: a network with a learner refuses
``train.temporal_grad`` other than bptt (``trains_on_whole_sequences``).
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.layers.neuron_kinds import is_spiking_neuron
from deepspike.layers.owned_hooks import add_owned_hook, remove_owned_hooks
from deepspike.layers.recurrent import RecurrentSpiking
from deepspike.layers.stdp_rule import PLASTIC_LAYERS, StdpRule, apply_stdp, check_plastic, stdp_correlations
from deepspike.layers.temporal_batchnorm import TemporalEffectiveBatchNorm
from deepspike.layers.time_distributed import TimeDistributed

WHOLE_SEQUENCE_REASON = "STDP (method.stdp_layers) takes each sample's traces over all T steps in one call"


def synaptic_layers(body: nn.Module) -> list[TimeDistributed]:
    """The body's linear and convolutional layers applied to all steps at once, in registration (forward) order; not
    those of a recurrent layer (``layers.recurrent``: run one step at a time, where traces cannot span time)."""
    inside = {id(m) for r in body.modules() if isinstance(r, RecurrentSpiking) for m in r.modules()}
    return [m for m in body.modules()
            if isinstance(m, TimeDistributed) and isinstance(m.module, PLASTIC_LAYERS) and id(m) not in inside]


def _is_norm(module: nn.Module) -> bool:
    """A batch-norm run on all steps (``TimeDistributed`` batch-norm, tdBN) or TEBN."""
    return isinstance(module, TemporalEffectiveBatchNorm) or (
        isinstance(module, TimeDistributed) and isinstance(module.module, nn.modules.batchnorm._BatchNorm))


def _neuron_after(body: nn.Module, layer: nn.Module) -> nn.Module | None:
    """The spiking neuron ``layer`` drives directly: the next module of its container after batch-norms at most (or
    the first of a container there, as ``nn.Sequential(neuron, NeuNorm)``); None when something else comes first."""
    for parent in body.modules():
        siblings = list(parent.children())
        if any(m is layer for m in siblings):
            following = siblings[[id(m) for m in siblings].index(id(layer)) + 1:]
            for m in following:
                first = next(iter(m.children()), None) if isinstance(m, nn.Sequential) else None
                if is_spiking_neuron(m) or is_spiking_neuron(first):
                    return m if is_spiking_neuron(m) else first
                if not _is_norm(m):
                    return None
            return None
    return None


def _described(layer: nn.Module) -> str:
    """``Conv2d(1->32)``, ``Linear(128->10)``: a layer's kind and sizes, for messages."""
    sizes = (layer.in_features, layer.out_features) if isinstance(layer, nn.Linear) else (layer.in_channels,
                                                                                         layer.out_channels)
    return f"{type(layer).__name__}({sizes[0]}->{sizes[1]})"


class StdpLearner(nn.Module):
    """The STDP layers of one network and their sums since the last step (module docstring). A module without
    parameters or buffers (nothing in the state dict), so that the trainer's per-epoch schedule reaches it:
    ``epochs`` (None: all) is how many epochs the rule learns before the layers stay as they are."""

    schedule_spans_epochs = False  # learning in epoch e depends on e alone: a resume may add epochs

    def __init__(self, pairs: list[tuple[TimeDistributed, nn.Module]], indices: list[int], rule: StdpRule,
                 epochs: int | None = None) -> None:
        super().__init__()
        self.pairs, self.indices, self.rule, self.epochs = pairs, indices, rule, epochs  # pairs: not submodules
        self.learning = True
        self._inputs: list[torch.Tensor | None] = [None] * len(pairs)
        self._shapes: list[torch.Size | None] = [None] * len(pairs)
        self._sums: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(pairs)
        self._positions = [1] * len(pairs)  # output positions per sample and channel (layers.stdp_rule's P)
        self._samples = 0
        self._hooked = False
        self._open = False

    @classmethod
    def attach(cls, net: nn.Module, body: nn.Module, layers: tuple[int, ...], rule: StdpRule,
               epochs: int | None = None) -> StdpLearner:
        """A learner for layers ``layers`` of ``body`` (0-based among ``synaptic_layers``), hooked to ``net``'s
        calls; a one-line ``ConfigError`` for an index out of range, a repeated one or a layer with no neuron. Set it
        as a submodule of a net that does not call its children in turn (``RateNetwork.stdp``) for the trainer's
        ``begin_epoch`` to reach it."""
        found = synaptic_layers(body)
        if len(set(layers)) != len(layers):
            raise ConfigError(f"method.stdp_layers names a layer twice: {list(layers)}")
        pairs = []
        for i in layers:
            if not 0 <= i < len(found):
                listed = ", ".join(f"{k} {_described(m.module)}" for k, m in enumerate(found)) or "none"
                raise ConfigError(f"method.stdp_layers: no synaptic layer {i}; the net's linear and convolutional "
                                  f"layers (recurrent ones not counted): {listed}")
            check_plastic(found[i].module, f"synaptic layer {i}")
            neuron = _neuron_after(body, found[i])
            if neuron is None:
                raise ConfigError(f"method.stdp_layers: synaptic layer {i} ({_described(found[i].module)}) drives no "
                                  "spiking neuron directly (a batch-norm between them at most; the classifier and a "
                                  "residual branch's last layer learn from the loss)")
            pairs.append((found[i], neuron))
        learner = cls(pairs, list(layers), rule, epochs)
        learner._freeze()
        net.register_forward_pre_hook(learner._begin)
        net.register_forward_hook(learner._end)
        net.trains_on_whole_sequences = WHOLE_SEQUENCE_REASON
        return learner

    def begin_epoch(self, epoch: int, epochs: int) -> None:
        """Learn in 0-based epoch ``epoch`` when it is one of the first ``self.epochs`` (all when None)."""
        self.learning = self.epochs is None or epoch < self.epochs

    def _freeze(self) -> None:
        """The STDP layers take no gradients; their weights start inside the bounds."""
        for synapse, _ in self.pairs:
            for p in synapse.module.parameters():
                p.requires_grad_(False)
            with torch.no_grad():
                synapse.module.weight.clamp_(self.rule.w_min, self.rule.w_max)

    def _begin(self, net: nn.Module, args) -> None:
        self._inputs = [None] * len(self.pairs)
        recording = net.training and self.learning
        self._open = recording and torch.is_grad_enabled()
        if self._open:
            self._samples += args[0].shape[0]
        if recording != self._hooked:
            self._hook(recording)

    def _end(self, net: nn.Module, args, output) -> None:
        self._open = False
        self._inputs = [None] * len(self.pairs)

    def _hook(self, on: bool) -> None:
        """Hook the STDP layers and their neurons (``on``) or take this learner's hooks off them
        (``layers.owned_hooks``)."""
        for i, (synapse, neuron) in enumerate(self.pairs):
            if on:
                add_owned_hook(synapse, self._keep_input, i)
                add_owned_hook(neuron, self._record, i)
            else:
                remove_owned_hooks(synapse, self)
                remove_owned_hooks(neuron, self)
        self._hooked = on

    def _keep_input(self, i: int, module: nn.Module, args, output: torch.Tensor) -> None:
        if self._open:
            self._inputs[i], self._shapes[i] = args[0].detach(), output.shape

    def _record(self, i: int, module: nn.Module, args, spikes: torch.Tensor) -> None:
        pre = self._inputs[i]
        if not self._open or pre is None:
            return
        if spikes.shape != self._shapes[i]:
            raise ConfigError(f"method.stdp_layers: synaptic layer {self.indices[i]} gives {list(self._shapes[i])} "
                              f"but the neurons after it spike in {list(spikes.shape)}: STDP needs the layer to "
                              f"drive the neurons directly")
        with torch.no_grad(), torch.autocast(spikes.device.type, enabled=False):  # float32 sums under bf16 training
            ltp, ltd = stdp_correlations(pre, spikes.detach(), self.pairs[i][0].module, self.rule)
        self._positions[i] = math.prod(spikes.shape[2:]) // self.pairs[i][0].module.weight.shape[0]
        old = self._sums[i]
        self._sums[i] = (ltp, ltd) if old is None else (old[0] + ltp, old[1] + ltd)
        self._inputs[i] = None

    def apply(self) -> None:
        """``W += dW`` for the sums since the last call (added over data-parallel ranks; the mean over their samples
        and the layer's output positions), then start new sums."""
        if not self.learning:  # the same on every rank: a function of the epoch
            return
        samples, sums, per_layer = float(self._samples), self._sums, self._positions
        if dist.is_available() and dist.is_initialized():
            samples, sums, per_layer = _summed_over_ranks(samples, sums, per_layer, self.pairs)
        for (synapse, _), recorded, positions in zip(self.pairs, sums, per_layer, strict=True):
            if recorded is not None and samples > 0:
                apply_stdp(synapse.module.weight, *recorded, samples * positions, self.rule)
        self._sums = [None] * len(self.pairs)
        self._samples = 0


def _summed_over_ranks(samples: float, sums: list, positions: list[int], pairs: list) -> tuple[float, list, list]:
    """The sample count and ``(LTP, LTD)`` sums added over all ranks (a rank with none adds zeros), and each layer's
    output positions as the ranks that recorded it saw them (the largest: a rank that never recorded has 1)."""
    parts = []
    for (synapse, _), recorded in zip(pairs, sums, strict=True):
        w = synapse.module.weight
        parts.extend(recorded if recorded is not None else (torch.zeros_like(w, dtype=torch.float32),) * 2)
    flat = torch.cat([p.reshape(-1) for p in parts] + [torch.tensor([samples], device=parts[0].device)])
    dist.all_reduce(flat)
    out, at = [], 0
    for synapse, _ in pairs:
        n = synapse.module.weight.numel()
        shape = synapse.module.weight.shape
        out.append((flat[at:at + n].view(shape), flat[at + n:at + 2 * n].view(shape)))
        at += 2 * n
    seen = torch.tensor(positions, dtype=torch.int64, device=flat.device)
    dist.all_reduce(seen, op=dist.ReduceOp.MAX)
    return float(flat[-1]), out, seen.tolist()

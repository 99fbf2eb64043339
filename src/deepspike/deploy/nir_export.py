"""Rate-coded networks -> NIR graphs (``to_nir``) and files (``write_nir``, ``export_run``).

A rate network (``stbp``, ``spikebp``, ``ann``-converted ``convert``) is a chain: input -> [weighted layer
(``Conv2d``, a grouped one as its block-diagonal plain conv; ``Affine``, or ``Linear`` when bias-free) |
``AvgPool2d`` | ``Flatten`` | neuron (``IF``/``LIF``;
``CubaLIF`` for the current-based LIF of ``method.neuron=synaptic``; a trained PLIF / learnt-threshold layer,
``LearnableLIF``, a ``LIF`` whose tau, r and threshold hold its learnt values per neuron, ``neurons.learnable_node``;
:mod:`neurons`)]* -> output. Dropout is the
identity at inference and is left out; lee2020's spiking pool is ``AvgPool2d`` + ``IF`` and its leak-corrected LIF
(``spikebp``) a ``LIF`` that fires strictly above threshold (metadata ``fires``). A residual block
``act(body(x) + shortcut(x))`` branches: body and shortcut both start at the block's input node and end in the
junction's neurons, which NIR sums (an identity shortcut is a direct edge; SEW junctions, which combine spikes, have
no NIR node). A recurrent layer (``layers.recurrent``) adds its weight ``V`` on a cycle ``neuron -> rec -> neuron``
(read as one step of delay). A hidden layer's one-step spike delay (``layers.spike_delay``,
``model.args.spike_delay``) is a ``Delay`` node of ``dt`` on each element after its neurons. A layer with learnable
synaptic delays (``layers.delays.DelayedLinear``) is exported
only with ``round_delays=True``, as the rounded net (each delay a whole step, as hardware runs it): one branch
``Delay(k dt) -> Linear(W * (d == k))`` per distinct delay ``k``, all entering the next node (:mod:`nir_delays`);
the graph's metadata then says ``delays_rounded: True``. The readout's neurons end the chain (a non-spiking
integrator readout is ``LI`` (leak < 1) or ``I``).
A net read by ``from_nir`` (:mod:`nir_modules`; maybe trained since) is written back node for node: per-neuron
constants (``HeterogeneousLIF``) as per-neuron ``IF`` / ``LIF`` / ``CubaLIF``, a readout decaying per neuron
(``PerNeuronIntegrator``) as an ``LI`` of array ``tau``, an input gain as ``Scale``, a sum pool
as ``SumPool2d``, a branching body as its graph; the metadata it was read with that is not about the graph (input
coding, ``timesteps``, ``decode``, standardisation) is kept.
Graph metadata records what NIR cannot say: ``dt``, the input coding (``encoder``), ``timesteps``, how outputs are
decoded (``decode``: ``rate``, ``vote`` with ``num_classes``, each class voted for by ``K / num_classes`` of the
``K`` output neurons, ``membrane``), the reset mode, that neurons fire at ``v >= threshold``, and whether thresholds
were folded. Node metadata says the same where a tool reads nodes only: the
``Input`` node carries ``coding`` (the encoder, with its settings: ``encoder_options``), ``dt`` and ``timesteps``;
each neuron node ``reset``, ``fires``, ``dt`` and ``decay``.

``fold_thresholds=True`` divides the last weighted layer before each neuron layer (weights and bias) by
its threshold and sets the threshold to 1 (one threshold per chip): ``h/th >= 1 <=> h >= th`` and both
resets commute with the scaling, so the spikes are unchanged. A neuron with no weighted layer since the
previous neuron (lee2020's pooling neuron) keeps its threshold.
"""

from __future__ import annotations

import copy
import io
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deepspike.config.schema import TrainConfig
from deepspike.core.atomic import atomic_write, check_output_file
from deepspike.core.errors import ConfigError
from deepspike.core.options import FLOAT32_MAX, FLOAT32_TINY, is_finite, shown_value
from deepspike.core.spike_tally import ReportsSpikes
from deepspike.deploy.deps import check_graph, require_nir
from deepspike.deploy.model_walk import (
    check_own_forward,
    checked_input_shape,
    flatten_sample_dims,
    leaf_modules,
    to_numpy,
    ungrouped_conv_weight,
)
from deepspike.deploy.neurons import (
    converted_if_node,
    cuba_node,
    float32_time_constant,
    learnable_node,
    neuron_node,
    synaptic_node,
    time_constants_reading_back,
)
from deepspike.deploy.nir_delays import delay_branches
from deepspike.deploy.nir_fields import non_finite_field
from deepspike.deploy.nir_modules import GraphBody, Integrator, NirNetwork, PerNeuronIntegrator, Scale
from deepspike.deploy.nir_ttfs import is_ttfs_model, to_nir_ttfs
from deepspike.deploy.nir_window import is_window_model, to_nir_window
from deepspike.deploy.ttfs_nodes import DEFAULT_LARGE, DEFAULT_T_WINDOW
from deepspike.layers.batchnorm_fold import BATCH_NORMS, fold_batch_norms_
from deepspike.layers.containers import ResidualBlock
from deepspike.layers.delays import ONE_HOT_SIGMA, DelayedLinear
from deepspike.layers.dropout import TimeFixedDropout
from deepspike.layers.leaky_integrator import LeakyIntegratorReadout
from deepspike.layers.readout import MembraneReadout, SpikeRateReadout
from deepspike.layers.recurrent import RecurrentSpiking
from deepspike.layers.spike_delay import SpikeDelay
from deepspike.layers.spiking_attention import QKAttention, SpikeDrivenSelfAttention, SpikingSelfAttention
from deepspike.layers.spiking_pool import SpikingAvgPool
from deepspike.layers.temporal_batchnorm import TemporalEffectiveBatchNorm
from deepspike.layers.voting import VotingReadout
from deepspike.layers.wta_stdp import CompetitiveStdpLayer
from deepspike.neurons.chunked_if import ChunkedIF
from deepspike.neurons.heterogeneous import HeterogeneousLIF
from deepspike.neurons.learnable import LearnableLIF
from deepspike.neurons.modules import SpikingNeuron
from deepspike.neurons.params import NeuronParams
from deepspike.neurons.spikebp_lif import LeakCorrectedLIF
from deepspike.neurons.synaptic import SynapticLIF
from deepspike.training.reload import check_delays_to_round, load_run
from deepspike.training.runs import check_not_run_file

DEFAULT_DT = 1e-4  # seconds; snnTorch's NIR importer assumes this step


def refuse_attention(model: nn.Module) -> None:
    """One-line ``ConfigError`` for a net with spiking self-attention: no NIR node (nor Speck or Xylo) multiplies
    spike maps."""
    if any(isinstance(m, SpikingSelfAttention | SpikeDrivenSelfAttention | QKAttention) for m in model.modules()):
        raise ConfigError("NIR export: spiking self-attention multiplies spike maps (SSA's Q K^T V, the masks of SDSA "
                          "and Q-K attention), which no NIR node expresses (nor Speck or Xylo); a net with attention "
                          "runs in deepspike only")


def chain_modules(model: nn.Module) -> tuple[list[nn.Module], dict]:
    """The modules of a rate network in execution order (readout neurons last) and the decode metadata."""
    body = getattr(model, "body", None)
    if is_ttfs_model(model):
        raise ConfigError("to_nir exports rate-coded networks; this is a TTFS network: use to_nir_ttfs")
    if isinstance(model, CompetitiveStdpLayer):
        raise ConfigError("NIR export: a wta_stdp net (Diehl & Cook) has conductance-based synapses, adaptive "
                          "thresholds and a label vote, which no NIR node expresses; it runs in deepspike only")
    if isinstance(model, NirNetwork):
        return imported_chain(model)
    if body is None:
        raise ConfigError(f"NIR export supports rate-coded networks (with .body); got {type(model).__name__}: wrap "
                          "a net of your own as RateNetwork(encoder, body, readout, timesteps)")
    refuse_attention(body)
    mods = leaf_modules(body)
    info: dict = {"encoder": _encoder_name(model), "timesteps": int(getattr(model, "eval_timesteps", 0) or 0),
                  **encoder_options(model)}
    readout = getattr(model, "readout", None)
    output = getattr(model, "output", None)  # the converted network's output IF layer
    if isinstance(readout, nn.Module):  # the modules it hands on (its neuron, the output IF) meet _RateGraph.module
        check_own_forward(readout)
    if isinstance(output, SpikingNeuron):
        if readout == "membrane":
            mods.append(Integrator(1.0))
            info["decode"] = "membrane"
        else:
            mods.append(output)
            info["decode"] = "rate"
    elif isinstance(readout, VotingReadout):
        mods.append(readout.neuron)
        info.update(decode="vote", num_classes=int(readout.num_classes))
    elif isinstance(readout, SpikeRateReadout):
        mods.append(readout.neuron)
        info["decode"] = "rate"
    elif isinstance(readout, MembraneReadout | LeakyIntegratorReadout):
        mods.append(Integrator(float(getattr(readout, "decay", getattr(readout, "leak", 1.0)))))
        info["decode"] = "membrane"
    else:
        raise ConfigError(f"NIR export: unsupported readout {type(readout).__name__} (NIR has no max over time; "
                          "the rate, vote and membrane readouts export: method.readout=rate|membrane)")
    return mods, info


def folded_copy(model: nn.Module, chip: str, memo: dict | None = None) -> nn.Module:
    """``model`` itself when it has no batch-norm, else a copy with each batch-norm (BN, tdBN) folded into the
    conv/linear layer before it (``fold_batch_norms_``: exact in eval mode; the model is not changed), for the
    mapping to ``chip`` ("xylo", "speck"); TEBN (a scale per time step) is refused in one line naming the chip.
    ``memo``: ``copy.deepcopy``'s, ``id(module of model) -> its copy``."""
    if not any(isinstance(m, (*BATCH_NORMS, TemporalEffectiveBatchNorm)) for m in model.modules()):
        return model
    try:
        return fold_batch_norms_(copy.deepcopy(model, memo))
    except ConfigError as e:
        raise ConfigError(f"{chip}: {e}") from None


def folded_chain(model: nn.Module, chip: str) -> tuple[list[nn.Module], dict, list[int]]:
    """:func:`chip_chain` of :func:`folded_copy` and, per module of it, its index in ``chip_chain(model)``: the
    layer number in the user's net, for refusals (the folded chain lacks the folded batch-norms, so its own indices
    named a later layer of the net: ``Linear, BN, IF, MaxPool`` was refused as "layer 2 (MaxPool1d)", the net's
    layer 3)."""
    memo: dict = {}
    folded = folded_copy(model, chip, memo)
    mods, info = chip_chain(folded, chip)
    if folded is model:
        return mods, info, list(range(len(mods)))
    own = {id(memo[id(m)]): m for m in model.modules() if id(m) in memo}  # id(copy) -> the module of the net
    where = {id(m): j for j, m in enumerate(chip_chain(model, chip)[0])}
    numbers, last = [], -1
    for m in mods:  # a module of neither net (the chain's own Integrator) follows the one before it
        last = where.get(id(own.get(id(m))), last + 1)
        numbers.append(last)
    return mods, info, numbers


def chip_chain(model: nn.Module, chip: str) -> tuple[list[nn.Module], dict]:
    """:func:`chain_modules` for a chip report (``chip``: "xylo", "speck"), its refusals said for the chip: a
    ``max_membrane`` readout under ``--target xylo`` was "NIR export: unsupported readout MaxMembraneReadout (NIR has
    no max over time; ... method.readout=rate|membrane)", naming another export and, for the chip, a readout that
    does not map either. A converted net read out by its output layer's membrane (``readout="membrane"``) runs on
    the chip with that layer spiking: its IF neurons in the readout's place (decode by spike counts; the chip's
    outputs are spiking neurons, counted), and ``info["chip_note"]`` saying so."""
    if is_ttfs_model(model):
        raise ConfigError(f"{chip}: a TTFS network cannot map: the chip runs rate-coded spiking nets")
    try:
        mods, info = chain_modules(model)
    except ConfigError as e:
        readout = type(getattr(model, "readout", None)).__name__
        if f"unsupported readout {readout} " in str(e):
            raise ConfigError(f"{chip}: the readout {readout} cannot map: the chip's outputs are spiking neurons, read "
                              "by their spike counts (method.readout=rate)") from None
        raise ConfigError(f"{chip}: {str(e).removeprefix('NIR export: ')}") from None
    output = getattr(model, "output", None)
    if info.get("decode") == "membrane" and isinstance(output, SpikingNeuron) and isinstance(mods[-1], Integrator):
        mods = [*mods[:-1], output]
        info["chip_note"] = "membrane readout replaced by the output IF layer's spikes (decode by count)"
    return mods, info


GRAPH_KEYS = ("producer", "format", "dt", "fires", "reset", "thresholds_folded", "delays_rounded")
"""Graph metadata that ``to_nir`` works out from the net it writes; an imported net's other metadata is kept."""


def imported_chain(model: NirNetwork) -> tuple[list[nn.Module], dict]:
    """``chain_modules`` of a net read by ``from_nir`` (and maybe trained since): the body's modules (a branching
    body, ``GraphBody``, as itself: ``_RateGraph.graph_body`` walks it), and the graph metadata it was read with
    that describes its use rather than its graph (coding, ``timesteps``, ``decode``, ``input_mean``, ...)."""
    mods = [model.body] if isinstance(model.body, GraphBody) else leaf_modules(model.body)
    return mods, {k: v for k, v in model.metadata.items() if k not in GRAPH_KEYS}


def is_normal_dt(dt: float) -> bool:
    """``dt`` (seconds per step) is a number (not a bool) from float32's smallest normal ``FLOAT32_TINY`` to
    ``FLOAT32_MAX``: a step the float32 time constants and leak factors of a NIR graph (written or read) can hold."""
    # bounds as Python floats: a float32 bound cast 1e308 to float32 (a RuntimeWarning)
    return is_finite(dt) and FLOAT32_TINY <= dt <= FLOAT32_MAX


def check_dt(dt: float) -> None:
    """A one-line ``ConfigError`` unless ``dt`` (seconds per step) is finite, > 0 and a normal float32 (the graph's
    time constants ``dt / (1 - k)`` are float32: ``inf`` wrote every IF's ``r`` as 0, 1e-320 every LIF's ``tau`` as
    0, files our own reader then refused)."""
    if not is_normal_dt(dt):
        raise ConfigError(f"dt must be a finite number of seconds > 0 (a normal float32), got {dt}")


def graph_outputs(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``(values [T, B, K], spiking)``: what the Output node of ``to_nir(model)`` carries for the encoded input ``x
    [T, B, *input_shape]``, computed by the net itself: the output neurons' spikes (``spiking``), or for a membrane
    readout the integrator's membrane ``v_t = decay v_{t-1} + o_t`` of the body's outputs ``o_t`` at every step. A net
    read by ``from_nir`` gives its own output (its body ends in the imported readout, which ran twice before: an
    ``LI`` readout's trace integrated again, a per-neuron ``LI`` called spikes), ``spiking`` when every module
    feeding the Output emits spikes."""
    mods, _ = chain_modules(model)
    with torch.no_grad():
        if isinstance(model, NirNetwork):
            return model(x), _imported_spikes(model)
        out = model.body(x)
        if not isinstance(mods[-1], Integrator):
            return mods[-1](out), True
        # step by step, as the graph's LI / I node adds: Integrator's forward (a cumsum for decay 1) rounds otherwise
        v, trace = torch.zeros_like(out[0]), torch.empty_like(out)
        for t in range(out.shape[0]):
            v = v * mods[-1].decay + out[t]
            trace[t] = v
        return trace, False


def _imported_spikes(model: NirNetwork) -> bool:
    """Whether the last module of every stage feeding an imported net's Output emits spikes (``ReportsSpikes``)."""
    body = model.body
    ends = [body.stages[body.stage_keys[p]] for p in body.preds[body.order[-1]] if p in body.stage_keys] \
        if isinstance(body, GraphBody) else [body]
    return bool(ends) and all(isinstance(leaf_modules(end)[-1], ReportsSpikes) for end in ends)


def _encoder_name(model: nn.Module) -> str:
    enc = getattr(model, "encoder", None)
    kind = getattr(enc, "kind", None)
    if kind:
        return str(kind)
    name = type(enc).__name__
    return {"FrameEncoder": "frames", "SignedPoissonEncoder": "bipolar", "DirectEncoder": "direct"}.get(name, name)


def encoder_options(model: nn.Module) -> dict:
    """What a consumer needs to redo the input coding besides its name: a delta encoder's ``delta_threshold``,
    ``delta_mode`` and ``delta_off_spikes`` (``layers.event_frames.DeltaEncoder``); a population encoder's
    ``population_size``, ``population_low``, ``population_high``, ``population_width`` and ``population_spikes``
    (``layers.population_encoder``: the graph's input is the coded, ``size`` times wider one); a bipolar encoder's
    ``bipolar_scale`` ``c`` and ``bipolar_value`` ``a`` (``s_t = a sign(x) 1[U_t < min(|x| / c, 1)]``: 1 and 1 for
    ``coding.encoder.InputEncoder``, a converted net's ``input_scale`` and 1 or ``c`` for its
    ``SignedPoissonEncoder``); nothing for the others."""
    enc = getattr(model, "encoder", None)
    kind = getattr(enc, "kind", None)
    if kind == "bipolar":
        scale = float(getattr(enc, "scale", 1.0))
        return {"bipolar_scale": scale, "bipolar_value": scale if getattr(enc, "weighted", False) else 1.0}
    if kind == "population":
        return {"population_size": int(enc.size), "population_low": float(enc.low), "population_high": float(enc.high),
                "population_width": float(enc.width), "population_spikes": int(enc.spikes)}
    if kind != "delta":
        return {}
    return {"delta_threshold": float(enc.threshold), "delta_mode": str(enc.mode),
            "delta_off_spikes": int(enc.off_spikes)}


def _pair(v) -> np.ndarray:
    return np.array(v if isinstance(v, tuple | list | np.ndarray) else (v, v), dtype=np.int64)


class _RateGraph:
    """Nodes and edges of a rate-coded graph as it is built: ``last`` feeds the next node, and so do the nodes in
    ``joins`` (the other branches of a delayed layer); ``pending`` holds the weighted nodes since the last neuron
    layer (for ``fold_thresholds``; a delayed layer's branches as one tuple)."""

    def __init__(self, nir, shape: tuple[int, ...], dt: float, fold_thresholds: bool, coding: dict,
                 round_delays: bool = False, low_latency: bool = False) -> None:
        self.nir, self.shape, self.dt, self.fold, self.round_delays = nir, shape, dt, fold_thresholds, round_delays
        self.low_latency = low_latency
        self.nodes: dict = {"input": nir.Input(input_type={"input": np.array(shape)}, metadata=coding)}
        self.edges: list[tuple[str, str]] = []
        self.last, self.joins, self.pending, self.resets, self.delayed_layers = "input", [], [], set(), 0

    def add(self, kind: str, node) -> str:
        name = f"{len(self.nodes) - 1}_{kind}"
        self.nodes[name] = node
        self.edges += [(src, name) for src in (self.last, *self.joins)]
        self.last, self.joins = name, []
        return name

    def neuron(self, params: NeuronParams, strict: bool = False, syn_decay: float | None = None) -> None:
        """The neuron node after the pending weighted nodes (folding the threshold into them if asked): ``IF`` /
        ``LIF`` (``neuron_node``), or ``CubaLIF`` for a current-based neuron with ``syn_decay`` (``synaptic_node``;
        scaling its input scales its current, so folding is the same)."""
        threshold = self._fold(params.threshold)
        self.resets.add(params.reset)
        if syn_decay is not None:
            self.add("cubalif", synaptic_node(params, syn_decay, self.shape, self.dt, threshold))
        else:
            self.add("if" if params.decay == 1.0 else "lif", neuron_node(params, self.shape, self.dt, threshold,
                                                                         strict))
        self.pending.clear()

    def _fold(self, threshold: float) -> float | None:
        """With ``fold_thresholds``: the pending weighted nodes divided by ``threshold``, which becomes 1.0; else
        None (the neuron keeps its own)."""
        if not (self.fold and self.pending):
            return None
        names = self.pending[-1] if isinstance(self.pending[-1], tuple) else (self.pending[-1],)
        for last in (self.nodes[name] for name in names):
            last.weight = last.weight / threshold
            if getattr(last, "bias", None) is not None:
                last.bias = last.bias / threshold
        return 1.0

    def converted(self, m: ChunkedIF) -> None:
        """A low-latency converted neuron (start membrane, threshold-valued or signed spikes, per-channel thresholds)
        as an ``IF`` with deepspike's metadata (``converted_if_node``); its thresholds are not folded."""
        if self.fold:
            raise ConfigError("--fold-thresholds: a low-latency converted net (threshold-valued spikes, per-channel "
                              "thresholds or a start membrane) keeps its thresholds; export it without folding")
        th = m.channel_thresholds.numpy() if m.channel_thresholds is not None else m.params.threshold
        self.resets.add(m.params.reset)
        self.add("if", converted_if_node(th, m.params.reset, m.initial, m.weighted, m.signed, self.shape, self.dt))
        self.pending.clear()

    def learnable(self, m: LearnableLIF) -> None:
        """A trained PLIF / learnt-threshold layer: its decay, input gain and threshold (``learnable_node``);
        folding needs one threshold for the layer, and a positive one (a learnt threshold is not kept > 0)."""
        with torch.no_grad():
            k = m.decay().float()
            gain = 1.0 - k if m.decay_input else torch.ones_like(k)
            th = (m.threshold if m.threshold is not None else torch.tensor(m.fixed.threshold)).float()
        th = self._folded(th, f"learnt one per {'channel' if m.neurons is None else 'neuron'}", "this net learnt")
        self.resets.add(m.fixed.reset)
        node = learnable_node(k.numpy(), gain.numpy(), th.numpy(), m.fixed.reset, self.shape, self.dt)
        self.add("if" if isinstance(node, self.nir.IF) else "lif", node)
        self.pending.clear()

    def _folded(self, th: torch.Tensor, varies: str, has: str) -> torch.Tensor:
        """The thresholds ``th`` (one per layer, channel or neuron) as the node writes them: with ``fold_thresholds``
        and weights before the neuron, 1.0 after dividing those weights by the layer's one threshold (``_fold``),
        which must then be one value and > 0 (``varies``, ``has``: the messages' words for this net's thresholds)."""
        if not (self.fold and self.pending):
            return th
        first = float(th.reshape(-1)[0])
        if th.numel() > 1 and not bool((th == first).all()):
            raise ConfigError(f"--fold-thresholds divides a layer's weights by its one threshold; this net {varies}: "
                              "export it without folding")
        if not first > 0:  # h / th >= 1 <=> h >= th needs th > 0
            raise ConfigError(f"--fold-thresholds divides a layer's weights by its threshold, which must be > 0; "
                              f"{has} {first:g}: export it without folding")
        return torch.tensor(self._fold(first))

    def heterogeneous(self, m: HeterogeneousLIF) -> None:
        """An imported layer whose neurons each have their own fixed constants (``neurons.heterogeneous``): a
        per-neuron ``IF`` / ``LIF`` (``learnable_node`` with input gain 1) or ``CubaLIF`` (``cuba_node``), the
        constants broadcast to the layer's shape as the neuron broadcasts them, each float32 decay written so that it
        reads back bit for bit (``exact``: rounded up, 13 of 256 random LIF taus read back another float32 decay)."""
        k, th, alpha = (None if t is None else np.broadcast_to(to_numpy(t), self.shape).astype(np.float64)
                        for t in (m.decay, m.threshold, m.syn_decay))
        th = self._folded(torch.as_tensor(th), "has one per neuron", "this layer has").numpy()
        self.resets.add(m.fixed.reset)
        meta = {"reset": m.fixed.reset, "fires": "v >= threshold", "dt": float(self.dt)}
        if alpha is not None:
            self.add("cubalif", cuba_node(k, alpha, np.broadcast_to(th, self.shape), self.dt, meta, exact=True))
        else:
            node = learnable_node(k, np.ones_like(k), np.broadcast_to(th, self.shape), m.fixed.reset, self.shape,
                                  self.dt, exact=True)
            self.add("if" if isinstance(node, self.nir.IF) else "lif", node)
        self.pending.clear()

    def scale(self, m: Scale) -> None:
        """An elementwise gain (an imported ``Scale`` node, or a neuron node's input scale): a ``Scale`` node of one
        value per neuron."""
        try:
            gain = np.broadcast_to(to_numpy(m.scale), self.shape).copy()
        except ValueError:
            raise ConfigError(f"NIR export: a Scale of shape {tuple(m.scale.shape)} does not fit the layer's "
                              f"{list(self.shape)} values") from None
        self.add("scale", self.nir.Scale(scale=gain))

    def module(self, m: nn.Module) -> None:
        nir = self.nir
        check_own_forward(m)  # leaf_modules checked the body's; this also covers readouts and a block's act
        if isinstance(m, nn.Dropout | TimeFixedDropout | nn.Identity):
            return
        if isinstance(m, RecurrentSpiking):
            self.recurrent(m)
        elif isinstance(m, DelayedLinear):
            self.delayed(m)
        elif isinstance(m, SpikeDelay):  # out[t] = s[t - steps]: a Delay of steps * dt on each element
            self.add("delay", nir.Delay(delay=np.full(self.shape, m.steps * self.dt, dtype=np.float32),
                                        metadata={"delay_steps": m.steps, "dt": float(self.dt)}))
        elif isinstance(m, ChunkedIF) and not m.plain and self.low_latency:
            self.converted(m)
        elif getattr(m, "max_spikes", 1) != 1:  # neurons.multi_spike
            raise ConfigError(f"NIR export: layer {type(m).__name__} fires up to {m.max_spikes} spikes a step "
                              "(method.max_spikes) and NIR's LIF fires one: export it with --target xylo, or train "
                              "with method.max_spikes: 1")
        elif isinstance(m, SpikingNeuron):
            _check_plain(m)
            self.neuron(m.params)
        elif isinstance(m, SynapticLIF):
            self.neuron(m.fixed, syn_decay=m.syn_decay)
        elif isinstance(m, HeterogeneousLIF):
            self.heterogeneous(m)
        elif isinstance(m, Scale):
            self.scale(m)
        elif isinstance(m, GraphBody):
            self.graph_body(m)
        elif isinstance(m, LearnableLIF):
            self.learnable(m)
        elif isinstance(m, LeakCorrectedLIF):  # spikebp: a LIF firing strictly above threshold, reset to zero (its
            # leak-corrected derivative is for training only)
            self.neuron(NeuronParams(decay=float(m.leak), threshold=float(m.threshold), reset="zero"), strict=True)
        elif isinstance(m, SpikingAvgPool):
            k, s, pad = _pair(m.kernel_size), _pair(m.stride), _pair(getattr(m, "padding", 0))
            self.add("avgpool", nir.AvgPool2d(kernel_size=k, stride=s, padding=pad))  # padding: silent inputs
            self.shape = tuple(_pool_shape(m.kernel_size, m.stride, self.shape, pad))
            self.neuron(NeuronParams(decay=1.0, threshold=float(m.threshold), reset="zero"), strict=True)
        elif isinstance(m, Integrator):
            self.add("i" if m.decay == 1.0 else "li", _integrator_node(nir, m.decay, self.shape, self.dt))
        elif isinstance(m, PerNeuronIntegrator):
            self.add("li", per_neuron_integrator_node(nir, to_numpy(m.decay), self.shape, self.dt))
        elif isinstance(m, ResidualBlock):
            self.residual(m)
        else:
            self.shape = _add_stateless(nir, m, self.shape, self.add, self.pending)

    def graph_body(self, body: GraphBody) -> None:
        """An imported branching graph (``nir_modules.GraphBody``): each node's modules in its topological order,
        fed by the nodes that end its predecessors (NIR sums a node's inputs, as the body does); the Output node
        hands its predecessors' ends on to the graph's Output."""
        if self.fold:
            raise ConfigError("NIR export: fold_thresholds would have to rescale every branch of a branching graph; "
                              "export it without folding")
        ends = {body.order[0]: ([self.last, *self.joins], self.shape)}
        for name in body.order[1:]:
            sources = [node for p in body.preds[name] for node in ends[p][0]]
            shapes = {ends[p][1] for p in body.preds[name]}
            if len(shapes) != 1:
                raise ConfigError(f"NIR export: node {name!r} sums inputs of shapes {sorted(shapes)}; a NIR node sums "
                                  "inputs of one shape")
            key = body.stage_keys.get(name)
            self.last, self.joins, self.shape = sources[0], sources[1:], shapes.pop()
            for m in leaf_modules(body.stages[key]) if key is not None else ():
                self.module(m)
            ends[name] = ([self.last, *self.joins], self.shape)

    def recurrent(self, layer: RecurrentSpiking) -> None:
        """``s_t = neuron(W x_t + V s_{t-1})``: the feed-forward nodes, the neuron node, and ``V`` as a ``Linear``
        (``Affine`` with a bias) node on a cycle ``neuron -> rec -> neuron``, which readers take as one step of
        delay (``graph_order.feedback_edges``; snnTorch's ``RLeaky`` export writes the same cycle)."""
        if self.fold:
            raise ConfigError("NIR export: fold_thresholds would have to rescale a recurrent weight too; export "
                              "recurrent nets without folding")
        for m in leaf_modules(layer.feedforward):
            self.module(m)
        self.module(layer.neuron)
        neuron, weights = self.last, layer.recurrent.module
        name = f"{len(self.nodes) - 1}_rec"
        w = to_numpy(weights.weight)
        self.nodes[name] = (self.nir.Linear(weight=w) if weights.bias is None
                            else self.nir.Affine(weight=w, bias=to_numpy(weights.bias)))
        self.edges += [(neuron, name), (name, neuron)]

    def delayed(self, layer: DelayedLinear) -> None:
        """A layer with synaptic delays rounded to whole steps, ``y[t] = b + sum_n w[m, n] x[t - d[m, n], n]``: one
        branch per distinct delay from the current node (``nir_delays.delay_branches``); the next node takes them
        all (``joins``). A layer whose delays are whole steps already (one-hot kernel: ``round_delays_``, as
        ``from_nir`` builds it) is written as it is; another one without ``round_delays`` is a one-line ``ConfigError``
        saying how to export it (``to_nir(from_nir(file))`` of a file with Delay nodes was refused so)."""
        if not (self.round_delays or _whole_steps(layer)):
            raise ConfigError("NIR export: layer DelayedLinear has learnable synaptic delays, which the trained layer "
                              "spreads over neighbouring steps (a narrow Gaussian); NIR can hold the rounded net (each "
                              "delay a whole step, as hardware runs it; `deepspike eval RUN --round-delays` scores "
                              "it): export with --round-delays (to_nir(..., round_delays=True))")
        if self.joins:
            raise ConfigError("NIR export: a delayed layer follows another directly; put a neuron layer between them")
        if self.shape != (layer.in_features,):
            raise ConfigError(f"NIR export: a delayed layer takes [{layer.in_features}] values, it gets "
                              f"{list(self.shape)}")
        start, ends = self.last, []
        for delay, node in delay_branches(self.nir, layer, self.dt):
            self.last = start
            if delay is not None:
                self.add("delay", delay)
            ends.append(self.add("affine" if isinstance(node, self.nir.Affine) else "linear", node))
        self.last, self.joins, self.shape = ends[0], ends[1:], (layer.out_features,)
        self.pending.append(tuple(ends))
        self.delayed_layers += 1

    def residual(self, block: ResidualBlock) -> None:
        """``act(body(x) + shortcut(x))``: both branches start at the block's input node and end in the junction's
        neurons (NIR sums a node's inputs); an identity shortcut is a direct edge."""
        if self.fold:
            raise ConfigError("NIR export: fold_thresholds would have to rescale a residual shortcut too; "
                              "export residual nets without folding")
        if self.joins:
            raise ConfigError("NIR export: a delayed layer feeds this residual block directly; put a neuron layer "
                              "between them")
        start, shape = self.last, self.shape
        for m in leaf_modules(block.body):
            self.module(m)
        body_end, body_shape, body_joins = self.last, self.shape, self.joins  # a delayed layer's other branches
        self.last, self.shape, self.joins = start, shape, []
        for m in leaf_modules(block.shortcut):
            self.module(m)
        if self.shape != body_shape:
            raise ConfigError(f"NIR export: residual branches end in shapes {body_shape} and {self.shape}")
        shortcut_end, self.last, self.joins = self.last, body_end, [*body_joins, *self.joins]
        self.pending.clear()
        self.module(block.act)
        self.edges.append((shortcut_end, self.last))


def _whole_steps(layer: DelayedLinear) -> bool:
    """Every synapse of ``layer`` delivers once, a whole number of steps late: its rounded net is itself."""
    return bool(layer.sigma <= ONE_HOT_SIGMA) and torch.equal(layer.position.detach(),
                                                              layer.discrete_delays().to(layer.position.dtype))


def to_nir(model: nn.Module, input_shape: tuple[int, ...] | None = None, dt: float | None = None,
           fold_thresholds: bool = False, metadata: dict | None = None, round_delays: bool = False,
           low_latency: bool = False):
    """The ``nir.NIRGraph`` of a rate-coded network (module docstring), or of a net read by ``from_nir`` (and maybe
    trained since: its weights as they are now, its neurons' constants, the metadata it was read with).

    input_shape: one time step of the input without batch, e.g. ``(C, H, W)`` (an imported net's own by default).
    dt: seconds per step (default: an imported net's own, else :data:`DEFAULT_DT`).
    round_delays: export layers with learnable synaptic delays as the rounded net (``DelayedLinear.round_delays_``:
    each synapse delivers once, ``d = discrete_delays()`` steps late), the graph's metadata saying
    ``delays_rounded: True``; without it such a net is a one-line ``ConfigError``. A net without delays is
    exported as it is. low_latency: a converted net's low-latency neurons (start membrane, threshold-valued or
    signed spikes, per-channel thresholds) as ``IF`` nodes with deepspike's metadata (``neurons.converted_if_node``),
    which GraphSimulator and the ONNX export run and other NIR tools do not; without it they are refused.
    """
    nir = require_nir()
    shape = _checked_arguments(model, input_shape, metadata)
    imported = isinstance(model, NirNetwork)
    dt = dt if dt is not None else float(model.metadata["dt"]) if imported else DEFAULT_DT
    check_dt(dt)
    refuse_attention(model)  # before the batch-norm folding's own refusal (TEBN)
    mods, info = chain_modules(fold_batch_norms_(copy.deepcopy(model)))  # BN, tdBN folded exactly; TEBN refused
    coding = _input_coding(model, info, dt)
    graph = _RateGraph(nir, shape, dt, fold_thresholds, coding, round_delays, low_latency)
    with torch.no_grad():
        for m in mods:
            graph.module(m)
    graph.nodes["output"] = nir.Output(output_type={"output": np.array(graph.shape)})
    graph.edges += [(src, "output") for src in (graph.last, *graph.joins)]
    meta = {"producer": "deepspike", "format": "rate-coded", "dt": float(dt), "fires": "v >= threshold",
            "reset": ",".join(sorted(graph.resets)) or "zero", "thresholds_folded": bool(fold_thresholds), **info,
            **({"delays_rounded": True} if graph.delayed_layers else {})}
    meta.update(metadata or {})
    return nir.NIRGraph(nodes=graph.nodes, edges=graph.edges, metadata=meta, type_check=False)


def _checked_arguments(model: nn.Module, input_shape, metadata) -> tuple[int, ...]:
    """The input shape ``to_nir`` builds the graph for (``input_shape``, else an imported net's own), or a one-line
    ``ConfigError`` when ``model`` is not a network, ``input_shape`` is not sizes (whole numbers >= 1) or
    ``metadata`` not a dict: a string model ended in AttributeError, a shape of 64 in TypeError, (-1, 8, 8) in
    torch's RuntimeError, (1.5, 8, 8) was written as (1, 8, 8) and metadata [1] a TypeError."""
    if not isinstance(model, nn.Module):
        raise ConfigError(f"to_nir takes a network (an nn.Module), got {shown_value(model)}")
    if metadata is not None and not isinstance(metadata, dict):
        raise ConfigError(f"to_nir's metadata must be a dict, got {shown_value(metadata)}")
    if input_shape is None and not isinstance(model, NirNetwork):
        raise ConfigError("to_nir needs the input_shape of one time step, e.g. (1, 28, 28)")
    return checked_input_shape(model.input_shape if input_shape is None else input_shape, "to_nir")


def _input_coding(model: nn.Module, info: dict, dt: float) -> dict:
    """The ``Input`` node's metadata: the input coding (``coding``, with ``encoder_options``), ``dt`` and
    ``timesteps``; of an imported net, what its metadata says of them."""
    if isinstance(model, NirNetwork):
        known = {"coding": info.get("coding", info.get("encoder")), "timesteps": info.get("timesteps")}
        return {"dt": float(dt), **{k: v for k, v in known.items() if v is not None}}
    return {"coding": info["encoder"], "dt": float(dt), "timesteps": info["timesteps"], **encoder_options(model)}


def _check_plain(neuron: nn.Module) -> None:
    """``ConfigError`` for a converted net's neuron with low-latency settings (``neurons.chunked_if``), which the
    exported IF node would not mean."""
    if not getattr(neuron, "plain", True):
        raise ConfigError(
            "NIR export takes converted nets with 0/1 spikes, one threshold per layer and v_0 = 0; this one uses "
            "threshold-valued spikes, per-channel thresholds or a start membrane (export --onnx writes it)"
        )


def _integrator_node(nir, decay: float, shape: tuple, dt: float):
    """The readout integrator ``v_t = decay v_{t-1} + x_t`` as ``I`` (no leak) or ``LI`` with
    ``tau = dt / (1 - decay)``; ``r`` scales the input so that one step of ``dt`` adds ``x_t``."""
    ones = np.ones(shape, dtype=np.float32)
    if decay == 1.0:
        return nir.I(r=ones / dt)
    tau = float32_time_constant(dt, decay)
    return nir.LI(tau=ones * tau, r=ones * (tau / dt), v_leak=0 * ones)


def per_neuron_integrator_node(nir, decay: np.ndarray, shape: tuple, dt: float):
    """An imported ``LI`` whose neurons decay each at its own rate (``nir_modules.PerNeuronIntegrator``, ``v_t = k
    v_{t-1} + x_t``, ``k`` broadcast to the layer's ``shape``) as an ``LI`` with arrays ``tau``, ``r`` and ``v_leak``
    (forward Euler over ``dt``, as ``from_nir`` reads it)::

        tau = dt / (1 - k)  (float32: time_constants_reading_back),   r = tau / dt,   v_leak = 0

    so that ``r dt / tau = 1`` (the input gain, if any, is the ``Scale`` node before it). A decay outside [0, 1] is a
    one-line ``ConfigError``."""
    k = np.broadcast_to(np.asarray(decay, dtype=np.float64), shape)
    if not (np.isfinite(k).all() and (k >= 0.0).all() and (k <= 1.0).all()):
        raise ConfigError(f"NIR export: an integrator's decays must lie in [0, 1], got {k.min():g} to {k.max():g}")
    tau = time_constants_reading_back(dt, k)
    return nir.LI(tau=tau, r=(tau.astype(np.float64) / dt).astype(np.float32), v_leak=np.zeros(shape, np.float32))


def _pool_shape(kernel, stride, shape, padding=(0, 0)):
    """``(C, H, W)`` after a floor-mode 2-D pool: ``H' = (H + 2p - k) // s + 1``."""
    k, s, p = _pair(kernel), _pair(stride if stride is not None else kernel), _pair(padding)
    c, h, w = shape
    return (c, int((h + 2 * p[0] - k[0]) // s[0]) + 1, int((w + 2 * p[1] - k[1]) // s[1]) + 1)  # ints, not numpy


STATELESS = (nn.Conv2d, nn.Linear, nn.AvgPool2d, nn.Flatten)
"""The stateless torch layers with a NIR node (``_add_stateless``)."""


def _add_stateless(nir, m: nn.Module, shape: tuple, add, pending: list) -> tuple:
    """Add the node of a stateless layer; returns the output shape (run on a zero input)."""
    if isinstance(m, nn.MaxPool2d):
        raise ConfigError("NIR export: NIR has no max pooling; use avg pooling (model spec Pool kind 'avg')")
    if not isinstance(m, STATELESS):
        raise ConfigError(f"NIR export: layer {type(m).__name__} has no NIR mapping (supported: Conv2d, Linear, "
                          "AvgPool2d, Flatten, Dropout, IF/LIF/PLIF/synaptic neurons)")
    try:
        out = tuple(m(torch.zeros(1, *shape)).shape[1:])
    except (RuntimeError, IndexError) as e:  # an input_shape the net does not take: "mat1 and mat2 shapes cannot
        # be ...", a Flatten's "Dimension out of range"
        raise ConfigError(f"NIR export: layer {type(m).__name__} does not take an input of shape {list(shape)} "
                          f"(input_shape does not fit the net: {str(e).splitlines()[0]})") from None
    if isinstance(m, nn.Conv2d):
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise ConfigError("NIR export: only zero padding given as integers is supported")
        bias = to_numpy(m.bias) if m.bias is not None else np.zeros(m.out_channels, dtype=np.float32)
        weight = ungrouped_conv_weight(to_numpy(m.weight), m.groups)  # nir.read misreads a grouped conv's inputs
        name = add("conv", nir.Conv2d(input_shape=shape[1:], weight=weight, stride=_pair(m.stride),
                                      padding=_pair(m.padding), dilation=_pair(m.dilation), groups=1, bias=bias))
        pending.append(name)
    elif isinstance(m, nn.Linear):
        node = nir.Linear(weight=to_numpy(m.weight)) if m.bias is None else nir.Affine(weight=to_numpy(m.weight),
                                                                                  bias=to_numpy(m.bias))
        pending.append(add("linear" if m.bias is None else "affine", node))
    elif isinstance(m, nn.AvgPool2d) and m.divisor_override == 1 and not m.ceil_mode:  # an imported SumPool2d
        add("sumpool", nir.SumPool2d(kernel_size=_pair(m.kernel_size), stride=_pair(m.stride),
                                     padding=_pair(m.padding)))
    elif isinstance(m, nn.AvgPool2d):
        if m.ceil_mode or not m.count_include_pad or m.divisor_override:
            raise ConfigError("NIR export: AvgPool2d must use floor mode and the plain k x k divisor")
        add("avgpool", nir.AvgPool2d(kernel_size=_pair(m.kernel_size), stride=_pair(m.stride),
                                     padding=_pair(m.padding)))
    elif isinstance(m, nn.Flatten):
        start, end = flatten_sample_dims(m, len(shape))
        add("flatten", nir.Flatten(input_type={"input": np.array(shape)}, start_dim=start, end_dim=end))
    return out


def check_finite(graph) -> None:
    """Raise :class:`ConfigError` if any array or number in the graph is NaN or infinite."""
    for name, node in graph.nodes.items():
        key = non_finite_field(vars(node))
        if key is not None:
            raise ConfigError(f"NIR export: node {name!r} field {key!r} holds a non-finite value")


def write_nir(graph, path: str | os.PathLike) -> Path:
    """Write ``graph`` to ``path`` (HDF5, ``nir.write``) after checking that every value is finite; atomically
    (``core.atomic``: the file is the old one or the whole new one, and a write that fails is a one-line
    ``WriteError``). A ``graph`` that is not a ``nir.NIRGraph``, a ``path`` that is not a path or a metadata value
    HDF5 cannot store (``_unstorable``: None, a list mixing numbers and text) is a one-line ``ConfigError``."""
    nir = require_nir()
    check_graph(nir, graph, "write_nir", "to_nir's")  # a net or a path ended in "has no attribute 'nodes'"
    if not isinstance(path, str | os.PathLike):  # a list ended in Path()'s TypeError
        raise ConfigError(f"write_nir's path must be a file path, got {shown_value(path)}")
    check_finite(graph)
    path = Path(path)
    encoded = io.BytesIO()
    try:
        nir.write(encoded, _without_scalar_arrays(nir, graph))
    except (TypeError, ValueError) as e:  # h5py's "One of data, shape or dtype must be specified" for a None
        raise ConfigError(f"write_nir: {_unstorable(graph) or 'a value'} cannot be stored in a NIR file (HDF5: "
                          f"{str(e).splitlines()[0] if str(e) else type(e).__name__}); metadata values are numbers, "
                          "text, arrays or lists of one of them, and dicts of those") from None
    atomic_write(path, lambda f: f.write(encoded.getvalue()))
    return path


def _unstorable(graph) -> str | None:
    """``"the graph metadata 'key' = value"`` (or ``"node 'name' metadata ..."``) of the first metadata value that h5py
    cannot store as ``nir.write`` stores it (text as a string, anything else as an array), else None."""
    import h5py  # the nir package's own dependency

    owners = [("the graph", graph.metadata), *((f"node {k!r}", getattr(v, "metadata", None))
                                               for k, v in graph.nodes.items())]
    with h5py.File(io.BytesIO(), "w") as f:
        for owner, meta in owners:
            stack = [(str(k), v) for k, v in (meta or {}).items()]
            while stack:
                key, value = stack.pop(0)
                if isinstance(value, dict):
                    stack += [(f"{key}/{k}", v) for k, v in value.items()]
                    continue
                try:
                    f.create_dataset(f"v{len(f)}", data=value, dtype=h5py.string_dtype() if isinstance(value, str)
                                     else None)
                except (TypeError, ValueError):
                    return f"{owner} metadata {key!r} = {shown_value(value)}"
    return None


def _without_scalar_arrays(nir, graph):
    """``graph`` with every 0-d array field of its nodes (subgraphs included) as a numpy scalar, which ``nir.write``
    stores as a scalar dataset and reads back as it reads a float: it cannot store a 0-d array (h5py: "Scalar datasets
    don't support chunk/filter options"), which Norse's export writes (a LIF's ``v_reset``, beside 0-d tensors for
    its other constants). Nodes are copied, ``graph`` is left alone."""
    nodes = {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            nodes[name] = _without_scalar_arrays(nir, node)
            continue
        scalars = {k: v for k, v in vars(node).items() if isinstance(v, np.ndarray) and v.ndim == 0}
        if scalars:
            node = copy.copy(node)
            for key, value in scalars.items():
                object.__setattr__(node, key, value[()])
        nodes[name] = node
    out = copy.copy(graph)
    object.__setattr__(out, "nodes", nodes)
    return out


# The export options each kind of net reads (export_run); another one given would be ignored.
_OPTIONS_OF = {"windowed TTFS": ("large",), "TTFS": ("large", "t_window"),
               "rate-coded": ("dt", "fold_thresholds")}


def _refuse_unused(run_dir, kind: str, given: dict) -> None:
    """A one-line ``ConfigError`` naming the options in ``given`` (not None) that a ``kind`` net does not read."""
    unused = [f"--{key.replace('_', '-')}" for key, value in given.items()
              if value is not None and key not in _OPTIONS_OF[kind]]
    if unused:
        raise ConfigError(f"{', '.join(unused)} does not apply to {run_dir}, a {kind} net")


HOW_NOT_WHAT = ("cache", "in_memory", "memory_limit_gb")
"""``data.args`` that change how a data set is read (a cache, what is held in memory), not what a net sees: not
written to ``data_args``."""


DEFAULT_EVAL_BATCH = TrainConfig().eval_batch_size
"""``train.eval_batch_size`` unless a recipe sets it; a run that sets another is written as ``eval_batch_size``."""


def run_info(config, parts) -> dict:
    """The graph metadata of a run's data (read by ``deploy.nir_eval``): ``method``, ``model``, ``dataset``; the
    standardisation (``input_mean`` / ``input_std``) when the run standardised its input; its validation split
    (``val_fraction``, ``split_seed``) when it held one out; and ``data_args``, JSON text of its ``data.args`` less
    ``HOW_NOT_WHAT``, when it set any (an event set's frames: ``timesteps``, ``stride``, ``threshold``, ...); and
    ``eval_batch_size`` when it is not the default: a random encoder (Poisson, bipolar) draws its spikes per batch, so
    the batches decide which sample gets which draws.
    ``data.augment`` is not written: it acts on training inputs only."""
    info = {"method": str(config.method.name), "model": str(config.model.name), "dataset": str(config.data.name)}
    if config.data.normalize:
        info.update(input_mean=[float(m) for m in parts.data.mean], input_std=[float(s) for s in parts.data.std])
    if config.data.val_fraction:
        info.update(val_fraction=float(config.data.val_fraction), split_seed=int(config.train.seed))
    args = {k: v for k, v in config.data.args.items() if k not in HOW_NOT_WHAT}
    if args:
        info["data_args"] = json.dumps(args, sort_keys=True, allow_nan=False)
    if config.train.eval_batch_size != DEFAULT_EVAL_BATCH:  # random input draws per batch: the batches decide them
        info["eval_batch_size"] = int(config.train.eval_batch_size)
    return info


def run_graph(run_dir: str | os.PathLike, dt: float | None = None, fold_thresholds: bool = False,
              large: float | None = None, t_window: float | None = None, round_delays: bool = False,
              low_latency: bool = False, loaded: tuple | None = None) -> tuple:
    """``(graph, kind)``: a trained run's checkpoint as a NIR graph and the kind of net ("rate-coded", "TTFS",
    "windowed TTFS"); the options as :func:`export_run` reads them (an ANN run or an option its kind does not
    use is a one-line ``ConfigError``); ``low_latency`` as :func:`to_nir` reads it. ``loaded``: the run's
    ``(config, parts)`` when the caller has read it already (``load_run``), else it is read here."""
    config, parts = load_run(run_dir, device="cpu")[:2] if loaded is None else loaded
    if config.method.name == "ann":
        raise ConfigError(f"{run_dir} is an ANN run: convert it to a spiking net first (deepspike convert {run_dir}, "
                          "--to rate or ttfs) and export the converted run")
    shape, info = tuple(parts.arch.input_shape), run_info(config, parts)
    if round_delays:
        check_delays_to_round(run_dir, parts.model)
    kind = "windowed TTFS" if is_window_model(parts.model) else "TTFS" if is_ttfs_model(parts.model) else "rate-coded"
    _refuse_unused(run_dir, kind, {"dt": dt, "fold_thresholds": fold_thresholds or None, "large": large,
                                   "t_window": t_window})
    large = DEFAULT_LARGE if large is None else large
    if kind == "windowed TTFS":
        return to_nir_window(parts.model, shape, large=large, metadata=info), kind
    if kind == "TTFS":
        t_window = DEFAULT_T_WINDOW if t_window is None else t_window
        return to_nir_ttfs(parts.model, shape, large=large, t_window=t_window, metadata=info), kind
    graph = to_nir(parts.model, shape, dt=DEFAULT_DT if dt is None else dt, fold_thresholds=fold_thresholds,
                   metadata=info, round_delays=round_delays, low_latency=low_latency)
    return graph, kind


def export_run(run_dir: str | os.PathLike, path: str | os.PathLike, dt: float | None = None,
               fold_thresholds: bool = False, large: float | None = None,
               t_window: float | None = None, round_delays: bool = False) -> dict:
    """Export a trained run's checkpoint to a NIR file; returns a summary (nodes, metadata, path).

    Rate-coded runs use ``to_nir`` (``dt``, ``fold_thresholds``, ``round_delays``: a net with learnable synaptic
    delays as the rounded net; a run without delays is then refused in one line); TTFS runs (``ttfs``, ``stdbp``) use
    ``nir_ttfs.to_nir_ttfs`` (continuous time: ``large``, ``t_window``; ``dt`` and folding do not apply);
    windowed TTFS runs (``ttfs_window``) ``nir_window.to_nir_window`` (``large``).
    ``path`` must name a regular file (or a new one) and not a run's own file (``checkpoint.pt`` ...): a
    one-line ``ConfigError`` before anything is read or written. An option given (not None / True) that the run's
    kind does not use is a one-line ``ConfigError`` too (it would be ignored); None takes the kind's default.
    """
    check_output_file(path, "--nir")
    check_not_run_file(path, "--nir")
    graph, _ = run_graph(run_dir, dt, fold_thresholds, large, t_window, round_delays)
    return write_graph(graph, path)


def write_graph(graph, path: str | os.PathLike) -> dict:
    """Write ``graph`` (``run_graph``'s) to the NIR file ``path`` (checked by the caller); returns
    :func:`export_run`'s summary: the path, the nodes as ``name:Type`` and the graph's metadata."""
    write_nir(graph, path)
    return {"nir": str(path), "nodes": [f"{k}:{type(v).__name__}" for k, v in graph.nodes.items()],
            "metadata": {k: (v.item() if isinstance(v, np.generic) else v) for k, v in graph.metadata.items()}}

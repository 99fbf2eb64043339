"""Does a dense LIF net (recurrent hidden layers and synaptic-current LIF neurons included) fit SynSense's Xylo
(Audio 2, SYNS61201), and what does its quantisation cost?

Xylo runs current-based LIF neurons with integer state: ``i_syn <- i_syn + W s``, then
``i_syn <- i_syn - d(i_syn, dash_syn)``, ``v <- v - d(v, dash_mem) + i_syn + bias`` (``d(x, dash) = x >> dash``,
at least 1 in size: a bit-shift decay, ``1 - 2^-dash``), spike and SUBTRACT the threshold when ``v >= threshold``;
int8 weights, int16 thresholds, at most 16 input channels, 1000 hidden and 8 output neurons, and per hidden neuron
at most 64 nonzero weights to hidden neurons (its fan-out), 32000 in all (Rockpool's Xylo overview, its max. and
average fan-out; a hidden -> hidden layer wider than 64 is dense beyond it). There is no fan-in limit of 16: the
overview's earlier text "each of the two input synapses may receive events from up to 16 pre-synaptic neurons"
(rockpool docs/devices/xylo-overview.ipynb up to 248de898, July 2023) was removed with the neuron-model figure's
"inaccuracy" (commit 3ed2cfb9, Aug 2023), whose table now gives XyloAudio 2 "max. input projection to 1000 hidden
neurons" and "max. output projection from 1000 hidden neurons"; Rockpool's design-rule check (``xylo_mapper``) has
no fan-in rule, and its SynNet for Xylo feeds each neuron from 24. Rockpool's own mapper
(``rockpool.devices.xylo.syns61201.mapper``, the design-rule check and neuron allocation) maps the net, built
as Rockpool modules (``LinearTorch`` + ``LIFTorch`` with ``tau_mem = dt / (1 - decay)`` and ``tau_syn = 2 dt``,
which Xylo rounds to dash_syn = 1; a ``SynapticLIF``'s below); Rockpool's ``channel_quantize`` gives the int8/int16
parameters, and the biases are scaled here as the neuron's weights are (``round(b_j s_j)``, clipped to int16 with a
``tool_warnings`` line): ``channel_quantize`` only rounds a hidden bias.

dash_syn = 1 is the smallest that lets input reach the membrane: the current is decayed before the membrane adds
it, so dash_syn = 0 (what ``tau_syn = 1.01 dt`` gave before) clears every input first and the chip's net never
spikes. With dash_syn = 1 the chip differs from deepspike's neurons (``v <- decay v + W s``, the input whole in
its own step): a weight ``w`` reaches the membrane spread over its step and the later ones, ``i - floor(i/2)``
each step (``>>`` floors), ``w/2, w/4, ...`` summing to about ``w``, within a few units: 127 gives
64+32+16+8+4+2+1 = 127, 5 gives 3+2+1 = 6, 8 gives 4+2+1 = 7, -5 gives -2-1 = -3, -100 gives -97, 1 and -1 give 0
(the decay removes at least 1 a step); this is how LIF/IF neurons (no synaptic decay of their own) map.

A ``SynapticLIF`` (``neurons.synaptic``: ``i_t = alpha i_{t-1} + W s_t``, ``v_t = k v_{t-1} + i_t``) is the chip's
own neuron: dash_syn ``round(log2(1 / (1 - alpha)))`` up to 15 (the chip's ``a = 1 - 2^-dash_syn``; dash 0, alpha
below about 0.29, maps as a LIF), dash_mem from ``k`` as for the LIF. The chip decays the current before the
membrane reads it, so its current is ``a i_t`` and its membrane ``a v_t``: the mapped threshold is ``a th`` (and a
bias ``a b / (1 - a)``, the current's steady share of a bias ``b`` that deepspike adds to the current); weights are
quantised as the LIF's. The bias cannot be matched step for step: the chip has no current bias, only the membrane's
(XyloSim's ``XyloIAFNeuron::evolve`` adds ``bias`` to ``dv_mem`` after the decayed currents; Rockpool's XyloSim
reads it from the config's ``v_mem_bias``), a constant, where deepspike's bias current builds up, ``b (1 - alpha^t) /
(1 - alpha)`` in step t (from rest, t = 1, 2, ...). In deepspike's units the chip's membrane gets ``b alpha^t / (1 -
alpha)`` more input in step t, ``b alpha / (1 - alpha)^2`` more in all, ``alpha / (1 - alpha)`` steps of the steady
bias (alpha = a = 0.5, b = 1: 1, 0.5, 0.25, ... more, 2 in all, one step's worth), so a biased neuron may fire
earlier on the chip. ``quantised_model`` divides these factors out again (threshold ``th``, current decay ``a``).
Differences left: the bit-shift floors, up to 31 spikes a step (unless trained with them), the one-step delay a
layer (unless trained with it).

Xylo also delays hidden spikes one step (XyloSim's ``XyloLayer::evolve``). A net trained with that delay
(``model.args.spike_delay: 1``: a ``layers.spike_delay.SpikeDelay`` after each hidden layer's neurons, ``out[t] =
s[t - 1]``) maps with it as the chip's own delay (no second one): its SpikeDelay layers add nothing to the mapped
config, and ``accuracy_quantised`` (which runs the net's own modules) keeps the delay.

Xylo's hidden neurons fire up to 31 spikes a step (``n = min(floor(v / th), 31)``, ``v -= n th``; output neurons
one). A net trained with that rule (``method.max_spikes: 31``, ``neurons.multi_spike``, hidden layers only) maps
with it: ``accuracy_quantised`` runs the same counts as the chip. Other ``max_spikes`` above 1, or on an output
layer, are refused in one line.

Xylo's dash registers hold 4 bits (0-15): an IF neuron (decay 1) or a decay above ``1 - 2^-15`` maps to dash_mem 15
(``log2(tau / dt)`` gave 16 and 17, which the chip cannot hold; on int16 state ``v >> 15`` is 0 or -1, so the decay
removes 1 a step, as XyloSim ran dash 16).

A batch-norm (BN, tdBN) right after a linear layer is folded into it on a copy (``layers.batchnorm_fold``, exact
in eval mode: ``W' = g W``, ``b' = g (b - mu) + beta``, ``g = gamma / sqrt(var + eps)``), as for Speck; TEBN (a scale
per time step) cannot be.

Recurrent hidden layers (``layers.recurrent.RecurrentSpiking``, ``I_t = W x_t + V s_{t-1}``) map too: Rockpool's
``LIFTorch(has_rec=True, w_rec=V^T)`` (``w_rec [source, target]``: it adds ``s_{t-1} @ w_rec``) puts ``V^T`` in the
mapped ``weights_rec [source, target]``, in the diagonal block of the layer's own neurons (hidden neurons are
numbered layer by layer); a feedback bias is folded into the neurons' bias (it acts every step). Xylo's output
neurons have no recurrent weights (Rockpool's design rule ``output_neurons_cannot_be_recurrent``): a recurrent
output layer is refused in one line.

The accuracies (:func:`xylo_report`, on the run's test data): ``accuracy_chip`` is the chip's: the mapped int
config run under XyloSim's integer rules (``xylosim``: the synaptic current above, hidden spikes one step late, up
to 31 spikes a step per hidden neuron and 1 per output neuron, input counts clipped at 15, int16 saturation), the
output neurons' spike counts as scores. Two re-simulations by deepspike's own neurons are kept beside it; they are
NOT what the chip computes (no synaptic current, no delay, one spike a step, float state): ``accuracy_quantised``,
with what the chip would hold, per hidden or output neuron j with quantisation scale
``s_j = threshold_q[j] / threshold[j]``: weights ``W_q / s_j``, feedback ``V_q / s_j`` (``V_q`` the layer's int
block of ``weights_rec``, transposed; Rockpool scales a neuron's input and recurrent weights together), bias
``b_q / s_j``, decay ``1 - 2^-dash_mem`` (dash 0, decay 0: 1e-6) and reset by subtraction (the cost of the
integer parameters alone); and ``accuracy_int_weights_only``, the integer weights with deepspike's decay and
reset kept. A converted net read out by its output layer's membrane maps with that layer spiking
(``nir_export.chip_chain``: the chip's outputs are spiking neurons, counted), the report's note saying so; its
re-simulations decode by those spike counts too (``accuracy_float`` stays the trained membrane readout's).

Rockpool's ``rockpool.devices.xylo`` package imports samna (not on PyPI) for Xylo Audio 3 without a guard;
when samna is missing, the mapper module is loaded without its packages' ``__init__``.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import importlib.util
import re
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.data.paths import one_line
from deepspike.deploy.neurons import chip_input_note, chip_membrane_note, refuse_low_latency_on_chip
from deepspike.deploy.nir_export import chip_chain, folded_chain
from deepspike.deploy.nir_modules import Integrator, PerNeuronIntegrator
from deepspike.deploy.xylosim import INT16_MAX, INT16_MIN, MAX_HIDDEN_SPIKES, XyloChip
from deepspike.deploy.xylosim import int_matrix as _int_matrix
from deepspike.layers.batchnorm_fold import fold_batch_norms_
from deepspike.layers.dropout import TimeFixedDropout
from deepspike.layers.recurrent import RecurrentSpiking
from deepspike.layers.spike_delay import SpikeDelay
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.neurons.modules import SpikingNeuron
from deepspike.neurons.params import NeuronParams
from deepspike.neurons.synaptic import SynapticLIF

MAX_INPUTS, MAX_HIDDEN, MAX_OUTPUTS = 16, 1000, 8
MAX_FANOUT, MAX_HIDDEN_WEIGHTS = 64, 32000  # per hidden neuron / in all, nonzero weights to hidden neurons (a synapse)
MIN_DECAY = 1e-6  # stands for Xylo's dash_mem = 0 (decay 0), which deepspike's neurons (decay in (0, 1]) refuse
MAX_DASH = 15  # Xylo's dash registers hold 4 bits (XyloSim's XyloIAFNeuron: dash_mem, dash_syns "should be 4 bits")
DT = 1e-3  # seconds; Xylo's time constants are multiples of its step, only tau / dt matters
_REPEATS_OVER = re.compile(r"only supports up to \d+ (input|output) channels")  # Rockpool's DRC warnings


def rockpool_xylo_mapper() -> types.ModuleType:
    """Rockpool's SYNS61201 mapper module; ``ConfigError`` when rockpool is not installed."""
    if importlib.util.find_spec("rockpool") is None:
        raise ConfigError("--target xylo needs rockpool (pip install rockpool; `make test-nir` installs it)")
    try:
        return _xylo_mapper()
    except ImportError as error:  # installed, but a dependency of its own is missing
        raise ConfigError(f"--target xylo: rockpool is installed but does not import ({error}); reinstall it with "
                          "its dependencies") from None


def _xylo_mapper() -> types.ModuleType:
    if importlib.util.find_spec("samna") is None:
        root = Path(importlib.util.find_spec("rockpool.devices").origin).parent
        for name in ("rockpool.devices.xylo", "rockpool.devices.xylo.syns61201"):
            if name not in sys.modules:
                package = types.ModuleType(name)  # the package without its __init__ (which imports samna)
                package.__path__ = [str(root / Path(*name.split(".")[2:]))]
                sys.modules[name] = package
    return importlib.import_module("rockpool.devices.xylo.syns61201.xylo_mapper")


def xylo_layers(model: nn.Module) -> list[tuple[nn.Linear, SpikingNeuron, nn.Linear | None]]:
    """The net as ``[(linear W [M, N], neurons [M], feedback V [M, M] or None)]``, a ``RecurrentSpiking`` layer
    giving its feed-forward and feedback linears, of :func:`folded_copy` (a batch-norm after a linear layer folded
    into it on a copy); ``ConfigError`` (one line) for anything Xylo cannot run, naming the layer by its number in
    the user's net (``folded_chain``)."""
    mods, _, numbers = folded_chain(model, "xylo")
    layers, linear, delayed = [], None, set()  # delayed: how many layers came before each SpikeDelay
    for i, m in zip(numbers, mods):
        if isinstance(m, nn.Dropout | TimeFixedDropout | nn.Identity) or (isinstance(m, nn.Flatten) and m is mods[0]):
            continue
        if isinstance(m, SpikeDelay):  # the chip's own one-step delay of a hidden layer's spikes (module docstring)
            if linear is not None or not layers or len(layers) in delayed:
                raise ConfigError(f"xylo: layer {i} (SpikeDelay) cannot map: Xylo delays a hidden layer's spikes by "
                                  "one step, so a spike delay maps only right after a hidden layer's neurons, once")
            delayed.add(len(layers))
            continue
        if isinstance(m, nn.Linear) and linear is None:
            linear = m
        elif isinstance(m, SpikingNeuron | SynapticLIF) and linear is not None:
            refuse_low_latency_on_chip(m, "xylo", f"layer {i} ({type(m).__name__})")
            layers.append((linear, m, None))
            linear = None
        elif isinstance(m, RecurrentSpiking) and linear is None:
            layers.append(_recurrent_layer(m, i))
        elif isinstance(m, Integrator | PerNeuronIntegrator):  # an imported LI with a tau per neuron, too
            raise ConfigError("xylo: a membrane readout cannot map: Xylo's outputs are spiking neurons")
        else:
            raise ConfigError(f"xylo: layer {i} ({type(m).__name__}) cannot map: Xylo runs dense nets "
                              "(linear -> LIF, optionally recurrent)* only; no conv, pooling or skip connections")
    if not layers and linear is None:  # an empty imported net: _resources' IndexError
        raise ConfigError("xylo: the net has no layer to map (Xylo runs linear -> LIF layers)")
    if linear is not None:  # dropped, the layer before it taken for the output layer
        raise ConfigError(f"xylo: the net ends with a linear layer ({linear.in_features} -> {linear.out_features}) and "
                          "no spiking neurons after it: Xylo's outputs are spiking neurons")
    if len(layers) in delayed:
        raise ConfigError("xylo: the output layer's spikes cannot be delayed (SpikeDelay): Xylo delays hidden spikes "
                          "only")
    if layers and layers[-1][2] is not None:
        raise ConfigError("xylo: the output layer (RecurrentSpiking) cannot be recurrent: Xylo's output neurons have "
                          "no recurrent weights")
    _check_spike_counts(layers)
    return layers


def _check_spike_counts(layers: list) -> None:
    """One-line ``ConfigError`` for neurons trained with ``max_spikes`` (``neurons.multi_spike``) other than the
    chip's: a hidden layer's fire up to ``MAX_HIDDEN_SPIKES`` (31) spikes a step on Xylo (1 or 31 map: 1 is the
    one-spike neuron the chip runs with up to 31), an output layer's one."""
    for k, (_, neuron, _) in enumerate(layers):
        most, hidden = getattr(neuron, "max_spikes", 1), k < len(layers) - 1
        if most != 1 and not (hidden and most == MAX_HIDDEN_SPIKES):
            where = (f"hidden layer {k}'s neurons fire up to {MAX_HIDDEN_SPIKES}" if hidden
                     else "output neurons fire one")
            raise ConfigError(f"xylo: layer {k} ({type(neuron).__name__}) was trained with up to {most} spikes a step "
                              f"(method.max_spikes), but Xylo's {where}: train with max_spikes "
                              + (f"{MAX_HIDDEN_SPIKES} (or 1)" if hidden else "1 on the output layer"))


def _recurrent_layer(m: RecurrentSpiking, i: int) -> tuple[nn.Linear, SpikingNeuron, nn.Linear]:
    """``(W, neurons, V)`` of a recurrent layer whose feed-forward part is linear and whose neuron is LIF/IF or
    ``SynapticLIF``."""
    ff = m.feedforward.module if isinstance(m.feedforward, TimeDistributed) else m.feedforward
    if not isinstance(ff, nn.Linear) or not isinstance(m.neuron, SpikingNeuron | SynapticLIF):
        raise ConfigError(f"xylo: layer {i} (RecurrentSpiking with {type(ff).__name__} and "
                          f"{type(m.neuron).__name__}) cannot map: Xylo runs linear -> LIF layers")
    return ff, m.neuron, m.recurrent.module


def dense_layers(model: nn.Module) -> list[tuple[nn.Linear, SpikingNeuron]]:
    """The net as ``[(linear, neurons)]`` (:func:`xylo_layers` without the feedback weights)."""
    return [(lin, neuron) for lin, neuron, _ in xylo_layers(model)]


def _bias(lin: nn.Linear, rec: nn.Linear | None) -> torch.Tensor:
    """The neurons' constant input current ``[M]`` (float64): the linear's bias plus the feedback's."""
    bias = torch.zeros(lin.out_features, dtype=torch.float64)
    for layer in (lin, rec):
        if layer is not None and layer.bias is not None:
            bias = bias + layer.bias.detach().double()
    return bias


def neuron_settings(neuron) -> tuple[NeuronParams, int, float, float]:
    """A mapped neuron's LIF ``params`` and its synaptic current on the chip: ``(params, dash_syn, threshold factor
    f_th, bias factor f_b)``, the chip's threshold ``f_th th`` and bias ``f_b b`` (module docstring). LIF / IF, or
    a ``SynapticLIF`` whose ``syn_decay`` alpha rounds to dash 0 (``alpha < 1 - 2^-0.5``, about 0.29: nearer no
    synaptic current than the chip's smallest, 0.5): dash_syn 1, factors 1. Else dash_syn ``round(log2(1 / (1 -
    alpha)))`` up to 15, ``a = 1 - 2^-dash_syn``, ``f_th = a``, ``f_b = a / (1 - a)``."""
    params, alpha = (neuron.fixed, neuron.syn_decay) if isinstance(neuron, SynapticLIF) else (neuron.params, 0.0)
    dash = MAX_DASH if alpha == 1.0 else int(min(np.rint(np.log2(1.0 / (1.0 - alpha))), MAX_DASH))
    if dash == 0:
        return params, 1, 1.0, 1.0
    a = 1.0 - 2.0 ** -dash
    return params, dash, a, a / (1.0 - a)


def _rockpool_net(layers, dt: float):
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch

    mods = []
    for lin, neuron, rec in layers:
        p, dash_syn, f_th, f_b = neuron_settings(neuron)
        tau = dt * (min(1.0 / (1.0 - p.decay), 2.0 ** MAX_DASH) if p.decay < 1.0 else 2.0 ** MAX_DASH)
        n_in, n_out = lin.in_features, lin.out_features
        mods.append(LinearTorch((n_in, n_out), weight=lin.weight.detach().double().t(), has_bias=False))
        feedback = {} if rec is None else {"has_rec": True, "w_rec": rec.weight.detach().double().t()}
        mods.append(LIFTorch(n_out, tau_mem=tau, tau_syn=dt * 2.0 ** dash_syn, threshold=f_th * float(p.threshold),
                             bias=f_b * _bias(lin, rec), dt=dt, **feedback))
    return Sequential(*mods)


def _resources(pairs) -> tuple[dict, list[str]]:
    n_in = pairs[0][0].in_features
    hidden = sum(layer[0].out_features for layer in pairs[:-1])
    n_out = pairs[-1][0].out_features
    over = [f"{n} {what} > {limit}" for n, what, limit in ((n_in, "input channels", MAX_INPUTS),
                                                          (hidden, "hidden neurons", MAX_HIDDEN),
                                                          (n_out, "output neurons", MAX_OUTPUTS)) if n > limit]
    return {"inputs": n_in, "hidden": hidden, "outputs": n_out}, over


def xylo_spec(model: nn.Module, dt: float = DT) -> dict:
    """Map with Rockpool's mapper (limits lifted to the net's size when it is too big, to still quantise it)
    and quantise: ``{"resources", "over" (what exceeds Xylo), "float", "quantised", "pairs" ([(linear, neurons)])}``
    (a recurrent layer's feedback weights in ``weights_rec``, module docstring)."""
    xm = rockpool_xylo_mapper()  # first: without Rockpool, its install hint in one line
    from rockpool.transform.quantize_methods import channel_quantize

    layers = xylo_layers(model)
    resources, over = _resources(layers)
    with warnings.catch_warnings(record=True) as caught:  # Rockpool's DRC warnings: into the report, not stderr
        warnings.simplefilter("always")
        try:
            spec = xm.mapper(_rockpool_net(layers, dt).as_graph(), weight_dtype="float", threshold_dtype="float",
                             dash_dtype="float", max_hidden_neurons=max(MAX_HIDDEN, resources["hidden"]),
                             max_output_neurons=max(MAX_OUTPUTS, resources["outputs"]))
        except Exception as e:  # noqa: BLE001 - Rockpool's design-rule errors are the report
            raise ConfigError(f"xylo: Rockpool's mapper refused the net: {_mapper_reason(e)}") from e
        spec.pop("mapped_graph", None)
        quantised = channel_quantize(**copy.deepcopy(spec))  # it rounds the output biases in place
    _scale_unfed_neurons(spec, quantised)
    clipped = _scale_biases(spec, quantised)
    return {"resources": resources, "over": over, "float": spec, "quantised": quantised,
            "pairs": [(lin, neuron) for lin, neuron, _ in layers], "tool_warnings": _tool_warnings(caught) + clipped}


def _scale_unfed_neurons(spec: dict, q: dict) -> None:
    """Give a neuron without input weights (all 0 in the float spec: a dead or pruned neuron) the threshold
    ``round(th s)``, ``s = 32767 / max(|th|, |b|)`` (any scale is exact with no weights; this one keeps its threshold
    and bias in int16 at the finest step), rounded toward 0 (to at least 1 in size) where ``|b| > |th|``, so that the
    bias ``b th_q / th`` stays within int16 (rounded up, th 0.01 and b 1 gave 328 and a bias of 32800, clipped with a
    warning). ``channel_quantize`` rounds such a threshold unscaled, 0.5 to 0, and the chip's neuron then fires 31
    spikes every step (``v >= 0``), where deepspike's never fires."""
    def has_input(key: str, sfx: str) -> np.ndarray:  # [source, target(, synapse)] -> [target]
        w = np.abs(np.asarray(spec[key], float))
        return w.reshape(w.shape[0], len(np.ravel(spec["threshold" + sfx])), -1).max(axis=(0, 2), initial=0.0) > 0

    fed = {"": has_input("weights_in", "") | has_input("weights_rec", ""), "_out": has_input("weights_out", "_out")}
    for sfx, fed_neurons in fed.items():
        th, b = np.asarray(spec["threshold" + sfx], float), np.asarray(spec["bias" + sfx], float)
        scale = INT16_MAX / np.maximum(np.maximum(np.abs(th), np.abs(b)), 1e-30)
        toward_zero = np.sign(th) * np.maximum(np.floor(np.abs(th * scale)), 1.0)  # |b th_q / th| <= 32767
        th_q = np.where(np.abs(b) > np.abs(th), toward_zero, np.rint(th * scale))
        q["threshold" + sfx] = np.where(fed_neurons, q["threshold" + sfx], th_q).astype(int)


def _scale_biases(spec: dict, q: dict) -> list[str]:
    """Set ``q["bias"]``, ``q["bias_out"]`` to ``round(b_j s_j)``, neuron j's float bias in its weights' integer units
    (``s_j = threshold_q[j] / threshold[j]``, as for its weights and threshold), clipped to the int16 that Xylo's
    state holds; the warnings (one line each) for clipped biases. ``channel_quantize`` only rounds a hidden bias
    (no scaling with one synapse a neuron: 0.3 became 0 where its weights were scaled by ~400) and does not rescale
    an output bias where the int16 threshold limits the scale."""
    notes = []
    for sfx, what in (("", "hidden"), ("_out", "output")):
        th, th_q = np.asarray(spec["threshold" + sfx], float), np.asarray(q["threshold" + sfx], float)
        scale = np.divide(th_q, th, out=np.ones_like(th), where=th != 0)
        b = np.rint(np.asarray(spec["bias" + sfx], float) * scale)
        over = (b > INT16_MAX) | (b < INT16_MIN)  # -32768 fits
        if over.any():
            notes.append(f"{int(over.sum())} {what} neuron biases exceed int16 in the chip's units (up to "
                         f"{int(np.abs(b).max())}): clipped to [{INT16_MIN}, {INT16_MAX}]")
        q["bias" + sfx] = np.clip(b, INT16_MIN, INT16_MAX).astype(int)
    return notes


def _tool_warnings(caught) -> list[str]:
    """Rockpool's warnings (one line each, in order, once), less those the report's ``over`` already says (its
    DRC warnings that the net has more than 16 input or 8 output channels)."""
    texts = [one_line(str(w.message)) for w in caught]
    return [t for i, t in enumerate(texts) if t not in texts[:i] and not _REPEATS_OVER.search(t)]


def _mapper_reason(error: BaseException) -> str:
    """Rockpool's refusal on one line: its text (a design rule's name, then on the next line what the rule says)
    and what caused it (``Error replacing ... module`` wraps the neuron conversion's reason)."""
    texts = [one_line(error)]
    if error.__cause__ is not None:
        texts.append(one_line(error.__cause__))
    return " ".join(texts)


def _block(q: dict, sizes: list[int], k: int) -> tuple[np.ndarray, str]:
    """Layer ``k``'s int weights ``[in, out]`` in the mapped matrices (hidden neurons are numbered layer by
    layer) and the suffix of its neuron parameters (``""`` hidden, ``"_out"`` output)."""
    start = sum(sizes[:k])
    if k == 0:
        return _int_matrix(q["weights_in"])[:, :sizes[0]], ""
    rows = slice(start - sizes[k - 1], start)
    if k == len(sizes) - 1:
        return _int_matrix(q["weights_out"])[rows], "_out"
    return _int_matrix(q["weights_rec"])[rows, start:start + sizes[k]], ""


def _write_layer(lin: nn.Linear, rec: nn.Linear | None, w: np.ndarray, v: np.ndarray | None, bias: np.ndarray,
                 s: np.ndarray) -> None:
    """Write int weights ``w [in, out]``, feedback ``v [source, target]`` and bias ``[out]`` divided by the target
    neurons' scales ``s [out]`` into ``lin`` (``W [out, in]``) and ``rec`` (``V [target, source]``); the bias goes
    to the linear's bias, else the feedback's (the other one, if any, set to 0)."""
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(w.T / s[:, None], dtype=lin.weight.dtype))
        if v is not None:
            rec.weight.copy_(torch.as_tensor(v.T / s[:, None], dtype=rec.weight.dtype))
        holders = [m.bias for m in (lin, rec) if m is not None and m.bias is not None]
        for k, b in enumerate(holders):  # the first gets b_q / s, a second one (the feedback's) 0
            b.copy_(torch.as_tensor(bias / s if k == 0 else np.zeros_like(s), dtype=b.dtype))


def _fanout_over(q: dict) -> list[str]:
    """What exceeds Xylo Audio 2's hidden-to-hidden weight memory (Rockpool's Xylo overview: max. fan-out 64,
    average 32 per synapse; its SYNS61201 memory table holds 32000 words per synapse in RWTRAM / RWT2RAM): the
    nonzero int weights in ``weights_rec [source, target, synapse]`` (a feed-forward hidden -> hidden layer's
    and a recurrent layer's alike) per source neuron (its fan-out) and per synapse in all."""
    w = np.asarray(q["weights_rec"])
    w = w.reshape(w.shape[0], w.shape[1], -1)
    fanout, total = np.count_nonzero(w, axis=(1, 2)), int(np.count_nonzero(w, axis=(0, 1)).max(initial=0))
    over = [f"{int(np.sum(fanout > MAX_FANOUT))} hidden neurons with a fan-out (nonzero weights to hidden "
            f"neurons) > {MAX_FANOUT} (up to {int(fanout.max())})"] if fanout.size and fanout.max() > MAX_FANOUT else []
    return over + ([f"{total} hidden-to-hidden weights > {MAX_HIDDEN_WEIGHTS}"] if total > MAX_HIDDEN_WEIGHTS else [])


def _zero_thresholds(mapped: dict) -> list[str]:
    """Neurons whose positive threshold rounds to 0 or below on the chip (less than half a weight step: the neuron's
    weights scaled so the largest is 127), as a reason each for hidden and output neurons: such a neuron fires every
    step from rest (``v = 0 >= threshold``), 31 spikes a hidden one, whatever its input."""
    fl, q = mapped["float"], mapped["quantised"]
    counts = [(what, int(np.sum((np.ravel(q["threshold" + sfx]) <= 0) & (np.ravel(fl["threshold" + sfx]) > 0))))
              for sfx, what in (("", "hidden"), ("_out", "output"))]
    return [f"{n} {what} neurons' thresholds round to 0 on the chip (below half an int8 weight step): they fire every "
            "step whatever their input" for what, n in counts if n]


def zeroed_layers(mapped: dict) -> list[int]:
    """The layers (1-based) whose feed-forward weights are not all 0 but all round to 0 on the chip
    (``channel_quantize`` scales a neuron's weights so its largest is 127, then less where the threshold would pass
    int16's 32767: weights far below the threshold round to 0); the chip's net after such a layer ignores its input."""
    sizes = [lin.out_features for lin, _ in mapped["pairs"]]
    return [k + 1 for k, (lin, _) in enumerate(mapped["pairs"])
            if bool(lin.weight.detach().ne(0).any()) and not np.any(_block(mapped["quantised"], sizes, k)[0])]


def quantised_model(model: nn.Module, mapped: dict, dynamics: bool = True) -> nn.Module:
    """A copy of ``model`` whose dense layers (feed-forward and feedback weights) and neurons hold what Xylo would
    (module docstring; a trained ``state_quant`` is dropped for the chip's integer membrane); ``dynamics=False``
    quantises weights, biases and thresholds only (our decay, reset and membrane kept)."""
    fl, q = mapped["float"], mapped["quantised"]
    out = copy.deepcopy(model)
    fold_batch_norms_(out)  # in place: the layers xylo_layers returns are out's own, written below
    if chip_chain(out, "xylo")[1].get("chip_note"):  # a converted net's membrane readout: the chip counts spikes
        out.readout = "spike"
    layers = xylo_layers(out)
    if len(layers) < 2:
        raise ConfigError("xylo: the net needs at least one hidden layer (input -> hidden -> output)")
    sizes = [lin.out_features for lin, *_ in layers]
    for k, (lin, neuron, rec) in enumerate(layers):
        w, sfx = _block(q, sizes, k)
        own = slice(None) if sfx else slice(sum(sizes[:k]), sum(sizes[:k + 1]))
        s = np.asarray(q["threshold" + sfx], float)[own] / np.asarray(fl["threshold" + sfx], float)[own]
        v = None if rec is None else _int_matrix(q["weights_rec"])[own, own]  # [source, target]
        params, _, f_th, f_b = neuron_settings(neuron)
        _write_layer(lin, rec, w, v, np.asarray(q["bias" + sfx], float)[own] / f_b, s)
        if dynamics:  # the chip's integer membrane, not a trained state_quant
            _chip_dynamics(neuron, params, q, sfx, own, synaptic=f_th != 1.0)
    return out


def _chip_dynamics(neuron, params: NeuronParams, q: dict, sfx: str, own: slice, synaptic: bool) -> None:
    """Give ``neuron`` the chip's membrane decay ``1 - 2^-dash_mem`` (dash 0: ``MIN_DECAY``) and reset by subtraction,
    and a ``SynapticLIF`` the chip's current decay ``1 - 2^-dash_syn`` (0 where it maps as a LIF: ``synaptic``
    false)."""
    dash = float(np.asarray(q["dash_mem" + sfx], float)[own][0])
    decay = max(1.0 - 2.0 ** -dash, MIN_DECAY)  # dash 0: the membrane forgets each step (decay 0)
    params = dataclasses.replace(params, decay=decay, reset="subtract", state_quant=None)
    if isinstance(neuron, SynapticLIF):
        neuron.fixed = params
        neuron.syn_decay = 1.0 - 2.0 ** -float(np.ravel(q["dash_syn" + sfx])[own][0]) if synaptic else 0.0
    else:
        neuron.params = params


def _reset_note(pairs) -> str | None:
    """A note naming the layers (1-based) whose neurons reset otherwise than the chip's, which always subtracts the
    threshold (``v <- v - n th``, XyloSim's ``XyloIAFNeuron::evolve``), so what passed the threshold is kept where
    reset "zero" clears it (and "none" keeps all); None where every layer resets by subtraction."""
    other = {}
    for k, (_, neuron) in enumerate(pairs, 1):
        other.setdefault(neuron_settings(neuron)[0].reset, []).append(str(k))
    other.pop("subtract", None)
    if not other:
        return None
    said = [f"layer{'s' * (len(ks) > 1)} {', '.join(ks)} reset {'to zero' if r == 'zero' else 'not at all'} (reset "
            f"{r!r})" for r, ks in other.items()]
    return (f"{' and '.join(said)} in deepspike; the chip resets by subtracting the threshold, keeping the membrane "
            "above it (accuracy_chip includes the difference)")


def xylo_report(model: nn.Module, accuracy=None) -> dict:
    """Fit report: resources against Xylo's limits (``fits`` false too when a layer's weights all round to 0,
    :func:`zeroed_layers`), the quantised parameters' ranges, and (``accuracy``: a function model -> test accuracy)
    ``accuracy_float`` (the trained net), ``accuracy_chip`` (the mapped int config under XyloSim's integer rules,
    ``xylosim.XyloChip``: the chip's accuracy) with ``accuracy_chip_cost`` = float - chip, and two deepspike
    re-simulations that are not the chip's (module docstring): ``accuracy_quantised`` (the chip's parameters,
    decay and reset in deepspike's neurons) with ``accuracy_cost`` = float - quantised, and
    ``accuracy_int_weights_only``. ``accuracy_chip`` is null when the encoder gives what the chip's inputs cannot
    carry (``chip_input_note``: analog or signed values, which XyloSim would floor to counts of 0).
    ``tool_warnings``: what Rockpool warned of while mapping that the ``reason`` does not say (its warnings are
    kept off stderr). ``note``: what the chip runs differently (e.g. a reset other than its subtraction,
    :func:`_reset_note`)."""
    mapped = xylo_spec(model)
    q = mapped["quantised"]
    weights = ("weights_in", "weights_rec", "weights_out")
    zeroed, reasons = zeroed_layers(mapped), list(mapped["over"]) + _fanout_over(q) + _zero_thresholds(mapped)
    if zeroed:  # the chip net ignores its input: not a deployment of this net
        reasons.append(f"the weights of layer{'s' * (len(zeroed) > 1)} {', '.join(map(str, zeroed))} all round to 0 "
                       "on the chip (int8 weights scaled with an int16 threshold): the chip's net ignores its input")
    report = {"target": "xylo (SYNS61201)", "fits": not reasons, "resources": mapped["resources"],
              "limits": {"inputs": MAX_INPUTS, "hidden": MAX_HIDDEN, "outputs": MAX_OUTPUTS, "fanout": MAX_FANOUT,
                         "hidden_weights": MAX_HIDDEN_WEIGHTS},
              "weights_int8_range": [int(min(np.min(q[k]) for k in weights)), int(max(np.max(q[k]) for k in weights))],
              "dash_mem": sorted({int(d) for k in ("dash_mem", "dash_mem_out") for d in np.ravel(q[k])})}
    if reasons:
        report["reason"] = "; ".join(reasons)
    if mapped["tool_warnings"]:  # what Rockpool warned of beyond the reason
        report["tool_warnings"] = mapped["tool_warnings"]
    input_note = chip_input_note(model)
    notes = [n for n in (chip_chain(model, "xylo")[1].get("chip_note"), input_note, chip_membrane_note(model),
                         _reset_note(mapped["pairs"])) if n]
    if notes:
        report["note"] = "; ".join(notes)
    if accuracy is not None:
        before, after = accuracy(model), accuracy(quantised_model(model, mapped))
        weights_only = accuracy(quantised_model(model, mapped, dynamics=False))
        chip = None if input_note else accuracy(XyloChip(model, q))  # floored analog input: counts of 0, chance
        report.update(accuracy_float=before, accuracy_quantised=after, accuracy_cost=before - after,
                      accuracy_int_weights_only=weights_only, accuracy_chip=chip,
                      accuracy_chip_cost=None if chip is None else before - chip)
    return report

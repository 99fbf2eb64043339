"""Start a run from a NIR file (``method.init_from: FILE.nir``): another tool's trained net, trained further here.

The recipe builds the net (``method stbp``: its model, neuron and readout); :func:`start_from_nir` reads the file
(``from_nir``) and copies its weights into that net, layer for layer in execution order (``chain_modules`` of
both: the recipe's net as ``to_nir`` walks it, the file's as it was imported). Each pair must be the same layer:

    Linear / Affine <-> Linear          weight [out, in] equal in shape; the file's bias (0 for a Linear node) goes
                                        to the net's (a net without a bias takes only a file bias of 0)
    Conv2d <-> Conv2d                   weight shape, stride, padding, dilation and groups equal; bias as above
    AvgPool2d, SumPool2d, Flatten       kernel, stride, padding and divisor equal; flattening the whole sample (a
                                        file whose input is one flat vector, e.g. snnTorch's MLP, has no Flatten
                                        before its first layer: the recipe's first Flatten then makes that vector)
    IF / LIF node <-> LIF / IF neurons  decay ``k = 1 - dt/tau``, threshold and reset equal (relative 1e-5: tau
                                        is float32 in the file), else a one-line error naming the recipe keys
    CubaLIF <-> synaptic neurons        as above and the current's decay
    LI / I <-> a membrane readout       the integrator's decay
    recurrent layer <-> rsnn layer      its recurrent weight ``V`` and its neurons as above; its feed-forward layers
                                        are pairs of their own before it (the file's ``Linear`` node before the
                                        neuron, the recipe's layer's ``feedforward``)

A neuron node's input gain ``c`` (NIR's ``r``, ``w_in``; the imported ``Scale`` before it) is folded into the weights
before it, ``neuron(c (W x + b)) = neuron((c W) x + c b)``, when ``c`` is one value per output channel (per neuron
of a ``Linear``; a recurrent neuron's gain is in the imported ``V`` already); a gain on a pooled input, or one that
varies within a channel, is a one-line error.
A recipe's learnable (PLIF / learnt-threshold) neurons take the file's constants at their own granularity
(``deploy.nir_init_learnable``). The net is the file's net when every pair matches: tested against the file's
spikes in ``from_nir``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_whole
from deepspike.deploy.model_walk import leaf_modules
from deepspike.deploy.nir_export import chain_modules, imported_chain
from deepspike.deploy.nir_fields import pair
from deepspike.deploy.nir_import import from_nir
from deepspike.deploy.nir_init_learnable import RTOL, WEIGHTED, channel_gain, start_learnable
from deepspike.deploy.nir_modules import Integrator, NirNetwork, PerNeuronIntegrator, Scale
from deepspike.layers.dropout import TimeFixedDropout
from deepspike.layers.recurrent import RecurrentSpiking
from deepspike.neurons.heterogeneous import HeterogeneousLIF
from deepspike.neurons.learnable import LearnableLIF
from deepspike.neurons.modules import SpikingNeuron
from deepspike.neurons.synaptic import SynapticLIF

SKIPPED = (nn.Dropout, TimeFixedDropout, nn.Identity)
METHOD_KEYS = ("delta_threshold", "delta_mode", "delta_off_spikes", "population_size", "population_low",
               "population_high", "population_width", "population_spikes")
"""The coding settings ``encoder_options`` writes that a recipe sets (``method.<key>``, ``methods.stbp``)."""
CODING_KEYS = ("bipolar_scale", "bipolar_value", *METHOD_KEYS)


def start_from_nir(path: str | Path, model: nn.Module, config: Any = None) -> None:
    """Copy the weights of the NIR file ``path``'s net into ``model`` (module docstring); a one-line ``ConfigError``
    naming the layer when the two nets differ, or when the file says its net read its input otherwise than the
    recipe (``config``, the run's: :func:`_check_input`)."""
    source = from_nir(path)
    try:
        chain, info = chain_modules(model)
    except ConfigError as e:  # was "NIR export: unsupported readout MaxMembraneReadout" from a train command
        raise ConfigError(f"method.init_from: the recipe's net is not one a NIR file holds "
                          f"({str(e).removeprefix('NIR export: ')})") from None
    _check_input(source.metadata, info, config, path)
    ours = [m for m in _unrolled(chain) if not isinstance(m, SKIPPED)]
    theirs = _folded_gains(_unrolled(imported_chain(source)[0]) if isinstance(source, NirNetwork) else [])
    if ours and isinstance(ours[0], nn.Flatten) and math.prod(source.input_shape[:-1]) == 1 and not (
            theirs and isinstance(theirs[0][0], nn.Flatten)):
        ours = ours[1:]  # flat samples ([64]: snnTorch, Norse; [1, 64]: Rockpool), what the recipe's Flatten makes
    _check_vote(source.metadata, info, theirs, ours, path)
    if len(ours) != len(theirs):
        raise ConfigError(f"method.init_from: {path} has {len(theirs)} layers ({_names(theirs)}), the recipe's net "
                          f"{len(ours)} ({_names(ours)})")
    with torch.no_grad():
        previous = None
        for i, (mine, (its, gain)) in enumerate(zip(ours, theirs)):
            where = f"method.init_from: {path}: layer {i} ({type(its).__name__})"
            if isinstance(mine, LearnableLIF):
                start_learnable(mine, its, previous, where)
            else:
                _copy(mine, its, gain, where)
            previous = mine


def _check_input(meta: dict, info: dict, config: Any, path) -> None:
    """A one-line ``ConfigError`` when the file says how its net read its input (deepspike's exports: metadata
    ``encoder``, ``input_mean``) and the recipe's net reads it otherwise: another input coding (``info``, the net's
    own, against ``method.encoder``), or raw images for a net trained on standardised ones (``data.normalize``).
    Another tool's file says neither; the recipe decides."""
    coding = meta.get("encoder", meta.get("coding"))
    if coding is not None and info.get("encoder") is not None and str(coding) != str(info["encoder"]):
        raise ConfigError(f"method.init_from: {path}'s net read {coding} input, the recipe's net "
                          f"{info['encoder']} input: set method.encoder={coding}")
    if meta.get("input_mean") is not None and config is not None and not config.data.normalize:
        raise ConfigError(f"method.init_from: {path}'s net read standardised images (metadata input_mean), the "
                          "recipe's raw ones: set data.normalize=true")
    _check_coding_options(meta, info, path)


def _check_coding_options(meta: dict, info: dict, path) -> None:
    """A one-line ``ConfigError`` when the file states a setting of its input coding (``encoder_options``: a bipolar
    encoder's scale ``c`` of ``sign(x) 1[|x| / c > U_t]`` and spike value, a population's range and width, a delta
    threshold) that the recipe's net, coding its input the same way, sets otherwise: the net would read other spikes
    (a spikebp ``method.input_scale=2`` file started an stbp recipe reading ``|x| / 1``, twice the rate)."""
    for key in CODING_KEYS:
        if key not in meta or key not in info:
            continue
        theirs, ours = _coding_value(meta[key]), _coding_value(info[key])
        if _number(meta[key]) is not None and _number(info[key]) is not None:
            same = bool(np.isclose(_number(meta[key]), _number(info[key]), rtol=RTOL))
        else:
            same = theirs == ours
        if not same:
            hint = f": set method.{key}={theirs}" if key in METHOD_KEYS else " (no method key sets it)"
            raise ConfigError(f"method.init_from: {path}'s net coded its input with {key} {theirs}, the recipe's net "
                              f"with {ours}{hint}")


def _number(value: Any) -> float | None:
    """``value`` (metadata: a Python or NumPy number, maybe a 0-d array) as a finite float; None for anything else."""
    try:
        number = float(np.asarray(value).item()) if np.asarray(value).ndim == 0 else None
    except (TypeError, ValueError):
        return None
    return number if number is not None and math.isfinite(number) else None


def _coding_value(value: Any) -> str:
    """A metadata value as a message shows it (a number with ``g``, anything else as text, at most 40 characters)."""
    number = _number(value)
    return f"{number:g}" if number is not None else str(value)[:40]


def _check_vote(meta: dict, info: dict, theirs: list, ours: list, path) -> None:
    """A one-line ``ConfigError`` naming ``method.vote_group`` when the file decodes by a vote (metadata ``decode``
    vote with ``num_classes``: ``G = K / num_classes`` of its ``K`` output neurons per class; a file without a
    ``num_classes`` that divides ``K``: the recipe's classes, its output neurons) and the recipe's net does not, or
    the other way round (a file that does not say how it decodes, another tool's, may be read either way)."""
    votes, voted = meta.get("decode") == "vote", info.get("decode") == "vote"
    if not isinstance(meta.get("decode"), str) or votes == voted:  # a word that is not text (an array) says nothing
        return
    outputs = _outputs(m for m, _ in theirs)
    classes = meta.get("num_classes")
    if not (is_whole(classes, 1) and outputs and outputs % classes == 0):  # was "set method.vote_group=G"
        classes = _outputs(ours)
    group = outputs // classes if votes and outputs and classes and outputs % classes == 0 else "G"
    raise ConfigError(f"method.init_from: {path} " + (f"decodes by a vote of {group} output neurons per class: set "
                      f"method.vote_group={group}" if votes else "has one output neuron per class: set "
                      "method.vote_group=1"))


def _outputs(mods) -> int | None:
    """The output neurons of the last weighted layer of ``mods``; None without one."""
    return next((m.weight.shape[0] for m in reversed(list(mods)) if isinstance(m, WEIGHTED)), None)


def _names(mods: list) -> str:
    return " -> ".join(type(m[0] if isinstance(m, tuple) else m).__name__ for m in mods)


def _unrolled(mods: list[nn.Module]) -> list[nn.Module]:
    """The modules with each recurrent layer's feed-forward modules before it: the file's recurrent layer holds
    only the neuron's input gain (its ``Linear`` node comes before it), the recipe's its feed-forward layer."""
    return [x for m in mods for x in ([*leaf_modules(m.feedforward), m] if isinstance(m, RecurrentSpiking) else [m])]


def _folded_gains(mods: list[nn.Module]) -> list[tuple[nn.Module, torch.Tensor | None]]:
    """The imported modules, each weighted layer paired with the gain of a ``Scale`` that follows it directly (None:
    no gain); a ``Scale`` anywhere else is a one-line error."""
    out: list[tuple[nn.Module, torch.Tensor | None]] = []
    for m in mods:
        if isinstance(m, Scale):
            if not out or not isinstance(out[-1][0], WEIGHTED) or out[-1][1] is not None:
                raise ConfigError("method.init_from: the NIR file scales values that do not come straight from a "
                                  "weighted layer (a Scale node, or a neuron's input gain r after a pool), which the "
                                  "recipe's net cannot hold")
            out[-1] = (out[-1][0], m.scale.detach().float())
        else:
            out.append((m, None))
    return out


def _copy(mine: nn.Module, its: nn.Module, gain: torch.Tensor | None, where: str) -> None:
    """One pair of layers (module docstring): the file's weights into ``mine``, or a one-line ``ConfigError``."""
    if isinstance(its, WEIGHTED) and isinstance(mine, type(its)):
        _copy_weighted(mine, its, gain, where)
    elif isinstance(its, RecurrentSpiking) and isinstance(mine, RecurrentSpiking):
        _copy_recurrent(mine, its, where)
    elif isinstance(its, SpikingNeuron | SynapticLIF | HeterogeneousLIF) and isinstance(mine, SpikingNeuron
                                                                                         | SynapticLIF):
        _check_neuron(mine, its, where)
    elif isinstance(its, Integrator) and isinstance(mine, Integrator):
        if not np.isclose(mine.decay, its.decay, rtol=RTOL):
            raise ConfigError(f"{where}: the file's readout decays by {its.decay:.6g} per step, the recipe's by "
                              f"{mine.decay:.6g}: set method.membrane_decay={its.decay:.6g}")
    elif isinstance(its, PerNeuronIntegrator):  # "the recipe's net has Integrator here", though it had the kind
        raise ConfigError(f"{where}: the file's readout decays by {float(its.decay.min()):.6g} to "
                          f"{float(its.decay.max()):.6g} per step, a rate per neuron; a recipe's membrane readout "
                          "decays by one rate (method.membrane_decay)")
    elif isinstance(its, nn.AvgPool2d) and isinstance(mine, nn.AvgPool2d):
        keys = ("kernel_size", "stride", "padding")
        if any(pair(getattr(mine, k)) != pair(getattr(its, k)) for k in keys) or (
                mine.divisor_override != its.divisor_override):
            raise ConfigError(f"{where}: " + ", ".join(f"{k} {getattr(its, k)} vs {getattr(mine, k)}" for k in keys)
                              + " (the file's vs the recipe's), or a sum pool against an average pool")
    elif not (isinstance(its, nn.Flatten) and isinstance(mine, nn.Flatten)
              and (its.start_dim, its.end_dim) == (mine.start_dim, mine.end_dim)):
        raise ConfigError(f"{where}: the recipe's net has {type(mine).__name__} here{_kind_hint(mine, its)}")


def _kind_hint(mine: nn.Module, its: nn.Module) -> str:
    """The recipe key that builds the file's kind of layer ``its`` where the recipe's net has ``mine``: its output
    integrator (``method.readout=membrane``), its spiking output (``method.readout=rate``), its LIF / CubaLIF
    neurons (``method.neuron=lif`` / ``synaptic``), a recurrent layer in one net only (the model, not
    ``method.neuron``: an rsnn recipe against a feed-forward file was told "set method.neuron=lif", which it had);
    "" when no key does."""
    neurons = SpikingNeuron | SynapticLIF | HeterogeneousLIF
    if isinstance(mine, RecurrentSpiking) != isinstance(its, RecurrentSpiking):  # not a neuron key: the model's layer
        return (": the file's layer is recurrent (model.name=rsnn builds recurrent layers)"
                if isinstance(its, RecurrentSpiking) else ": the file's layer has no recurrent weights")
    if isinstance(its, Integrator):
        return "" if isinstance(mine, WEIGHTED) else ": set method.readout=membrane"
    if not isinstance(its, neurons) or isinstance(mine, (*WEIGHTED, nn.AvgPool2d, nn.Flatten)):
        return ""
    if isinstance(mine, Integrator):
        return ": set method.readout=rate"
    synaptic = isinstance(its, SynapticLIF) or getattr(its, "syn_decay", None) is not None
    return f": set method.neuron={'synaptic' if synaptic else 'lif'}"


def _copy_weighted(mine: nn.Module, its: nn.Module, gain: torch.Tensor | None, where: str) -> None:
    """``W' = c W``, ``b' = c b`` (``c``: the gain, one per output channel) into ``mine``, same shape and geometry."""
    if mine.weight.shape != its.weight.shape:
        raise ConfigError(f"{where}: weight {list(its.weight.shape)} in the file, {list(mine.weight.shape)} in the "
                          "recipe's net")
    if isinstance(its, nn.Conv2d):
        geometry = ("stride", "padding", "dilation", "groups")
        if any(getattr(mine, k) != getattr(its, k) for k in geometry):
            raise ConfigError(f"{where}: " + ", ".join(f"{k} {getattr(its, k)} vs {getattr(mine, k)}"
                                                       for k in geometry) + " (the file's vs the recipe's)")
    c = channel_gain(gain, mine.weight.shape[0], its.weight.dim() - 1, where)
    bias = its.bias.detach() if its.bias is not None else torch.zeros(mine.weight.shape[0])
    if mine.bias is None and bool((bias != 0).any()):
        raise ConfigError(f"{where}: the file's layer has a bias, the recipe's net has none (an mlp takes "
                          "model.args.bias=true)")
    mine.weight.copy_(its.weight.detach() * c.reshape(-1, *([1] * (its.weight.dim() - 1))))
    if mine.bias is not None:
        mine.bias.copy_(bias * c)


def _copy_recurrent(mine: RecurrentSpiking, its: RecurrentSpiking, where: str) -> None:
    """The recurrent weight ``V`` (the file's with its neurons' input gain folded in, ``nir_import``) and the
    neurons; the feed-forward layers were pairs of their own (``_unrolled``)."""
    if isinstance(mine.neuron, LearnableLIF) and mine.neuron.w is None:  # a fixed decay: a learnt threshold only
        raise ConfigError(f"{where}: a recurrent layer of neurons with a learnt threshold does not start from a file; "
                          "set method.learn_threshold=false")
    if isinstance(mine.neuron, LearnableLIF):
        raise ConfigError(f"{where}: a recurrent layer of learnable (PLIF) neurons does not start from a file; use "
                          "method.neuron=lif with the file's decay and threshold")
    _copy_weighted(mine.recurrent.module, its.recurrent.module, None, f"{where} recurrent weight")
    _check_neuron(mine.neuron, its.neuron, where)


def _check_neuron(mine: nn.Module, its: nn.Module, where: str) -> None:
    """The same neuron: decay, threshold and reset (and a synaptic current's decay), else the recipe keys to set."""
    want, have = _constants(its, where), _constants(mine, where)
    wrong = [k for k in want if not _same(want[k], have.get(k))]
    if wrong:
        raise ConfigError(f"{where}: the file's neurons have {_shown(want)}, the recipe's {_shown(have)}: set "
                          f"{_keys(want, have, wrong)}")


def _keys(want: dict, have: dict, wrong: list[str]) -> str:
    """The recipe keys that give the file's neuron constants ``want`` (``wrong``: those the recipe's ``have`` lacks):
    a synaptic current where the recipe has none needs ``method.neuron=synaptic`` too, none where it has one
    ``method.neuron=lif`` (no ``syn_decay``)."""
    if want["syn_decay"] is None and have["syn_decay"] is not None:
        wrong = ["neuron", *(k for k in wrong if k != "syn_decay")]
    elif want["syn_decay"] is not None and have["syn_decay"] is None:
        wrong = ["neuron", *wrong]
    values = {**want, "neuron": "lif" if want["syn_decay"] is None else "synaptic"}
    return " ".join(f"method.{k}={values[k]:.6g}" if isinstance(values[k], float) else f"method.{k}={values[k]}"
                    for k in wrong)


def _constants(neuron: nn.Module, where: str) -> dict:
    """``decay``, ``threshold``, ``reset`` (and ``syn_decay``, None without a synaptic current) of a neuron layer;
    an imported layer with per-neuron constants (``HeterogeneousLIF``, e.g. for a per-neuron input gain) when each
    is one value for the layer, else a one-line ``ConfigError``."""
    if isinstance(neuron, HeterogeneousLIF):
        values = {k: getattr(neuron, k) for k in ("decay", "threshold", "syn_decay")}
        varies = [k for k, v in values.items() if v is not None and not bool((v == v.reshape(-1)[0]).all())]
        if varies:
            raise ConfigError(f"{where}: the file's neurons each have their own time constants or thresholds; the "
                              f"recipe's net has one set per layer{_per_neuron_remedy(varies)}")
        one = {k: None if v is None else float(v.reshape(-1)[0]) for k, v in values.items()}
        return {"decay": one["decay"], "threshold": one["threshold"], "reset": neuron.fixed.reset,
                "syn_decay": one["syn_decay"]}
    params = neuron.fixed if isinstance(neuron, SynapticLIF) else neuron.params
    syn = neuron.syn_decay if isinstance(neuron, SynapticLIF) else None
    return {"decay": params.decay, "threshold": params.threshold, "reset": params.reset,
            "syn_decay": None if syn is None else float(syn)}


def _per_neuron_remedy(varies: list[str]) -> str:
    """What a recipe sets to take a file's per-channel or per-neuron constants ``varies`` (names of ``_constants``):
    a PLIF run learning them from the file's values (``nir_init_learnable``; with the thresholds too where they
    differ); nothing for a synaptic decay per neuron, which no recipe's neuron holds."""
    if "syn_decay" in varies:
        return " (no recipe's neuron has a synaptic decay per channel or neuron)"
    learn = " method.learn_threshold=true" if "threshold" in varies else ""
    return f": set method.neuron=plif method.neuron_params=channel (or neuron){learn}"


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):  # a decay read back from a float32 tau
        return bool(np.isclose(a, b, rtol=RTOL, atol=0.0))
    return a == b


def _shown(values: dict) -> str:
    return ", ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items() if v is not None)

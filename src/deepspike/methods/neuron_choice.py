"""The spiking neuron of a rate-coded method, chosen by its options (``method.neuron`` and friends).

Options (fields of the method's options, e.g. ``StbpOptions``; one-line ``ConfigError`` for bad values):

* ``neuron``: ``lif`` (default: the fixed-parameter LIF, fused kernels, unchanged), ``plif`` (learnable membrane
  time constant, Fang et al. ICCV 2021: ``V_t = V_{t-1} + (X_t - V_{t-1})/tau``, ``1/tau = sigmoid(w)``,
  ``neurons.learnable``) or ``psn`` (parallel spiking neuron, Fang et al. NeurIPS 2023: no reset,
  ``H = W X`` over all T steps in one matmul, trainable ``W [T, T]`` and thresholds ``b [T]``, ``neurons.psn``),
  ``masked_psn`` (the same with ``W`` masked over training down to the band of the ``psn_order`` most recent
  inputs, ``neurons.masked_psn``), ``sliding_psn`` (``psn_order`` weights slid over time and one threshold: any T,
  step by step, ``neurons.sliding_psn``) or ``synaptic`` (the current-based LIF: ``i_t = alpha i_{t-1} + x_t``
  feeds the LIF, ``alpha = syn_decay``, NIR's CubaLIF and snnTorch's Synaptic, ``neurons.synaptic``) or ``alif``
  (adaptive threshold: ``theta_t = th + beta a_{t-1}``, ``a_t = rho a_{t-1} + s_t``, Bellec et al.'s LSNN neuron,
  ``neurons.adaptive``);
* ``learn_threshold``: train the firing threshold of ``lif``/``plif`` neurons (initialised at ``threshold``;
  the PSN family always trains its thresholds);
* ``psn_order``: ``k >= 1``, the inputs a ``masked_psn`` (``k <= timesteps``) or ``sliding_psn`` (``k <= 16,384``, the
  longest window a PSN reads: ``neurons.psn.MAX_PSN_STEPS``) step reads;
* ``neuron_params``: ``layer`` (one ``tau``/threshold per layer), ``channel`` (one per channel of a conv
  layer's ``[T, B, C, H, W]`` output, one per feature of a linear layer's) or ``neuron`` (one per neuron,
  ``[C, H, W]`` / ``[F]``: heterogeneous time constants, Perez-Nieves et al. 2021);
* ``tau_init``: the initial ``tau`` (> 1) of ``plif`` (the PLIF paper's 2.0);
* ``syn_decay``: the synaptic current's decay ``alpha`` in [0, 1] of ``synaptic`` (``1 - dt/tau_syn``);
* ``adapt_decay``, ``adapt_scale``: ``rho`` in [0, 1] and ``beta`` in [0, FLOAT32_MAX] of ``alif``;
* ``detach_reset``: the spike inside the reset is a constant in the backward pass (``neurons.dynamics``; SpikingJelly's
  ``detach_reset``, on in Spikformer); every neuron with a reset (not the PSN family);
* ``state_bits`` (null or 1 to 16), ``state_low``, ``state_high`` (>= 0): a quantised membrane for ``lif`` and
  ``synaptic`` (``neurons.state_quant``: ``2^bits`` levels on ``[-th (1 + low), th (1 + high)]``, straight-through
  gradient; the reference loop runs it, not the fused kernels);
* ``max_spikes``: ``N``, an integer >= 1 (default 1: one spike a step), the most spikes a hidden ``lif`` or
  ``synaptic`` neuron fires in a step: ``n_t = clamp(floor(h_t / th), 0, N)``, reset by subtraction of ``n_t th``,
  the next layer fed ``W n_t``, as Xylo's hidden neurons fire (``N = 31``; ``neurons.multi_spike``: surrogate the
  sum of the single-spike ones at ``th, 2 th, ..., N th``). It needs ``reset: subtract``; the output layer's (readout)
  and attention neurons keep one spike; above 1 the net runs the plain torch loop (the fused kernels assume one spike
  a step). Other neurons refuse it in one line, and so does NIR export (NIR's LIF fires one spike); Xylo maps it
  with ``N = 31`` only.

``learn_threshold`` and ``neuron_params: channel | neuron`` belong to ``lif``/``plif``; with ``synaptic`` or ``alif``
they are refused in one line, and so are they with the PSN family (one set of weights per layer).

A neuron of one's own joins them with ``register_neuron(name)``: ``method.neuron=name`` then builds every hidden
neuron layer of an ``stbp`` net with ``factory(options, shape)`` (the method's options dataclass and one sample's
output shape of the layer before, ``(C, H, W)`` or ``(F,)``), which returns a module ``[T, B, ...] -> [T, B, ...]``
(``docs/architecture.md``: what else such a neuron should carry).

``psn`` and ``masked_psn`` need the whole sequence at once: they are refused with ``eval_timesteps`` different from
``timesteps`` here, and by ``training.temporal_grad`` for checkpoint/sltt/ottt and by streaming at run time (``psn``
carries no state across calls; ``masked_psn`` runs in pieces only once its masking reached 1, after training, so a
trained one streams). ``sliding_psn`` carries its last ``k - 1`` inputs and runs in all of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from torch import nn

from deepspike.core.errors import ConfigError, UnusedOptionError
from deepspike.core.options import FLOAT32_MAX, is_whole
from deepspike.core.registration import factory_registrar, made_module
from deepspike.neurons import LIF, NeuronParams
from deepspike.neurons.adaptive import AdaptiveLIF, is_adaptation
from deepspike.neurons.learnable import LearnableLIF, tau_to_weight
from deepspike.neurons.masked_psn import MaskedPSN
from deepspike.neurons.multi_spike import MultiSpikeLIF, MultiSpikeSynapticLIF, check_max_spikes
from deepspike.neurons.psn import MAX_PSN_STEPS, PSN
from deepspike.neurons.sliding_psn import SlidingPSN
from deepspike.neurons.state_quant import StateQuant
from deepspike.neurons.synaptic import SynapticLIF, is_syn_decay

NEURONS = ("lif", "plif", "psn", "masked_psn", "sliding_psn", "synaptic", "alif")
"""The built-in neurons."""
NEURON_PARAMS = ("layer", "channel", "neuron")
PSN_FAMILY = ("psn", "masked_psn", "sliding_psn")
WHOLE_SEQUENCE = ("psn", "masked_psn")
"""The PSN-family neurons that need all T steps in one call."""

NeuronFactory = Callable[[Any, "tuple[int, ...] | None"], nn.Module]
_OWN: dict[str, NeuronFactory] = {}


def register_neuron(name: str) -> Callable[[NeuronFactory], NeuronFactory]:
    """Decorator registering ``factory(options, shape) -> nn.Module`` as ``method.neuron=name`` (module docstring).

    ``TypeError`` for a name that is not a new non-empty string (a built-in's included) or a factory that is not
    callable; ``ConfigError`` for a name another factory has (``core.registration``)."""
    return factory_registrar("register_neuron", "neuron", name, NEURONS, _OWN)


def neuron_names() -> tuple[str, ...]:
    """Every valid ``method.neuron``: the built-in ones, then those registered, sorted."""
    return (*NEURONS, *sorted(_OWN))


def check_neuron_options(o: Any) -> None:
    """One-line ``ConfigError`` for a bad ``neuron`` / ``neuron_params`` / ``tau_init`` / PSN step setting of ``o``
    (an options dataclass with the fields of the module docstring and ``timesteps``, ``eval_timesteps``), or a bad
    ``decay`` / ``threshold`` / ``reset`` / ``surrogate`` / ``surrogate_args`` (``NeuronParams``' checks)."""
    for key, value, valid in (("neuron", o.neuron, neuron_names()),
                              ("neuron_params", o.neuron_params, NEURON_PARAMS)):
        if value not in valid:
            raise ConfigError(f"bad value {value!r} for method.{key}; valid: {', '.join(valid)}")
    if not isinstance(o.learn_threshold, bool):
        raise ConfigError(f"bad value {o.learn_threshold!r} for method.learn_threshold; valid: true, false")
    try:
        tau_to_weight(float(o.tau_init))
    except (TypeError, ValueError, ConfigError):
        raise ConfigError(f"bad value {o.tau_init!r} for method.tau_init: expected a finite number > 1") from None
    if not is_syn_decay(o.syn_decay):
        raise ConfigError(f"bad value {o.syn_decay!r} for method.syn_decay: expected a number in [0, 1]")
    if not is_adaptation(o.adapt_decay, o.adapt_scale):
        raise ConfigError(f"bad value for method.adapt_decay/adapt_scale: expected a number in [0, 1] and a number "
                          f"in [0, {FLOAT32_MAX:.4g}], got {o.adapt_decay!r}/{o.adapt_scale!r}")
    for key, default in (("learn_threshold", False), ("neuron_params", "layer")):
        if o.neuron in ("synaptic", "alif") and getattr(o, key) != default:
            raise _unused(f"method.neuron={o.neuron} has fixed per-layer settings: method.learn_threshold and "
                          "method.neuron_params=channel|neuron are for lif and plif", o, key, LIF_OR_PLIF)
    if o.neuron == "lif" and not o.learn_threshold and o.neuron_params != "layer":  # nothing learnt to spread
        raise _unused(f"method.neuron_params={o.neuron_params} gives each {o.neuron_params} its own learnt "
                      "constants; the fixed lif learns none: set method.learn_threshold=true or method.neuron=plif", o,
                      "neuron_params", "method.learn_threshold=true or method.neuron=plif")
    if math.isfinite(o.decay) and math.isfinite(o.threshold):  # else core.options.check_numbers' message
        NeuronParams(decay=o.decay, threshold=o.threshold, reset=o.reset, surrogate=o.surrogate,
                     surrogate_args=dict(o.surrogate_args), detach_reset=o.detach_reset)  # checked at load
    state_quant_of(o)
    _check_max_spikes(o)
    _check_psn_options(o)


LIF_OR_PLIF = "method.neuron=lif or plif"


def _unused(message: str, o: Any, key: str, needs: str) -> UnusedOptionError:
    """The ``UnusedOptionError`` ``message`` for option ``key`` of options ``o`` (a dataclass), set away from its
    default where ``needs`` does not hold (``config.load`` resets a recipe's value that an override made unused)."""
    field = o.__dataclass_fields__[key]
    return UnusedOptionError(message, "method", key, getattr(o, key), field.default, needs)


def _check_max_spikes(o: Any) -> None:
    """One-line ``ConfigError`` for a ``max_spikes`` (absent: 1) that is not an integer >= 1, or above 1 with a
    neuron other than the fixed ``lif`` / ``synaptic`` or a reset other than ``subtract`` (module docstring)."""
    most = getattr(o, "max_spikes", 1)
    if check_max_spikes(most, key="method.max_spikes") == 1:
        return
    if o.neuron not in ("lif", "synaptic") or o.learn_threshold:
        raise ConfigError(f"method.max_spikes={most} fires several spikes a step from the fixed lif and synaptic "
                          f"neurons only, not method.neuron={o.neuron}" + (" with learn_threshold" if o.learn_threshold
                                                                            else ""))
    if o.reset != "subtract":
        raise ConfigError(f"method.max_spikes={most} needs method.reset: subtract (each spike removes one "
                          f"threshold), got {o.reset!r}")


def _check_psn_options(o: Any) -> None:
    """One-line ``ConfigError`` for ``psn_order`` out of range, or an option the PSN family cannot take (module
    docstring)."""
    most = o.timesteps if o.neuron == "masked_psn" else None
    if not is_whole(o.psn_order, 1, math.inf if most is None else most):
        raise ConfigError(f"bad value {o.psn_order!r} for method.psn_order: expected an integer >= 1"
                          + (f" and <= method.timesteps={most} (masked_psn)" if most is not None else ""))
    if o.neuron == "sliding_psn" and o.psn_order > MAX_PSN_STEPS:
        raise ConfigError(f"bad value {o.psn_order!r} for method.psn_order: expected at most {MAX_PSN_STEPS:,} "
                          "(sliding_psn: the longest window a PSN reads)")
    if o.neuron not in PSN_FAMILY:
        return
    if o.detach_reset:
        raise _unused(f"method.detach_reset acts on a reset, and method.neuron={o.neuron} has none", o, "detach_reset",
                      "method.neuron has a reset (the PSN family has none)")
    if o.neuron_params != "layer":
        raise _unused(f"method.neuron_params={o.neuron_params} is for lif and plif: method.neuron={o.neuron} has "
                      "one set of weights and thresholds per layer", o, "neuron_params", LIF_OR_PLIF)
    if o.learn_threshold:  # was ignored in silence: the module docstring said refused
        raise _unused(f"method.learn_threshold is for lif and plif: method.neuron={o.neuron} always trains its "
                      "thresholds", o, "learn_threshold", LIF_OR_PLIF)
    if o.neuron in WHOLE_SEQUENCE and o.eval_timesteps not in (None, o.timesteps):
        raise ConfigError(f"method.neuron={o.neuron} needs all T steps at once: method.eval_timesteps="
                          f"{o.eval_timesteps} must equal method.timesteps={o.timesteps} (or be null); sliding_psn "
                          "runs at any T")


def state_quant_of(o: Any) -> StateQuant | None:
    """The membrane quantisation ``o.state_bits`` / ``state_low`` / ``state_high`` ask for (None without
    ``state_bits``); a one-line ``ConfigError`` for bad values or a neuron other than a fixed ``lif`` / ``synaptic``."""
    try:  # state_low / state_high checked also while state_bits is null
        quant = StateQuant(1 if o.state_bits is None else o.state_bits, o.state_low, o.state_high)
    except ConfigError as error:
        raise ConfigError(f"method.{error}") from None
    if o.state_bits is None:
        return None
    if o.neuron not in ("lif", "synaptic") or o.learn_threshold:
        raise _unused(f"method.state_bits quantises the membrane of the fixed lif and synaptic neurons, not "
                      f"method.neuron={o.neuron}" + (" with learn_threshold" if o.learn_threshold else ""), o,
                      "state_bits", "method.neuron=lif or synaptic, without method.learn_threshold")
    try:
        quant.check_fits(o.threshold)
    except ConfigError as error:
        raise ConfigError(f"method.{error}") from None
    return quant


def make_neuron(o: Any, shape: tuple[int, ...] | None = None, inplace: bool = False,
                max_spikes: int | None = None) -> nn.Module:
    """The neuron layer ``o`` asks for; ``shape``: one sample's output of the layer it follows, ``(C, H, W)`` or
    ``(F,)`` (its first entry sizes the per-channel parameters; a one-line ``ConfigError`` when a learnable neuron
    per channel or per neuron is asked for without it); ``inplace``: for the plain LIF (whose fused kernel may reuse
    a fresh input's memory). ``max_spikes`` (None: ``o.max_spikes``, absent: 1) above 1 gives the multi-spike lif /
    synaptic (``neurons.multi_spike``); 1 for layers that fire one spike a step whatever ``o`` says (readout,
    attention)."""
    if o.neuron in _OWN:
        return made_module("neuron", o.neuron, _OWN[o.neuron](o, shape))
    if o.neuron in PSN_FAMILY:
        return _psn_neuron(o)
    params = NeuronParams(decay=o.decay, threshold=o.threshold, reset=o.reset, surrogate=o.surrogate,
                          surrogate_args=dict(o.surrogate_args), detach_reset=o.detach_reset,
                          state_quant=state_quant_of(o))
    most = getattr(o, "max_spikes", 1) if max_spikes is None else max_spikes
    if o.neuron == "synaptic":
        return SynapticLIF(params, float(o.syn_decay)) if most == 1 else MultiSpikeSynapticLIF(
            params, float(o.syn_decay), most)
    if o.neuron == "lif" and most > 1:
        return MultiSpikeLIF(params, most)
    if o.neuron == "alif":
        return AdaptiveLIF(params, float(o.adapt_decay), float(o.adapt_scale))
    if o.neuron == "lif" and not o.learn_threshold:
        return LIF(decay=o.decay, threshold=o.threshold, reset=o.reset, surrogate=o.surrogate,
                   surrogate_args=dict(o.surrogate_args), detach_reset=o.detach_reset, inplace=inplace,
                   state_quant=params.state_quant)
    if o.neuron_params != "layer" and not shape:  # else one value per layer, silently
        raise ConfigError(f"method.neuron_params={o.neuron_params} needs the shape of the layer the neuron follows "
                          f"(one sample's output, (C, H, W) or (F,)); got {shape!r}")
    channels = shape[0] if o.neuron_params == "channel" else None
    neurons = tuple(shape) if o.neuron_params == "neuron" else None
    return LearnableLIF(params, channels, learn_decay=o.neuron == "plif", tau_init=float(o.tau_init),
                        learn_threshold=o.learn_threshold, neurons=neurons)


def _psn_neuron(o: Any) -> nn.Module:
    """The PSN-family neuron ``o.neuron`` names, started from the no-reset LIF of ``o.decay`` / ``o.threshold``."""
    common = {"decay": o.decay, "threshold": o.threshold, "surrogate": o.surrogate,
              "surrogate_args": dict(o.surrogate_args)}
    if o.neuron == "masked_psn":
        return MaskedPSN(o.timesteps, o.psn_order, **common)
    if o.neuron == "sliding_psn":
        return SlidingPSN(o.psn_order, **common)
    return PSN(o.timesteps, **common)

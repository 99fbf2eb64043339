"""Our discrete IF/LIF neurons <-> NIR's continuous-time neuron nodes, for a time step ``dt`` (seconds).

Ours (``deepspike.neurons``): ``h_t = k v_{t-1} + x_t``, spike when ``h_t >= th``, reset. NIR's LIF
``tau dv/dt = (v_leak - v) + R I`` integrated by forward Euler over ``dt`` with the input current held at
``x_t`` gives ``v_t = (1 - dt/tau) v_{t-1} + (R dt / tau) x_t``, so::

    LIF:  tau = dt / (1 - k),  R = tau / dt = 1 / (1 - k),  v_leak = 0,  v_threshold = th,  v_reset = 0
    IF:   dv/dt = R I  ->  R = 1 / dt   (k = 1)

NIR resets to ``v_reset`` and fires on ``v > v_threshold`` (strict); reset by subtraction and our
``>=`` cannot be said in NIR and are recorded in the node's metadata (``reset``, ``fires``), with the step
``dt`` (seconds), our ``decay`` and a quantised membrane's ``state_bits`` / ``state_low`` / ``state_high``.
Every value is finite: an IF neuron is an ``IF`` node, never a LIF with ``tau = inf``.
"""

from __future__ import annotations

import math

import numpy as np

from deepspike.core.errors import ConfigError, unknown_choice
from deepspike.deploy.deps import require_nir
from deepspike.deploy.nir_fields import shown
from deepspike.neurons.params import RESETS, NeuronParams
from deepspike.neurons.state_quant import StateQuant


def neuron_node(params: NeuronParams, shape: tuple[int, ...], dt: float, threshold: float | None = None,
                strict: bool = False):
    """The NIR node (``IF`` for decay 1, else ``LIF``) of a layer of ``shape`` neurons with ``params``.

    ``threshold`` overrides ``params.threshold`` (1.0 after folding it into the weights); ``strict`` marks a
    neuron that fires at ``v > threshold`` (lee2020's pooling neuron) instead of our ``>=``.
    """
    nir = require_nir()
    th = params.threshold if threshold is None else threshold
    ones = np.ones(shape, dtype=np.float32)
    meta = {"reset": params.reset, "fires": "v > threshold" if strict else "v >= threshold",
            "decay": params.decay, "dt": float(dt), **state_metadata(params)}
    if params.decay == 1.0:
        return nir.IF(r=ones / dt, v_threshold=ones * th, v_reset=0 * ones, metadata=meta)
    tau = float32_time_constant(dt, params.decay)
    return nir.LIF(tau=ones * tau, r=ones * (tau / dt), v_leak=0 * ones, v_threshold=ones * th,
                   v_reset=0 * ones, metadata=meta)


def synaptic_node(params: NeuronParams, syn_decay: float, shape: tuple[int, ...], dt: float,
                  threshold: float | None = None):
    """The NIR ``CubaLIF`` of a layer of ``shape`` current-based LIF neurons (``neurons.synaptic``): ours,
    ``i_t = alpha i_{t-1} + x_t``, ``h_t = k v_{t-1} + i_t``, is CubaLIF under forward Euler over ``dt``
    (``i_t = (1 - dt/tau_syn) i_{t-1} + (w_in dt/tau_syn) x_t``, ``v_t = (1 - dt/tau_mem) v_{t-1} + (r dt/tau_mem)
    i_t``: the current of step t enters the membrane of step t) with::

        tau_syn = dt / (1 - alpha),  w_in = tau_syn / dt,  tau_mem = dt / (1 - k),  r = tau_mem / dt

    ``alpha`` or ``k`` equal to 1 (no leak) has no finite time constant: a one-line ``ConfigError``. The metadata
    holds ``reset``, ``fires``, ``decay``, ``syn_decay`` and ``dt``, as for ``neuron_node``."""
    if params.decay == 1.0 or syn_decay == 1.0:
        raise ConfigError(f"NIR export: a synaptic neuron with decay {params.decay:g} and syn_decay {syn_decay:g} has "
                          "no finite CubaLIF time constant (both must be < 1)")
    th = params.threshold if threshold is None else threshold
    meta = {"reset": params.reset, "fires": "v >= threshold", "decay": params.decay, "syn_decay": float(syn_decay),
            "dt": float(dt), **state_metadata(params)}
    return cuba_node(*(np.full(shape, value, dtype=np.float64) for value in (params.decay, syn_decay, th)), dt, meta)


def cuba_node(decay: np.ndarray, syn_decay: np.ndarray, threshold: np.ndarray, dt: float, metadata: dict,
              exact: bool = False):
    """The NIR ``CubaLIF`` of current-based LIF neurons with decay ``k``, synaptic decay ``alpha`` and threshold
    ``th``, each an array of one value per neuron (the layer's shape), under forward Euler over ``dt``
    (``synaptic_node``): ``tau_syn = dt / (1 - alpha)``, ``w_in = tau_syn / dt``, ``tau_mem = dt / (1 - k)``, ``r =
    tau_mem / dt`` (float32 time constants that read back the float32 decays bit for bit,
    ``time_constants_reading_back``; rounded up where no float32 does). A neuron whose ``k`` or ``alpha`` is 1 (no
    leak) has no finite time constant: a one-line ``ConfigError`` (unless ``exact``: an imported layer, whose float32
    decay 1 is written as ``LONGEST_TAU_STEPS dt``)."""
    nir = require_nir()
    k, alpha = np.asarray(decay, dtype=np.float64), np.asarray(syn_decay, dtype=np.float64)
    below = (lambda a: (a <= 1.0).all()) if exact else (lambda a: (a < 1.0).all())
    if not (np.isfinite(k).all() and np.isfinite(alpha).all() and below(k) and below(alpha)):
        raise ConfigError("NIR export: a synaptic neuron's decay and syn_decay must be below 1 for every neuron (a "
                          f"finite CubaLIF time constant), got decay up to {k.max():g} and syn_decay up to "
                          f"{alpha.max():g}")
    th = np.asarray(threshold, dtype=np.float32)
    tau_syn, tau_mem = time_constants_reading_back(dt, alpha), time_constants_reading_back(dt, k)
    return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, v_leak=0 * th, v_threshold=th,
                       v_reset=0 * th, w_in=tau_syn / dt, metadata=metadata)


def learnable_node(decay: np.ndarray, gain: np.ndarray, threshold: np.ndarray, reset: str, shape: tuple[int, ...],
                   dt: float, exact: bool = False):
    """The NIR node of a trained ``neurons.learnable.LearnableLIF`` of ``shape`` neurons, ``h_t = k v_{t-1} + c x_t``
    (PLIF: ``c = 1 - k``; a learnt threshold alone: ``c = 1``), its ``decay`` k, ``gain`` c and ``threshold`` one
    value per layer (``()``), per channel (``[C]``, the first axis of ``shape``) or per neuron (``shape``), spread to
    one per neuron::

        tau = dt / (1 - k)  (float32),   r = c tau / dt  (so that r dt / tau = c),   v_threshold = th

    (forward Euler over ``dt``, as ``neuron_node``); ``k = 1`` everywhere (no leak) is an ``IF`` with ``r = c /
    dt``. Each float32 ``tau`` reads back the float32 decay ``k`` bit for bit where a float32 does (a trained PLIF's
    rounded-up taus read back another decay for ~20% of random decays in [0.5, 1)). A decay of 1 in some channels only
    has no finite tau: a one-line ``ConfigError``, unless ``exact`` (an imported layer, ``HeterogeneousLIF``):
    ``LONGEST_TAU_STEPS dt`` where ``k = 1``."""
    nir = require_nir()
    k, c = spread_per_channel(decay, shape), spread_per_channel(gain, shape)
    th = spread_per_channel(threshold, shape).astype(np.float32)
    meta = {"reset": reset, "fires": "v >= threshold", "decay": np.asarray(decay, np.float64).tolist(),
            "dt": float(dt)}
    if (k == 1.0).all():
        return nir.IF(r=(c / dt).astype(np.float32), v_threshold=th, v_reset=0 * th, metadata=meta)
    if ((k > 1.0) if exact else (k >= 1.0)).any() or not np.isfinite(k).all():
        raise ConfigError(f"NIR export: a learnable neuron's decay must lie below 1 in every channel (a finite time "
                          f"constant), got {np.asarray(decay).ravel()[:8].tolist()}")
    tau = time_constants_reading_back(dt, k)
    return nir.LIF(tau=tau, r=(c * tau.astype(np.float64) / dt).astype(np.float32), v_leak=0 * th, v_threshold=th,
                   v_reset=0 * th, metadata=meta)


def spread_per_channel(values, shape: tuple[int, ...]) -> np.ndarray:
    """One value per layer (``()``), per channel (``[C]``, the first axis of ``shape``) or per neuron (``shape``)
    as one per neuron ``shape`` (float64)."""
    values = np.asarray(values, dtype=np.float64)
    return np.broadcast_to(values.reshape(values.shape + (1,) * (len(shape) - values.ndim)), shape).copy()


def converted_if_node(threshold, reset: str, initial: float, weighted: bool, signed: bool, shape: tuple[int, ...],
                      dt: float):
    """The ``IF`` node of a low-latency converted neuron (``neurons.chunked_if.ChunkedIF``: Bu et al. 2022's start
    membrane ``v_0 = initial th``, threshold-valued spikes, signed spikes, per-channel thresholds): ``r = 1/dt``
    (``x_t`` per step), ``v_threshold`` its threshold per neuron (``threshold``: one value or one per channel), and
    what NIR cannot say in deepspike's own metadata keys ``initial``, ``weighted`` and ``signed``
    (``low_latency_rules``), which GraphSimulator and the ONNX export read and other NIR tools do not."""
    nir = require_nir()
    th = spread_per_channel(threshold, shape).astype(np.float32)
    meta = {"reset": reset, "fires": "v >= threshold", "decay": 1.0, "dt": float(dt), "initial": float(initial),
            "weighted": bool(weighted), "signed": bool(signed)}
    return nir.IF(r=np.full(shape, 1.0 / dt, dtype=np.float32), v_threshold=th, v_reset=0 * th, metadata=meta)


def low_latency_rules(node) -> tuple[float, bool, bool]:
    """``(initial, weighted, signed)`` of a spiking node from deepspike's metadata (``converted_if_node``; ``(0,
    False, False)`` when absent): the membrane starts at ``initial * v_threshold``, a spike carries the neuron's
    threshold, and a neuron whose membrane is below 0 while its net spike count is positive fires -1 (reset by
    subtraction: ``v += v_threshold``). Values of another kind are a one-line ``ConfigError``."""
    meta = getattr(node, "metadata", None) or {}
    initial, weighted, signed = (meta.get(k, d) for k, d in (("initial", 0.0), ("weighted", False), ("signed", False)))
    flags_ok = all(isinstance(f, bool | np.bool_) for f in (weighted, signed))
    number = isinstance(initial, int | float | np.integer | np.floating) and not isinstance(initial, bool)
    if not (flags_ok and number and 0.0 <= float(initial) < 1.0):
        raise ConfigError(f"NIR: a neuron's metadata initial={shown(initial)}, weighted={shown(weighted)}, "
                          f"signed={shown(signed)}: expected a fraction in [0, 1) and two true/false flags")
    if signed and firing_rules(node)[0] != "subtract":
        raise ConfigError("NIR: a neuron with signed spikes must reset by subtraction (metadata reset='subtract')")
    return float(initial), bool(weighted), bool(signed)


def float32_time_constants(dt: float, decay: np.ndarray) -> np.ndarray:
    """:func:`float32_time_constant` of every decay in an array (float32, each rounded up)."""
    tau = dt / (1.0 - np.asarray(decay, dtype=np.float64))
    tau32 = tau.astype(np.float32)
    return np.where(tau32.astype(np.float64) < tau, np.nextafter(tau32, np.float32(np.inf)), tau32)


LONGEST_TAU_STEPS = 2.0**26
"""``tau / dt`` written by ``time_constants_reading_back`` for an imported neuron that does not decay (``k = 1``: the
float32 decay read from a node whose ``tau`` exceeds ~2^24 ``dt``): ``1 - 2^-26`` reads back as the float32 1."""


def time_constants_reading_back(dt: float, decay: np.ndarray, ulps: int = 4) -> np.ndarray:
    """A float32 ``tau >= dt`` per decay ``k`` (in [0, 1]) that ``from_nir`` reads back as the same float32 decay,
    ``float32(1 - dt / tau) = float32(k)``: of the float32 values within ``ulps`` of ``dt / (1 - k)``, the nearest that
    does, else (a ``k`` no float32 ``tau`` gives) ``float32_time_constants``'s; ``LONGEST_TAU_STEPS dt`` for ``k = 1``.
    ``float32_time_constants``' rounded-up ``tau`` read back another decay for 3% of random ``tau`` in [dt, e^12 dt]:
    an imported net written back (``nir_export``) was not the net read."""
    k = np.asarray(decay, dtype=np.float64)
    wanted = k.astype(np.float32)
    tau = np.where(k < 1.0, float32_time_constants(dt, np.where(k < 1.0, k, 0.0)),
                   np.float32(dt * LONGEST_TAU_STEPS)).astype(np.float32)
    found = np.zeros(k.shape, dtype=bool)
    for step in sorted(range(-ulps, ulps + 1), key=abs):
        candidate = tau
        for _ in range(abs(step)):
            candidate = np.nextafter(candidate, np.float32(np.inf if step > 0 else 0.0))
        reads = (1.0 - dt / candidate.astype(np.float64)).astype(np.float32)
        hit = ~found & (reads == wanted) & (candidate.astype(np.float64) >= dt)
        tau, found = np.where(hit, candidate, tau), found | hit
    return tau


def float32_time_constant(dt: float, decay: float) -> np.float32:
    """``tau = dt / (1 - decay)`` as the float32 a NIR file holds, one value for a layer: the float32 ``tau`` that
    ``from_nir`` reads back as the float32 decay the net runs, ``float32(1 - dt / tau) = float32(decay)``
    (``time_constants_reading_back``, as for a layer with one decay per neuron), else (a decay no float32 ``tau``
    gives) rounded up, never below ``dt / (1 - decay)``: rounding to the nearest float32 could put it below ``dt``
    (decay 0 at dt = 1e-4 wrote 9.9999997e-05), which NIR import refuses, so our own file did not load. The rounded-up
    ``tau`` alone read back another float32 decay for ~half of random decays (0.9 at dt = 1e-3)."""
    return np.float32(time_constants_reading_back(dt, np.asarray(decay, dtype=np.float64)))


def state_metadata(params: NeuronParams) -> dict:
    """What NIR cannot say about a quantised membrane (``neurons.state_quant``): ``state_bits``, ``state_low``,
    ``state_high`` (relative to the threshold, so they survive threshold folding); nothing for float membranes."""
    q = params.state_quant
    return {} if q is None else {"state_bits": q.bits, "state_low": q.low, "state_high": q.high}


def chip_input_note(model) -> str | None:
    """For the chip reports (Speck, Xylo), whose inputs are unsigned event counts: a note when ``model``'s encoder
    feeds its first layer something else (analog values: ``direct``, population currents; signed spikes: ``bipolar``,
    delta coding with OFF spikes), which the chip's inputs cannot carry as they are; None for spike and event-frame
    encoders. The reports' accuracies are simulated on the encoder's own output."""
    enc = getattr(model, "encoder", None)
    kind = getattr(enc, "kind", None)
    if kind in ("direct", "bipolar") or (kind == "population" and not enc.spikes):
        what = "signed spikes" if kind == "bipolar" else "analog values"
    elif kind == "delta" and enc.off_spikes:
        what = "signed ON/OFF spikes (delta_off_spikes; 2F unsigned channels would carry them)"
    else:
        return None
    return f"its input encoder ({kind}) gives {what}, not the unsigned event counts the chip's inputs take"


def refuse_low_latency_on_chip(neuron, chip: str, what: str) -> None:
    """A one-line ``ConfigError`` for a low-latency converted neuron (``neurons.chunked_if.ChunkedIF`` that is not
    ``plain``: a start membrane ``v_0 = initial th``, threshold-valued or signed spikes, one threshold per channel),
    which the chip's IF neurons (0/1 spikes from ``v_0 = 0``, one threshold per layer) do not run: the chip reports
    mapped it as a plain IF layer of its layer threshold, and said it fits."""
    if not getattr(neuron, "plain", True):
        raise ConfigError(f"{chip}: {what} is a low-latency converted neuron (a start membrane, threshold-valued or "
                          "signed spikes, or thresholds per channel), which the chip's IF neurons do not run; convert "
                          "with method.initial_membrane=0, spike_value=one, signed=false and one threshold per layer")


def has_quantised_membrane(model) -> bool:
    """Whether a neuron of ``model`` quantises its membrane (``method.state_bits``: ``params`` or ``fixed`` with a
    ``state_quant``)."""
    return any(getattr(getattr(m, "params", None) or getattr(m, "fixed", None), "state_quant", None)
               for m in model.modules())


def chip_membrane_note(model) -> str | None:
    """For the chip reports (Speck, Xylo): a note when ``model`` was trained with a quantised membrane, which the
    chip's own integer membrane replaces; None otherwise."""
    return ("trained with a quantised membrane (method.state_bits); the chip keeps its own integer membrane, so that "
            "quantisation is not carried" if has_quantised_membrane(model) else None)


def state_quant_of(node) -> StateQuant | None:
    """A node's membrane quantisation from its metadata (``state_metadata``), None where it has none; a one-line
    ``ConfigError`` for values that are not a whole number of bits and two numbers."""
    meta = getattr(node, "metadata", None) or {}
    if meta.get("state_bits") is None:
        return None
    values = [np.asarray(meta.get(key, default)) for key, default in
              (("state_bits", 0), ("state_low", 0.0), ("state_high", 0.2))]
    try:
        bits, low, high = (float(v) for v in values)  # a size-1 array or a number, else TypeError / ValueError
        if not bits.is_integer():
            raise ValueError
        return StateQuant(int(bits), low, high)
    except (TypeError, ValueError, ConfigError):
        given = ", ".join(f"{k}={shown(meta.get(k))}" for k in ("state_bits", "state_low", "state_high"))
        raise ConfigError(f"NIR import: bad membrane quantisation in a node's metadata ({given}): expected state_bits "
                          f"a whole number from 1 to 16, state_low and state_high numbers >= 0") from None


def same_for_every_neuron(value, equal_nan: bool = False) -> bool:
    """Whether a node constant holds one value (its entries equal to the first within relative 1e-6; NaN equal to
    NaN with ``equal_nan``); an empty one does not."""
    flat = np.asarray(value, dtype=np.float64).ravel()
    return flat.size > 0 and bool(np.allclose(flat, flat[0], rtol=1e-6, atol=0.0, equal_nan=equal_nan))


def _uniform(name: str, value: np.ndarray) -> float:
    flat = np.asarray(value, dtype=np.float64).ravel()
    if not same_for_every_neuron(flat):
        raise ConfigError(f"NIR import: {name} must be the same for every neuron of a layer")
    if not math.isfinite(flat[0]):
        raise ConfigError(f"NIR import: {name} = {flat[0]} is not finite")
    return float(flat[0])


def _text(value, default: str) -> str:
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


def firing_rules(node) -> tuple[str, bool]:
    """``(reset, strict)`` of a spiking node from its metadata, which says what NIR cannot: ``reset`` ("zero":
    ``v = v_reset``, NIR's own meaning and the default; "subtract": ``v -= v_threshold``; "none") and ``strict``,
    False only for ``fires: "v >= threshold"`` (ours); NIR's own rule ``v > v_threshold`` when absent.
    An unknown reset is a one-line ``ConfigError``."""
    meta = getattr(node, "metadata", None) or {}
    reset = _text(meta.get("reset"), "zero")
    if reset not in RESETS:
        raise unknown_choice("reset", reset, RESETS)
    return reset, _text(meta.get("fires"), "v > threshold") != "v >= threshold"


def _threshold(node, strict: bool) -> float:
    """A node's one threshold as our neuron's: a node firing at ``v > threshold`` (``strict``) gets the next float32
    above it, so our ``h >= th'`` equals ``h > th`` for float32 membranes."""
    th = _uniform("v_threshold", node.v_threshold)
    return float(np.nextafter(np.float32(th), np.float32(np.inf))) if strict else th


def node_params(node, dt: float) -> tuple[NeuronParams, float]:
    """``(params, input_scale)`` of an ``IF``/``LIF`` node: our neuron sees ``input_scale * x_t``.

    ``input_scale = R dt`` (IF) or ``R dt / tau`` (LIF), 1 for files we wrote. ``v_leak`` and ``v_reset``
    must be 0; the reset mode comes from the metadata (default ``zero``, NIR's own meaning). A node that
    fires at ``v > threshold`` (metadata ``fires``; NIR's own rule when absent) gets the next float32 above
    its threshold, so our ``h >= th'`` equals ``h > th`` for float32 membranes.
    """
    nir = require_nir()
    reset, strict = firing_rules(node)
    if not np.allclose(np.asarray(node.v_reset), 0.0):
        raise ConfigError("NIR import: only v_reset = 0 is supported")
    th = _threshold(node, strict)
    quant = state_quant_of(node)
    if isinstance(node, nir.IF):
        return NeuronParams(decay=1.0, threshold=th, reset=reset, state_quant=quant), _uniform("r", node.r) * dt
    if not np.allclose(np.asarray(node.v_leak), 0.0):
        raise ConfigError("NIR import: only v_leak = 0 is supported")
    tau = _uniform("tau", node.tau)
    if not tau > dt:
        raise ConfigError(f"NIR import: tau = {tau} must exceed dt = {dt} (decay 1 - dt/tau in (0, 1))")
    decay = 1.0 - dt / tau
    return NeuronParams(decay=decay, threshold=th, reset=reset, state_quant=quant), _uniform("r", node.r) * dt / tau


def synaptic_params(node, dt: float) -> tuple[NeuronParams, float, float]:
    """``(params, syn_decay, input_scale)`` of a rate-coded ``CubaLIF`` node read under forward Euler over ``dt``
    (``synaptic_node``): ``alpha = 1 - dt/tau_syn``, ``k = 1 - dt/tau_mem``, and our neuron sees
    ``input_scale * x_t`` with ``input_scale = (w_in dt / tau_syn) (r dt / tau_mem)`` (1 for files we wrote).
    ``v_leak`` and ``v_reset`` must be 0 and both time constants at least ``dt``; reset and firing rule as for
    ``node_params``."""
    reset, strict = firing_rules(node)
    if not (np.allclose(np.asarray(node.v_reset), 0.0) and np.allclose(np.asarray(node.v_leak), 0.0)):
        raise ConfigError("NIR import: a CubaLIF node needs v_leak = 0 and v_reset = 0")
    th = _threshold(node, strict)
    tau_syn, tau_mem = _uniform("tau_syn", node.tau_syn), _uniform("tau_mem", node.tau_mem)
    if not (tau_syn >= dt and tau_mem > dt):
        raise ConfigError(f"NIR import: CubaLIF needs tau_syn >= dt and tau_mem > dt (dt = {dt}), got tau_syn = "
                          f"{tau_syn} and tau_mem = {tau_mem}")
    scale = _uniform("w_in", node.w_in) * dt / tau_syn * _uniform("r", node.r) * dt / tau_mem
    params = NeuronParams(decay=1.0 - dt / tau_mem, threshold=th, reset=reset, state_quant=state_quant_of(node))
    return params, 1.0 - dt / tau_syn, scale

"""The competitive STDP network of Diehl & Cook (2015), one presentation: loops compiled by numba (``core.jit``).

One presentation simulates ``S`` steps of ``dt`` ms of a layer of ``N`` excitatory neurons driven by ``I`` Poisson
inputs, each excitatory neuron ``j`` paired with an inhibitory neuron ``j`` that, when it fires, inhibits every
excitatory neuron but ``j`` (lateral inhibition: a soft winner-take-all). Neurons are conductance-based leaky
integrate-and-fire; potentials in mV, times in ms, conductances in units of the leak conductance. Every state
starts at rest (``v = v_rest``, conductances and traces 0); the threshold offsets ``theta`` and the weights carry
over from presentation to presentation. Per step, in this order:

1. Integrate, a neuron in its refractory period held at its reset potential. With the step's conductances held,
   ``tau_v dv/dt = (v_rest - v) + g_e (E_e - v) + g_i (E_i - v)`` is linear in ``v`` and relaxes to ``v_inf`` at the
   rate ``(1 + g_e + g_i) / tau_v`` (exponential Euler: stable for any conductance, where forward Euler overshoots
   once ``dt (1 + g_e + g_i) / tau_v > 2``, as a burst of inhibition does, and sends potentials to thousands of mV):

       v_inf = (v_rest + g_e E_e + g_i E_i) / (1 + g_e + g_i)
       v  <- v_inf + (v - v_inf) exp(-dt (1 + g_e + g_i) / tau_v)

   The conductances decay by forward Euler steps, as the authors' simulator (Brian 1) integrates them: a spike of
   weight w then adds ``sum_k w (1 - dt/tau)^k dt = w tau`` of conductance-time, the continuous model's charge (exact
   exponentials at dt = 0.5 ms would give ``w dt / (1 - exp(-dt/tau)) = 1.27 w tau`` for tau = 1 ms); the traces and
   ``theta`` decay exactly (``theta``'s ``dt / tau_theta`` is 5e-8):

       g_e <- g_e (1 - dt / tau_ge),  g_i <- g_i (1 - dt / tau_gi)
       x_pre <- x_pre exp(-dt / tau_pre),  x_post1 <- ..., x_post2 <- ...  (learning only)
       theta <- theta exp(-dt / tau_theta)                                  (learning only)

2. Fire: an excitatory neuron not refractory fires when ``v > v_thresh + theta - theta_offset`` (the adaptive
   threshold: ``theta += theta_plus`` at each spike while learning); an inhibitory one when ``v > v_thresh``. A
   neuron that fires is reset and refractory for the next ``refractory / dt`` steps (held at reset, no spike).
3. Deliver this step's spikes to the conductances: input ``i`` adds ``W[i, j]`` to excitatory ``j``'s ``g_e``
   after its synaptic delay of ``D[i, j]`` steps (it acts from step ``t + 1 + D[i, j]`` on; Diehl & Cook draw the
   delays uniformly from 0-10 ms, which keeps neurons with the same input from firing in lockstep); excitatory ``j``
   adds ``w_ei`` to inhibitory ``j``'s ``g_e`` and inhibitory ``j`` adds ``w_ie`` to the excitatory ``g_i`` of every
   neuron but ``j``, both from the next step on.
4. Learn (input -> excitatory weights only, Diehl & Cook's rule with a presynaptic and two postsynaptic traces,
   traces set to 1 at a spike; inputs first, then excitatory spikes; an input's trace and depression at the step it
   fires, not after its delays):

       input i fires:        x_pre[i] = 1;   W[i, :] <- clip(W[i, :] - nu_pre x_post1, 0, w_max)
       excitatory j fires:   W[:, j] <- min(W[:, j] + nu_post x_pre x_post2[j], w_max)   (x_post2 before the spike)
                             x_post1[j] = 1, x_post2[j] = 1

Shapes: ``W [I, N]`` float64 (updated in place while learning), ``theta [N]`` float64 (in place while learning),
``D [I, N]`` uint8 delays in steps, ``spikes [S, I]`` uint8 input raster, ``counts [2, N]`` int64 spikes of the
presentation (row 0: excitatory neuron ``j``, row 1: its inhibitory partner). Batched evaluation (``present_batch``)
runs samples ``[B, S, I]`` in parallel with learning off.

The input rasters (``poisson_rasters``): input ``i`` of a sample spikes at each step with probability ``p_i``,
independently, which is the same as drawing the gaps between its spikes from the geometric law
``P(G = g) = (1 - p_i)^(g - 1) p_i``, ``G = floor(ln U / ln(1 - p_i)) + 1`` for ``U`` uniform in (0, 1]: one draw per
spike instead of one per step and input (a Fashion-MNIST show at 63.75 Hz: about 4,000 draws, not 548,800). Each
sample has its own stream (splitmix64 from a seed the caller draws), so the rasters do not depend on the threads.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from deepspike.core.jit import njit, prange


class WtaConstants(NamedTuple):
    """The network's constants as the kernels take them (ms, mV, leak-conductance units); ``layers.wta_stdp`` fills
    them from ``WtaParams``."""

    dt: float
    exc_tau: float
    exc_rest: float
    exc_reset: float
    exc_thresh: float
    exc_e_exc: float
    exc_e_inh: float
    exc_refractory_steps: float
    inh_tau: float
    inh_rest: float
    inh_reset: float
    inh_thresh: float
    inh_e_exc: float
    inh_refractory_steps: float
    tau_ge: float
    tau_gi: float
    w_ei: float
    w_ie: float
    theta_plus: float
    theta_offset: float
    tau_theta: float
    tau_pre: float
    tau_post1: float
    tau_post2: float
    nu_pre: float
    nu_post: float
    w_max: float


_FLAGS = dict(cache=True, error_model="numpy")


@njit(**_FLAGS)
def _integrate(v, ge, gi, refractory, tau, rest, reset, e_exc, e_inh, decay_ge, decay_gi, dt):
    """Step 1 for one population (``[N]`` arrays, in place): exponential-Euler membrane step (held at ``reset`` while
    ``refractory > 0``), Euler conductance decay (``decay_g = 1 - dt / tau_g``)."""
    for j in range(v.shape[0]):
        if refractory[j] > 0:
            v[j] = reset
        else:
            total = 1.0 + ge[j] + gi[j]
            v_inf = (rest + ge[j] * e_exc + gi[j] * e_inh) / total
            v[j] = v_inf + (v[j] - v_inf) * math.exp(-dt * total / tau)
        ge[j] *= decay_ge
        gi[j] *= decay_gi


@njit(**_FLAGS)
def _learn_from_inputs(w, row_spikes, x_pre, x_post1, nu_pre, w_max):
    """Step 4, inputs: ``x_pre[i] = 1`` and depression ``W[i, :] -= nu_pre x_post1`` per input spike, clipped to
    ``[0, w_max]`` (normalisation may have scaled a weight past ``w_max``; Brian's STDP clips after every update)."""
    for i in range(row_spikes.shape[0]):
        if row_spikes[i]:
            x_pre[i] = 1.0
            for j in range(w.shape[1]):
                value = w[i, j] - nu_pre * x_post1[j]
                w[i, j] = min(max(value, 0.0), w_max)


@njit(**_FLAGS)
def _learn_from_spike(w, j, x_pre, x_post1, x_post2, nu_post, w_max):
    """Step 4, excitatory neuron ``j`` fired: potentiation ``W[:, j] += nu_post x_pre x_post2[j]`` (capped at
    ``w_max``, with ``x_post2`` before the spike), then both postsynaptic traces of ``j`` set to 1."""
    gain = nu_post * x_post2[j]
    for i in range(w.shape[0]):
        value = w[i, j] + gain * x_pre[i]
        w[i, j] = value if value < w_max else w_max
    x_post1[j] = 1.0
    x_post2[j] = 1.0


@njit(**_FLAGS)
def _deliver(w, delays, t, row_spikes, exc_fired, inh_fired, exc_ge, arriving, exc_gi, inh_ge, w_ei, w_ie):
    """Step 3: this step's spikes into the conductances (inputs -> excitatory g_e through the ring ``arriving
    [R, N]`` of delayed increments, R a power of two, slot ``(t + D) & (R - 1)``: a mask, not a division, in the
    innermost loop; excitatory j -> inhibitory j; inhibitory j -> the excitatory g_i of all but j); then slot
    ``t & (R - 1)`` arrives in ``g_e`` and is cleared."""
    n, mask = exc_ge.shape[0], arriving.shape[0] - 1
    for i in range(row_spikes.shape[0]):
        if row_spikes[i]:
            for j in range(n):
                arriving[(t + delays[i, j]) & mask, j] += w[i, j]
    now = t & mask
    for j in range(n):
        exc_ge[j] += arriving[now, j]
        arriving[now, j] = 0.0
    inhibition = 0.0
    for j in range(n):
        if exc_fired[j]:
            inh_ge[j] += w_ei
        if inh_fired[j]:
            inhibition += w_ie
    for j in range(n):
        exc_gi[j] += inhibition - (w_ie if inh_fired[j] else 0.0)


@njit(**_FLAGS)
def present(w, theta, delays, spikes, learn, c):
    """One presentation of the raster ``spikes [S, I]`` (module docstring); returns ``counts [2, N]`` int64
    (excitatory, inhibitory). With ``learn`` the weights ``w [I, N]`` and thresholds ``theta [N]`` change in place."""
    n_in, n = w.shape
    ring = 1
    while ring <= (delays.max() if delays.size else 0):  # a power of two above the longest delay
        ring *= 2
    arriving = np.zeros((ring, n))
    exc_v, inh_v = np.full(n, c.exc_rest), np.full(n, c.inh_rest)
    exc_ge, exc_gi, inh_ge, inh_gi = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    exc_ref, inh_ref = np.zeros(n, np.int64), np.zeros(n, np.int64)
    exc_fired, inh_fired = np.zeros(n, np.bool_), np.zeros(n, np.bool_)
    x_pre, x_post1, x_post2 = np.zeros(n_in), np.zeros(n), np.zeros(n)
    counts = np.zeros((2, n), np.int64)
    decay_ge, decay_gi = 1.0 - c.dt / c.tau_ge, 1.0 - c.dt / c.tau_gi  # Euler, as Brian 1 (module docstring)
    decay_pre, decay_post1 = math.exp(-c.dt / c.tau_pre), math.exp(-c.dt / c.tau_post1)
    decay_post2, decay_theta = math.exp(-c.dt / c.tau_post2), math.exp(-c.dt / c.tau_theta)
    exc_hold, inh_hold = int(c.exc_refractory_steps), int(c.inh_refractory_steps)
    for t in range(spikes.shape[0]):
        _integrate(exc_v, exc_ge, exc_gi, exc_ref, c.exc_tau, c.exc_rest, c.exc_reset, c.exc_e_exc, c.exc_e_inh,
                   decay_ge, decay_gi, c.dt)
        _integrate(inh_v, inh_ge, inh_gi, inh_ref, c.inh_tau, c.inh_rest, c.inh_reset, c.inh_e_exc, 0.0,
                   decay_ge, decay_gi, c.dt)
        if learn:
            x_pre *= decay_pre
            x_post1 *= decay_post1
            x_post2 *= decay_post2
            theta *= decay_theta
        for j in range(n):  # a refractory neuron counts its step down instead of firing
            exc_fired[j] = exc_ref[j] == 0 and exc_v[j] > c.exc_thresh + theta[j] - c.theta_offset
            inh_fired[j] = inh_ref[j] == 0 and inh_v[j] > c.inh_thresh
            exc_ref[j] -= exc_ref[j] > 0
            inh_ref[j] -= inh_ref[j] > 0
            if exc_fired[j]:
                exc_v[j], exc_ref[j] = c.exc_reset, exc_hold
                counts[0, j] += 1
                if learn:
                    theta[j] += c.theta_plus
            if inh_fired[j]:
                inh_v[j], inh_ref[j] = c.inh_reset, inh_hold
                counts[1, j] += 1
        _deliver(w, delays, t, spikes[t], exc_fired, inh_fired, exc_ge, arriving, exc_gi, inh_ge, c.w_ei, c.w_ie)
        if learn:
            _learn_from_inputs(w, spikes[t], x_pre, x_post1, c.nu_pre, c.w_max)
            for j in range(n):
                if exc_fired[j]:
                    _learn_from_spike(w, j, x_pre, x_post1, x_post2, c.nu_post, c.w_max)
    return counts


@njit(parallel=True, **_FLAGS)
def present_batch(w, theta, delays, spikes, c):
    """``present`` of every sample of ``spikes [B, S, I]`` with learning off, in parallel: ``counts [B, 2, N]``."""
    counts = np.zeros((spikes.shape[0], 2, w.shape[1]), np.int64)
    for b in prange(spikes.shape[0]):
        counts[b] = present(w, theta, delays, spikes[b], False, c)
    return counts


_GOLDEN, _MIX1, _MIX2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


@njit(**_FLAGS)
def _uniform(state):
    """One splitmix64 step: ``(next state, u)``, ``u = (z >> 11 + 1) 2^-53`` uniform in (0, 1] (``state`` uint64)."""
    state = state + _GOLDEN
    z = (state ^ (state >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    z = z ^ (z >> _S31)
    return state, (float(z >> _S11) + 1.0) * 2.0 ** -53


@njit(parallel=True, **_FLAGS)
def poisson_rasters(probability, steps, seeds):
    """Rasters ``[B, S, I]`` uint8 (``S = steps``) of spike probabilities per step ``probability [B, I]`` (float64 in
    [0, 1]), sample ``b`` drawn from the stream of ``seeds[b]`` (uint64) by geometric gaps (module docstring)."""
    batch, n = probability.shape
    out = np.zeros((batch, steps, n), np.uint8)
    for b in prange(batch):
        state = seeds[b]
        for i in range(n):
            p = probability[b, i]
            if p >= 1.0:
                out[b, :, i] = 1
            elif p > 0.0:
                log_q, t = math.log1p(-p), -1
                while True:
                    state, u = _uniform(state)
                    skipped = math.log(u) / log_q  # G - 1 before the floor; compared as a float, since for a tiny p
                    if skipped >= steps - 1 - t:  # it passes int64 (int() wrapped to a negative step: stray writes)
                        break
                    t += 1 + int(skipped)
                    out[b, t, i] = 1
    return out


@njit(**_FLAGS)
def normalise_columns(w, total):
    """Scale every column of ``w [I, N]`` in place to sum to ``total`` (a column summing to 0 is left)."""
    for j in range(w.shape[1]):
        s = 0.0
        for i in range(w.shape[0]):
            s += w[i, j]
        if s > 0.0:
            for i in range(w.shape[0]):
                w[i, j] *= total / s

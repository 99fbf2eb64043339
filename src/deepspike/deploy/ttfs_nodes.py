"""NIR neuron nodes of the closed-form TTFS neurons (zhou2021 exp kernel, zhang2021 ReL-PSP) that fire once.

NIR 1.0.8 ``CubaLIF``, for an input ``S(t) = sum_i w_i delta(t - t_i)`` (a Linear/Conv2d of Dirac spikes)::

    tau_syn dI/dt = -I + w_in S            (a spike of weight w makes I jump by w_in w / tau_syn)
    tau_mem dV/dt = (v_leak - V) + r I     (fires when V > v_threshold, then V = v_reset)

We set ``w_in = tau_syn`` (I jumps by w: I is the summed synaptic weight) and ``v_leak = 0``; then

* exp kernel (zhou2021, ``V(t) = sum_i w_i (1 - exp(-(t - t_i)/tau))``): ``tau_syn = tau``,
  ``tau_mem = large * tau``, ``r = tau_mem / tau``: ``dV/dt = I/tau - V/tau_mem`` with
  ``I = sum_i w_i exp(-(t - t_i)/tau)``, the ideal ``dV/dt = I/tau`` up to the leak ``-V/tau_mem``;
* ReL-PSP (zhang2021, ``V(t) = sum_i w_i (t - t_i)_+``): ``tau_syn = tau_mem = large * tau``,
  ``r = tau_mem``: ``dV/dt = I - V/tau_mem`` with ``I = sum_i w_i exp(-(t - t_i)/tau_syn)``, the ideal
  ``dV/dt = sum_i w_i`` up to the two large time constants.

Leak error (nonnegative weights, t <= T): ``V_nir(t) >= kappa^-1 V_ideal(t)`` and ``V_nir <= V_ideal``, with
``kappa = exp(T / tau_mem)`` (exp) or ``exp(2 T / tau_mem)`` (ReL-PSP): a NIR neuron fires no earlier than
the ideal neuron with threshold theta and no later than the ideal one with threshold ``kappa * theta``.
With the default ``large = 1e6`` and ``T <= 100 tau``, ``kappa - 1 <= 2e-4``. Every value is finite.

Fire once: NIR cannot say it, so ``v_reset = -R`` is made so large that a neuron cannot climb back to
theta within ``t_window``. After a reset at ``t_f`` and for ``t <= t_window``,
``V(t) <= -R exp(-t_window/tau_mem) + (r/tau_mem) int_{t_f}^t |I| ds <= -R exp(-t_window/tau_mem) + G``
with ``G = A`` (exp: ``(1/tau) int |w| e^{-s/tau} ds <= |w|`` per input) or ``G = A t_window`` (ReL-PSP:
``|I| <= A``), where ``A = max_j sum_i |w_ji|`` (the bias spike included) is the layer's largest absolute
drive. ``R = 2 (theta + G) exp(t_window / tau_mem)`` gives ``V(t) <= -2 theta - G < theta``.
"""

from __future__ import annotations

import math

import numpy as np

from deepspike.core.errors import ConfigError
from deepspike.core.options import FLOAT32_MAX  # the file's fields are float32
from deepspike.deploy.deps import require_nir

DEFAULT_LARGE = 1e6  # tau_mem (and ReL-PSP's tau_syn) = DEFAULT_LARGE * tau
DEFAULT_T_WINDOW = 100.0  # model time units in which "fire once" is guaranteed
MAX_EXPONENT = 700.0  # exp(700) ~ 1e304: below float64's largest value with room for the factors around it


def time_constants(kernel: str, tau: float, large: float) -> tuple[float, float]:
    """``(tau_syn, tau_mem)`` of a TTFS neuron: exp ``(tau, large tau)``, relpsp ``(large tau, large tau)``."""
    if not (math.isfinite(large) and large > 1):
        raise ConfigError(f"NIR TTFS export: large = {large} must be finite and > 1 (tau_mem = large * tau)")
    return (tau if kernel == "exp" else large * tau), large * tau


def leak_factor(kernel: str, tau: float, large: float, t_end: float) -> float:
    """``kappa``: the NIR neuron fires no later than the ideal neuron with threshold ``kappa * theta``.

    ``kappa = exp(t_end / tau_mem)`` (exp) or ``exp(2 t_end / tau_mem)`` (relpsp; see module docstring).
    """
    _, tau_mem = time_constants(kernel, tau, large)
    return _growth((1.0 if kernel == "exp" else 2.0) * t_end / tau_mem)


def _growth(exponent: float) -> float:
    """``exp(exponent)``, or a one-line ``ConfigError`` where it is past float64 (a window of thousands of membrane
    time constants: an OverflowError traceback before)."""
    if exponent > MAX_EXPONENT:
        raise ConfigError(f"NIR TTFS export: t_window / tau_mem = {exponent:.4g} makes exp() overflow; take a smaller "
                          f"--t-window or a larger --large (tau_mem = large * tau)")
    return math.exp(exponent)


def reset_potential(kernel: str, theta: float, tau: float, drive: float, large: float, t_window: float) -> float:
    """``v_reset = -2 (theta + G) exp(t_window/tau_mem)``, ``G = drive`` (exp) or ``drive * t_window`` (relpsp).

    drive: the layer's largest ``sum_i |w_ji|`` (bias included). See the module docstring for the bound.
    """
    if not (math.isfinite(t_window) and t_window > 0):
        raise ConfigError(f"NIR TTFS export: t_window = {t_window} must be finite and > 0")
    _, tau_mem = time_constants(kernel, tau, large)
    gain = drive if kernel == "exp" else drive * t_window
    return -2.0 * (theta + gain) * _growth(t_window / tau_mem)


def _check_float32(values: dict[str, float]) -> None:
    """A one-line ``ConfigError`` where a neuron constant is past float32's largest value (``--large 1e300`` wrote
    ``tau_mem = inf`` after numpy's overflow warning, and the writer then named only the non-finite field)."""
    for name, value in values.items():
        if not abs(value) <= FLOAT32_MAX:
            raise ConfigError(f"NIR TTFS export: {name} = {value:.4g} is past float32's largest value (the file's "
                              "dtype); take a smaller --large or --t-window")


def ttfs_neuron_node(kernel: str, theta: float, tau: float, shape: tuple[int, ...], drive: float,
                     large: float = DEFAULT_LARGE, t_window: float = DEFAULT_T_WINDOW, role: str = "neurons"):
    """The ``nir.CubaLIF`` of a layer of fire-once TTFS neurons of ``shape`` (parameters: module docstring)."""
    nir = require_nir()
    tau_syn, tau_mem = time_constants(kernel, tau, large)
    ones = np.ones(shape, dtype=np.float32)
    r = tau_mem / tau if kernel == "exp" else tau_mem
    v_reset = reset_potential(kernel, theta, tau, drive, large, t_window)
    _check_float32({"tau_syn": tau_syn, "tau_mem": tau_mem, "r": r, "v_reset": v_reset})
    meta = {"kernel": kernel, "tau": float(tau), "theta": float(theta), "fire_once": True, "role": role,
            "t_window": float(t_window)}
    return nir.CubaLIF(tau_syn=ones * tau_syn, tau_mem=ones * tau_mem, r=ones * r, v_leak=0 * ones,
                       v_threshold=ones * theta, v_reset=ones * v_reset, w_in=ones * tau_syn, metadata=meta)


def earliest_spike_node(shape: tuple[int, ...], window: int):
    """``nir.IF`` after a ``SumPool2d``: fires at the earliest spike of its window, and only then.

    ``dV/dt = r I`` with ``r = 1``: each input spike (a Dirac of area 1) raises V by 1 > ``v_threshold = 0.5``,
    so the first spike of the window fires the neuron at once (exact in continuous time). After the
    reset to ``-(window + 1)`` the at most ``window - 1`` later spikes leave ``V <= -2 < 0.5``.
    """
    nir = require_nir()
    ones = np.ones(shape, dtype=np.float32)
    meta = {"fire_once": True, "role": "earliest_spike_pool"}
    return nir.IF(r=ones, v_threshold=0.5 * ones, v_reset=-(window + 1.0) * ones, metadata=meta)

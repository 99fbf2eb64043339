"""Decoders: output time series ``[T, B, K]`` (or spike times ``[B, K]``) -> per-class scores ``[B, K]``.

The time axis is always the first: ``spike_count``, ``mean_membrane`` and ``first_spike_time`` take exactly
``[T, B, K]`` and refuse other shapes, whose first axis may be the batch (``[B, K]``, ``[B, C, H, W]``)."""

from __future__ import annotations

import math

import torch

from deepspike.coding.latency import check_time_step
from deepspike.core.errors import ConfigError
from deepspike.core.options import is_finite, is_whole
from deepspike.core.precision import at_least_float32


def _shape(x: object) -> str:
    """``x``'s shape as a list, or its type's name when it is no tensor (a NumPy array was an AttributeError)."""
    return str(list(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__


REDUCE_TIME = "reduce its first axis (x.sum(0), x.mean(0))"
"""What to do with a time-first map ``[T, B, ...]`` instead of ``spike_count`` / ``mean_membrane``."""


def _check_outputs(x: torch.Tensor, who: str, what: str, remedy: str = REDUCE_TIME) -> None:
    """A one-line ``ConfigError`` unless ``x`` is an output layer's time series ``[T, B, K]``, three axes (time first):
    the decoders reduce axis 0, so counts ``[B, K]`` were summed over the batch, and a 4-D ``[B, C, H, W]`` map
    too, which no shape tells from a time-first ``[T, B, C, L]``; ``remedy`` says what to do with a time-first map
    ``[T, B, ...]``."""
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        raise ConfigError(f"{who} needs {what} [T, B, K] (time first, 3 axes); got {_shape(x)}: for a time-first map "
                          f"[T, B, ...] {remedy}")


def spike_count(s: torch.Tensor) -> torch.Tensor:
    """``n_k = sum_t s_t,k``: an output layer's spikes ``[T, B, K]`` -> counts ``[B, K]``: float32 for bfloat16 /
    float16 spikes (whose dtype holds whole numbers exactly only up to 256 / 2048: 301 bfloat16 spikes counted 300,
    tied with 300), else ``s``'s float dtype (int64 for integer or bool spikes, as ``torch.sum``). Any other number
    of axes is a ``ConfigError`` (``_check_outputs``: counts ``[B, K]`` and maps ``[B, C, H, W]`` were summed over
    the batch)."""
    _check_outputs(s, "spike_count", "spikes")
    return s.sum(dim=0, dtype=at_least_float32(s.dtype) if s.is_floating_point() else None)


def mean_membrane(v: torch.Tensor) -> torch.Tensor:
    """``(1/T) sum_t v_t``: an output layer's membrane trace ``[T, B, K]`` -> ``[B, K]``; any other number of axes is a
    ``ConfigError``, as for ``spike_count`` (a trace ``[B, K]`` was averaged over the batch)."""
    _check_outputs(v, "mean_membrane", "a membrane trace")
    return v.mean(dim=0)


def final_membrane_rate(v_T: torch.Tensor, T: int, threshold: float = 1.0) -> torch.Tensor:
    """lee2020's output ``V(T) / (threshold * T)``: final membrane ``[B, K]`` -> ``[B, K]``; other shapes are a
    ``ConfigError`` (a whole trace ``[T, B, K]`` came back as ``[T, B, K]`` 'scores', a NumPy array as an array)."""
    if not isinstance(v_T, torch.Tensor) or v_T.dim() != 2:
        raise ConfigError(f"final_membrane_rate needs the final membrane V(T) [B, K] as a torch.Tensor; got "
                          f"{_shape(v_T)}: for a trace [T, B, K] pass its last step v[-1]")
    if not is_whole(T, 1) or not (is_finite(threshold) and threshold > 0):
        raise ConfigError(f"final_membrane_rate needs a whole T >= 1 and a finite threshold > 0; got T={T!r}, "
                          f"threshold={threshold!r}")
    return v_T / (threshold * T)


def vote(rates: torch.Tensor, num_classes: int) -> torch.Tensor:
    """wu2019's voting layer: class ``k`` scores the mean of its group of ``G`` output neurons.

    rates ``[B, K*G]`` -> ``[B, K]``; class ``k`` owns the contiguous neurons ``k*G .. (k+1)*G - 1``, ``G >= 1``
    (no output neuron at all, ``G = 0``, is a ``ConfigError``: each class scored the mean of nothing, NaN).
    """
    if not isinstance(rates, torch.Tensor):
        raise ConfigError(f"vote needs rates [B, K*G] as a torch.Tensor; got {_shape(rates)}")
    width = rates.shape[-1]
    if not is_whole(num_classes, 1) or width % num_classes or width == 0:
        raise ConfigError(
            f"vote: {width} output neurons cannot be split into {num_classes} equal class groups"
        )
    groups = rates.reshape(*rates.shape[:-1], num_classes, width // num_classes)  # [B, K*G] -> [B, K, G]
    return groups.mean(dim=-1)  # [B, K, G] -> [B, K]


def first_spike_time(s: torch.Tensor, dt: float = 1.0) -> torch.Tensor:
    """Time of each neuron's first spike, ``dt * min{n : s_n != 0}``; ``+inf`` where it never fires.

    s: ``[T, B, K]`` -> ``[B, K]`` in ``s``'s dtype promoted with float32 (float32 for integer, bool, bfloat16 and
    float16 input, whose times bfloat16 / float16 cannot hold: step 299 of a bfloat16 train came out as time 300, past
    its 300-step window, and step 257 as 256). Inverse of ``latency_spike_train`` (times ``[B, K]``) up to the
    ``floor(t/dt)`` quantisation. Any other number of axes is a ``ConfigError`` (``_check_outputs``: spikes ``[B, K]``
    without a time axis gave each neuron the index of the first sample that fired as its time). ``dt``: a finite
    number > 0 (``ConfigError``). A train of no steps (``T = 0``) has no spike: all ``+inf``.
    """
    check_time_step(dt)
    _check_outputs(s, "first_spike_time", "spikes",
                   "pass s.flatten(2) and reshape the times [B, K] it gives to [B, ...]")
    dtype = at_least_float32(s.dtype) if s.dtype.is_floating_point else torch.float32
    if s.shape[0] == 0:  # argmax over no steps raised IndexError
        return torch.full(s.shape[1:], math.inf, dtype=dtype, device=s.device)
    fired = s != 0  # [T, B, K]
    first = fired.to(torch.uint8).argmax(dim=0)  # index of the first maximum = first spike (0 if none)
    t = first.to(dtype) * dt
    return torch.where(fired.any(dim=0), t, torch.full_like(t, math.inf))


def check_time_values(t: torch.Tensor, what: str) -> None:
    """No NaN or -inf among the spike times ``t`` (+inf = no spike), in one pass (NaN propagates into the
    minimum); else a one-line ``ConfigError``. The TTFS layers' scan (``ttfs._validate``) too."""
    if t.numel() and not bool(t.min() > -math.inf):
        raise ConfigError(f"{what}: spike times contain NaN or -inf; use +inf for 'no spike'")


def first_spike_class(times: torch.Tensor, no_spike_class: int = -1) -> torch.Tensor:
    """Predicted class = the output neuron that fires first: ``argmin_k t_k``.

    times ``[B, K]`` -> ``[B]`` (int64). Ties go to the lowest index. Rows where no neuron fires (all
    ``+inf``) get ``no_spike_class`` (default -1, which never equals a label, so it counts as wrong).
    A NaN or -inf time, no output neuron at all, or times not ``[B, K]`` (1-D times gave one scalar class; a NumPy
    array an AttributeError) is a ``ConfigError`` (argmin would pick the NaN).
    """
    if not isinstance(times, torch.Tensor) or times.dim() != 2:
        shape = "shape " * isinstance(times, torch.Tensor)
        raise ConfigError(f"first_spike_class needs spike times [B, K]; got {shape}{_shape(times)}")
    if times.shape[-1] == 0:
        raise ConfigError(f"first_spike_class: times {list(times.shape)} have no output neuron")
    check_time_values(times, "first_spike_class")
    pred = times.argmin(dim=-1)  # argmin returns the first of equal minima: ties -> lowest index
    silent = torch.isposinf(times).all(dim=-1)  # [B]
    return torch.where(silent, torch.full_like(pred, no_spike_class), pred)

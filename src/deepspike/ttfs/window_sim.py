"""Event-driven simulation of windowed ReL-PSP networks (``ttfs.window``): the reference for the closed form.

A network is a list of populations, each with its spike times (absolute, ``[B, N_p]``, ``+inf`` = none):
populations 0 and 1 are the input's positive and negative halves (window ``[0, T_0]``); every later one is a
``NeuronStage`` (neurons with synapses from earlier populations, each synapse group with a delay) or a
``RelayStage`` (max pooling: the earliest spike of each region passes on, no neuron).

A neuron stage integrates its input events in time order, the way the neuron equation says: the current
(slope of ``V``) steps by ``w_ji`` at each arrival ``t_i + delay``, ``V`` grows linearly in between, and at
``t_min`` the input currents stop and the ramp ``alpha`` starts; the bias is a spike at the start of the
preceding window with weight ``b / T_prev``. The neuron fires at ``t_min`` if ``V(t_min) >= alpha T``, else
when the ramp brings ``V`` to ``alpha T`` before ``t_max`` (reaching it exactly at ``t_max`` means ``a = 0``:
no spike). No value decoding is used: the closed form's ``x = T - tau`` is what this checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from deepspike.core.errors import ConfigError


@dataclass
class Synapses:
    """Weights ``[M, N_source]`` from population ``source`` to a stage's ``M`` neurons; spikes arrive ``delay``
    after they are emitted."""

    source: int
    weight: torch.Tensor
    delay: float = 0.0


@dataclass
class NeuronStage:
    """Windowed neurons: window ``[t_min, t_min + window]`` with ``t_min`` the latest source window's end
    (after delays); ``fires=False`` for the output layer, whose potentials at ``t_min`` are read out."""

    synapses: list[Synapses]
    bias: torch.Tensor
    window: float
    alpha: float = 1.0
    fires: bool = True


@dataclass
class RelayStage:
    """Max pooling as a relay: ``pool`` maps source times ``[B, N]`` to the earliest time of each region."""

    source: int
    pool: Callable[[torch.Tensor], torch.Tensor] = field(repr=False)


@dataclass
class SimResult:
    """Spike times per population (``[B, N_p]``, absolute), each population's window ``(t_min, t_max)``, and
    the output stage's potentials at its window start ``[B, K]``."""

    times: list[torch.Tensor]
    windows: list[tuple[float, float]]
    potentials: torch.Tensor


def simulate(stages: list[NeuronStage | RelayStage], input_times: torch.Tensor, input_window: float) -> SimResult:
    """Run ``stages`` on the input spike times ``[2, B, N_0]`` (positive and negative halves) in window
    ``[0, T_0]``; the last stage must be the output (``fires=False``)."""
    _check_arguments(stages, input_times, input_window)
    times = [input_times[0], input_times[1]]
    windows = [(0.0, input_window), (0.0, input_window)]
    potentials = None
    for stage in stages:
        if isinstance(stage, RelayStage):
            times.append(stage.pool(times[stage.source]))
            windows.append(windows[stage.source])
            continue
        t_min = max(windows[s.source][1] + s.delay for s in stage.synapses)
        direct = max(stage.synapses, key=lambda s: windows[s.source][1] + s.delay)
        previous_window = t_min - (windows[direct.source][0] + direct.delay)
        v = _potential_at(stage, times, t_min, previous_window)
        if not stage.fires:
            potentials = v
            break
        times.append(_fire(v, t_min, stage.window, stage.alpha))
        windows.append((t_min, t_min + stage.window))
    if potentials is None:
        raise ConfigError("simulate: the last stage must be the output stage (fires=False)")
    return SimResult(times, windows, potentials)


def _check_arguments(stages: list[NeuronStage | RelayStage], input_times: torch.Tensor, input_window: float) -> None:
    """``ConfigError`` unless the input window is a finite number > 0, the input times ``[2, B, N_0]`` hold no NaN
    or -inf (+inf: no spike), and every neuron stage has a finite window and ramp ``alpha`` > 0, finite delays
    >= 0 and finite weights and bias (a window of 0 gave NaN potentials, a NaN input time was taken as silent)."""
    if not (math.isfinite(input_window) and input_window > 0):
        raise ConfigError(f"simulate: the input window must be a finite number > 0, got {input_window!r}")
    if input_times.dim() != 3 or input_times.shape[0] != 2:
        raise ConfigError(f"simulate: input times must be [2, B, N] (both halves), got {list(input_times.shape)}")
    if input_times.numel() and not bool(input_times.min() > -math.inf):
        raise ConfigError("simulate: input spike times contain NaN or -inf; use +inf for 'no spike'")
    for i, stage in enumerate(stages):
        if isinstance(stage, RelayStage):
            continue
        numbers = (stage.window, stage.alpha, *(s.delay for s in stage.synapses))
        if not (all(math.isfinite(x) for x in numbers) and stage.window > 0 and stage.alpha > 0
                and all(s.delay >= 0 for s in stage.synapses)):
            raise ConfigError(f"simulate: stage {i} needs a finite window and alpha > 0 and delays >= 0, got window "
                              f"{stage.window!r}, alpha {stage.alpha!r}, delays {[s.delay for s in stage.synapses]}")
        if not all(bool(torch.isfinite(x).all()) for x in (stage.bias, *(s.weight for s in stage.synapses))):
            raise ConfigError(f"simulate: stage {i}'s weights or bias contain NaN or inf")


def _potential_at(stage: NeuronStage, times: list[torch.Tensor], t_min: float, previous_window: float) -> torch.Tensor:
    """``V(t_min)`` ``[B, M]`` by integrating the stage's input events in time order (module docstring)."""
    batch = times[0].shape[0]
    arrivals = [times[s.source] + s.delay for s in stage.synapses]
    weights = [s.weight for s in stage.synapses]
    arrivals.append(torch.full((batch, 1), t_min - previous_window, dtype=times[0].dtype))  # the bias spike
    weights.append((stage.bias / previous_window).unsqueeze(1))
    event_times = torch.cat(arrivals, dim=1)  # [B, E]
    event_weights = torch.cat(weights, dim=1)  # [M, E]
    late = torch.isfinite(event_times) & (event_times > t_min * (1 + 1e-9) + 1e-12)
    if bool(late.any()):
        raise ConfigError("simulate: an input spike arrives after the window it feeds has started")
    order = event_times.argsort(dim=1)  # events in time order, silent inputs (+inf) last
    sorted_times = event_times.gather(1, order)
    arrived = torch.isfinite(sorted_times)
    edges = torch.cat([torch.where(arrived, sorted_times, t_min), torch.full((batch, 1), t_min,
                                                                             dtype=sorted_times.dtype)], dim=1)
    durations = edges.diff(dim=1)  # [B, E]: how long the current after each event flows before t_min
    sorted_weights = event_weights[:, order].permute(1, 0, 2)  # [B, M, E]
    currents = (sorted_weights * arrived.unsqueeze(1)).cumsum(dim=2)  # slope of V after each event
    return (currents * durations.unsqueeze(1)).sum(dim=2)


def _fire(v: torch.Tensor, t_min: float, window: float, alpha: float) -> torch.Tensor:
    """Spike times ``[B, M]`` of neurons at ``V(t_min) = v`` under the ramp ``alpha`` with threshold ``alpha T``."""
    threshold = alpha * window
    crossing = t_min + (threshold - v) / alpha
    t = torch.where(v >= threshold, torch.full_like(v, t_min), crossing)
    return torch.where(crossing < t_min + window, t, torch.full_like(v, math.inf))

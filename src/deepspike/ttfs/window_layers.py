"""Modules of a windowed ReL-PSP TTFS network (``ttfs.window``): input coding, neuron layers, readout.

The network passes the values its spikes code (``x = T - tau``, 0 for no spike; ``[B, ...]``) from module to
module, so that convolutions, pooling and residual sums stay ordinary tensor operations; every neuron module
computes its spike offsets by the closed form (``window_offsets``) and hands on what they decode to. With
``record = True`` a module keeps its last offsets (``last_offsets``) for the measures and the event-driven
check (``ttfs.window_sim``).

Window lengths are buffers, ``NaN`` until calibrated: ``calibrating()`` runs the net unclipped and records
each layer's largest potential; ``calibrate(margin)`` sets ``T = margin * max``. A module still uncalibrated
when it first runs in training takes its window from that batch (a data-dependent initialisation); under data
parallelism (``torch.distributed`` initialised) from the whole global batch, the largest value of every rank's part
(one all-reduce), so that every rank takes the window one process would.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_finite
from deepspike.core.spike_tally import ReportsSpikes
from deepspike.ttfs.window import decode_offsets, encode_values, window_offsets


def largest_over_ranks(value: float, device: torch.device) -> float:
    """``value``; under ``torch.distributed`` the largest of every rank's ``value`` (each rank must call it: a
    window taken from the first training batch, whose ranks each see a part, or none of it)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    largest = torch.tensor(value, dtype=torch.float64, device=device)
    dist.all_reduce(largest, op=dist.ReduceOp.MAX)
    return float(largest)


class WindowedLayer(ReportsSpikes, nn.Module):
    """A window length ``T`` (buffer ``window``, NaN until set), its calibration and the offset record."""

    is_window_layer = True

    def __init__(self, window: float | None = None) -> None:
        super().__init__()
        if window is not None and not (is_finite(window) and window > 0):
            raise ConfigError(f"{type(self).__name__}: window must be a finite number > 0 (or None: calibrated "
                              f"later), got {window!r}")
        self.register_buffer("window", torch.tensor(math.nan if window is None else float(window)))
        self._known_calibrated = window is not None  # see ``calibrated``
        self.calibrating = False
        self.observed_max = 0.0
        self.record = False
        self.last_offsets: torch.Tensor | None = None
        self.margin = 1.0  # of a window taken from the first training batch
        self.start = 0.0  # absolute start of the window (set by the network)

    @property
    def calibrated(self) -> bool:
        """Whether the window is set (not NaN). Once it is, that is remembered (``calibrate`` and a window given at
        construction set it, ``load_state_dict`` reads the loaded window again), so that a forward does not read the
        buffer back to Python on every call (one graph break per windowed layer under ``torch.compile``)."""
        if not self._known_calibrated:
            self._known_calibrated = not math.isnan(float(self.window))
        return self._known_calibrated

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._known_calibrated = False  # the loaded window may be NaN (an uncalibrated net's checkpoint)

    def calibrate(self, margin: float = 1.0) -> None:
        """``T = margin * (largest value seen while calibrating)`` (1 when nothing was positive); ``ConfigError``
        when that product is not a positive normal number of the window's dtype (it overflowed to a traceback, or
        rounded to a zero window that codes every value as 0)."""
        window = margin * self.observed_max if self.observed_max > 0 else 1.0
        info = torch.finfo(self.window.dtype)
        if not info.tiny <= window <= info.max:
            raise ConfigError(f"{type(self).__name__}: window = margin {margin:g} x largest value "
                              f"{self.observed_max:.4g} = {window:.4g} is outside {self.window.dtype}'s positive range "
                              f"({info.tiny:.4g} to {info.max:.4g}); choose a margin that keeps it inside")
        self.window.fill_(window)
        self.calibrating, self.observed_max, self._known_calibrated = False, 0.0, True

    def _observe(self, values: torch.Tensor) -> None:
        if values.numel():
            self.observed_max = max(self.observed_max, float(values.detach().max()))

    def _ensure_window(self, values: torch.Tensor) -> None:
        if self.calibrated:
            return
        if not self.training:
            raise ConfigError(f"{type(self).__name__}: window not calibrated; calibrate the network first")
        self._observe(values)
        self.observed_max = largest_over_ranks(self.observed_max, values.device)
        self.calibrate(self.margin)

    def _keep(self, offsets: torch.Tensor) -> None:
        if self.record:
            self.last_offsets = offsets.detach()
        if self.tally is not None:
            self.report_spikes(torch.isfinite(offsets).sum())

    def extra_repr(self) -> str:
        return f"window={float(self.window):.5g}"


class WindowInput(WindowedLayer):
    """Input layer: a signed value ``x`` is coded by two spiking populations, ``x+ = max(x, 0)`` and
    ``x- = max(-x, 0)``, one spike each at offset ``T_0 - |x|`` (none for 0); the first weighted layer sees
    ``x+ - x-`` (its synapses from the ``-`` population carry ``-w``). ``[B, ...]`` -> ``[B, ...]``; values beyond
    ``T_0`` clip. ``last_offsets`` is ``[2, B, ...]`` (positive, negative)."""

    def spike_times_of(self, x: torch.Tensor) -> torch.Tensor:
        """Absolute spike times of both halves for input ``x`` ``[B, C, ...]``: ``[B, 2C, ...]`` (positive first)."""
        window = self.window.to(x.dtype)
        return self.start + torch.cat([encode_values(x.clamp(min=0), window),
                                       encode_values((-x).clamp(min=0), window)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.calibrating:
            self._observe(x.abs())
            return x
        self._ensure_window(x.abs())
        window = self.window.to(x.dtype)
        offsets = torch.stack([encode_values(x.clamp(min=0), window), encode_values((-x).clamp(min=0), window)])
        self._keep(offsets)
        return decode_offsets(offsets[0], window) - decode_offsets(offsets[1], window)


class RampedLayer(WindowedLayer):
    """Neurons driven by the ramp ``alpha`` in their window; ``keep_values`` keeps the last output with its graph
    (``last_values``, for the activity and latency costs). ``is_window_neuron`` tells the activity recorder
    (``layers.neuron_kinds``) to take their spike times from ``spike_times_of(input)``."""

    is_window_neuron = True

    def __init__(self, window: float | None = None, alpha: float = 1.0) -> None:
        super().__init__(window)
        if not (is_finite(alpha) and alpha > 0):
            raise ConfigError(f"{type(self).__name__}: the ramp alpha must be a finite number > 0, got {alpha!r}")
        self.alpha = float(alpha)
        self.keep_values = False
        self.last_values: torch.Tensor | None = None

    def spike_times_of(self, a: torch.Tensor) -> torch.Tensor:
        """Absolute spike times ``start + tau`` ``[B, ...]`` for potentials ``a`` (``+inf`` = no spike)."""
        return self.start + window_offsets(a, self.window.to(a.dtype), self.alpha)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, alpha={self.alpha:g}"


class WindowNeurons(RampedLayer):
    """A layer of windowed ReL-PSP neurons: potentials ``a`` ``[B, ...]`` (the ANN's pre-activations) ->
    the values ``x = T - tau = clip(a / alpha, 0, T)`` their spikes code (``ttfs.window``); the offsets ``tau``
    themselves are computed only when recorded or counted. ``keep_values`` keeps the
    last output with its graph (``last_values``, for activity penalties)."""

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        if self.calibrating:
            self._observe(a / self.alpha)
            return torch.relu(a) / self.alpha
        self._ensure_window(a / self.alpha)
        window = self.window.to(a.dtype)
        if self.record or self.tally is not None:
            self._keep(window_offsets(a.detach(), window, self.alpha))
        # x = T - tau = clip(a / alpha, 0, T) (``ttfs.window``), computed directly: one fused op, same gradient. Both
        # bounds tensors: a float bound made torch read the window as a Python number (a graph break under compile)
        values = torch.clamp(a if self.alpha == 1.0 else a / self.alpha, min=window.new_zeros(()), max=window)
        self.last_values = values if self.keep_values else None
        return values


class WindowReadout(RampedLayer):
    """Output layer: its neurons integrate like the hidden ones and their potentials at the window start are
    the scores (``[B, K]``, the ANN's logits, passed on unchanged). They also fire by the same rule (offset
    ``T - z_k / alpha``, none for ``z_k <= 0``; ``T`` calibrated as the largest score), so the first output
    spike is the decision and belongs to the class with the largest score; ``last_offsets`` ``[B, K]``.
    ``keep_values`` keeps the last scores with their graph (``last_values``, for the latency cost)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.calibrating:
            self._observe(z / self.alpha)
            return z
        self._ensure_window(z / self.alpha)
        if self.record:
            self.last_offsets = window_offsets(z.detach(), self.window.to(z.dtype), self.alpha)
        self.last_values = z if self.keep_values else None
        return z

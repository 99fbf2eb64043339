"""Run an exported TTFS graph on input spike times with :class:`nir_sim.GraphSimulator`; decode first spikes.

Reads only the graph and its metadata: ``spike_input`` gets one spike per input at its time rounded UP to
the grid (step ``ceil(t/dt)``, silent inputs never spike), every Input named in ``bias_inputs`` spikes
once at step 0, and the output's first spike at step k is the time ``k dt`` (+inf when it never spikes
before ``t_end``). Errors vs the continuous-time graph: each input is up to one ``dt`` late and each
``CubaLIF`` layer adds up to one ``dt`` (see ``nir_sim``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_finite, is_whole
from deepspike.deploy.deps import check_graph, require_nir
from deepspike.deploy.nir_fields import plain_metadata
from deepspike.deploy.nir_sim import GraphSimulator

MAX_CHUNK_ELEMENTS = 2_000_000  # elements of the widest [Tc, B, ...] signal of one chunk
MAX_REPLAY_STEPS = 1_000_000  # t_end / dt, the grid steps of one replay after step 0 (a tiny dt ran for hours)


def _meta(graph) -> dict:
    return plain_metadata(graph.metadata)


def input_steps(t_in: torch.Tensor, dt: float) -> torch.Tensor:
    """Grid step of each input spike, ``ceil(t/dt)`` (1e-9 relative slack for rounding); -1 = silent. Same shape."""
    if (t_in < 0).any() or torch.isnan(t_in).any():
        raise ConfigError("TTFS replay: input spike times must be >= 0 (+inf = no spike)")
    finite = torch.isfinite(t_in)
    steps = torch.ceil(torch.where(finite, t_in.double(), 0.0) / dt - 1e-9).clamp_min(0)
    return torch.where(finite, steps, torch.full_like(steps, -1)).long()


def _window(meta: dict) -> float:
    """The graph's ``t_window`` (``+inf`` when absent); a one-line ``ConfigError`` when it is not a number (text
    was a ValueError; NaN let any ``t_end`` through the fire-once bound)."""
    try:
        window = float(meta.get("t_window", math.inf))
    except (TypeError, ValueError):
        window = math.nan
    if math.isnan(window):
        raise ConfigError(f"TTFS replay: the graph's t_window = {meta.get('t_window')!r} is not a number")
    return window


def _inputs(meta: dict, sim: GraphSimulator, t_in) -> tuple[str, list[str]]:
    """``(spike input, bias inputs)`` named by the metadata, each an Input node of the graph and no other Input
    left unfed, and ``t_in`` a real tensor ``[B, *spike input's shape]``; else a one-line ``ConfigError`` (a name that
    is no Input was a KeyError, a ``t_in`` of another shape a RuntimeError from a reshape, a complex one torch's
    NotImplementedError "lt_cpu" not implemented for 'ComplexFloat')."""
    spike_in = str(meta.get("spike_input", "input"))
    bias = [s for s in str(meta.get("bias_inputs", "")).split(",") if s]
    strangers = sorted({spike_in, *bias} - set(sim.inputs))
    if strangers:
        raise ConfigError(f"TTFS replay: the metadata's spike_input / bias_inputs name {strangers}, which are not "
                          f"Input nodes (the graph's are {sim.inputs})")
    unknown = sorted(set(sim.inputs) - {spike_in, *bias})
    if unknown:
        raise ConfigError(f"TTFS replay: Input node(s) {unknown} are neither the spike input nor bias inputs")
    if len(sim.outputs) != 1:
        raise ConfigError(f"TTFS replay needs one Output node, found {len(sim.outputs)}")
    shape = tuple(sim.shapes[spike_in])
    if not isinstance(t_in, torch.Tensor) or t_in.dim() < 1 or tuple(t_in.shape[1:]) != shape or t_in.is_complex():
        got = (f"{tuple(t_in.shape)}{' ' + str(t_in.dtype) if t_in.is_complex() else ''}"
               if isinstance(t_in, torch.Tensor) else type(t_in).__name__)
        raise ConfigError(f"TTFS replay: t_in must be a tensor [B, {', '.join(map(str, shape))}] of input spike "
                          f"times, got {got}")
    return spike_in, bias


def ttfs_graph_times(graph, t_in: torch.Tensor, dt: float, t_end: float, chunk_steps: int | None = None
                     ) -> torch.Tensor:
    """First output spike times ``[B, *out]`` (float64, +inf = none by ``t_end``) of a TTFS NIR graph.

    t_in: ``[B, *input_shape]`` input spike times (>= 0, +inf = silent). dt: step (model time units).
    t_end: last simulated time, a finite number >= 0; must not exceed the graph's ``t_window`` (the fire-once
    guarantee); t_end / dt at most ``MAX_REPLAY_STEPS``. chunk_steps: steps per chunk (a whole number >= 1), else
    as many as fit ``MAX_CHUNK_ELEMENTS``. Stops early once every output neuron has spiked.
    """
    check_graph(require_nir(), graph, "ttfs_graph_times")
    meta = _meta(graph)
    if not (isinstance(meta.get("format"), str) and meta["format"] == "ttfs"):  # an array: "truth value ... ambiguous"
        raise ConfigError("TTFS replay needs a graph written by to_nir_ttfs (metadata format: ttfs)")
    if not (is_finite(t_end) and t_end >= 0):  # t_end < 0 simulated no step and returned None; NaN a ValueError
        raise ConfigError(f"TTFS replay: t_end = {t_end!r} must be a finite number >= 0")
    if chunk_steps is not None and not is_whole(chunk_steps, 1):
        raise ConfigError(f"TTFS replay: chunk_steps = {chunk_steps!r} must be a whole number >= 1 (or None)")
    window = _window(meta)
    if t_end > window:
        raise ConfigError(f"TTFS replay: t_end = {t_end} exceeds the graph's t_window = {window} (fire-once bound)")
    sim = GraphSimulator(graph, dt, integration="exact", signals="areas")  # Dirac spikes, CubaLIF solved exactly
    spike_in, bias = _inputs(meta, sim, t_in)
    bsz = t_in.shape[0]
    steps = input_steps(t_in, dt).reshape(bsz, -1)  # [B, ...] -> [B, N]
    n_steps = int(math.floor(t_end / dt + 1e-9)) + 1
    if n_steps - 1 > MAX_REPLAY_STEPS:
        raise ConfigError(f"TTFS replay: t_end / dt = {t_end} / {dt} is {n_steps - 1:,} steps, above "
                          f"{MAX_REPLAY_STEPS:,}; use a larger dt")
    shapes = {k: tuple(int(s) for s in np.asarray(graph.nodes[k].input_type["input"]).ravel()) for k in sim.inputs}
    sizes = [np.size(n.v_threshold) for n in graph.nodes.values() if hasattr(n, "v_threshold")]
    widest = max(sizes + [int(np.prod(s)) for s in shapes.values()])  # the widest neuron layer or input
    chunk = chunk_steps if chunk_steps is not None else max(1, MAX_CHUNK_ELEMENTS // max(1, bsz * widest))
    first = None
    for k0 in range(0, n_steps, chunk):
        tc = min(chunk, n_steps - k0)
        x = torch.zeros(tc, bsz, steps.shape[1], dtype=torch.float64)
        b_idx, n_idx = torch.nonzero((steps >= k0) & (steps < k0 + tc), as_tuple=True)
        x[steps[b_idx, n_idx] - k0, b_idx, n_idx] = 1.0
        feed = {spike_in: x.reshape(tc, bsz, *shapes[spike_in])}  # [Tc, B, N] -> [Tc, B, *input_shape]
        for name in bias:
            feed[name] = torch.zeros(tc, bsz, *shapes[name], dtype=torch.float64)
            if k0 == 0:
                feed[name][0] = 1.0  # the bias spike at t = 0
        out = next(iter(sim.run(feed).values()))  # [Tc, B, *out]
        if first is None:
            first = torch.full(out.shape[1:], math.inf, dtype=torch.float64)
        fired = out > 0
        idx = torch.argmax(fired.to(torch.int8), dim=0)  # first step of the chunk with a spike
        new = fired.any(0) & torch.isinf(first)
        first = torch.where(new, (idx + k0).double() * dt, first)
        if torch.isfinite(first).all():
            break
    return first

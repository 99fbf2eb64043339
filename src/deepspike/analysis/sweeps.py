"""Accuracy sweeps: against time steps, weight bits, weight-noise SNR, spike deletion and spike-time jitter.

Every point evaluates the same samples with the same seeded random stream (``training.evaluate.eval_pass``
with ``EVAL_SEED``), so curves differ only by the swept quantity.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch
from torch import nn

from deepspike.analysis.monitor import NetworkMonitor
from deepspike.analysis.perturb import SpikeDeletion, SpikeJitter, add_weight_noise
from deepspike.analysis.quantize import quantize_model
from deepspike.layers.neuron_kinds import is_ttfs_neuron_layer
from deepspike.methods.base import Method
from deepspike.training.evaluate import EVAL_SEED, eval_pass, evaluate

Batches = Sequence[tuple[torch.Tensor, torch.Tensor]]


def takes_timesteps(model: nn.Module) -> bool:
    """True for time-stepped networks (``RateNetwork``, ``ConvertedNetwork``: ``forward(x, timesteps)``)."""
    return hasattr(model, "eval_timesteps")


def runs_at_any_timesteps(model: nn.Module) -> bool:
    """``takes_timesteps`` and no module of a fixed step count (class attribute ``fixed_timesteps``: PSN's ``[T, T]``
    weights run at their own T only), so that accuracy can be swept over T."""
    return takes_timesteps(model) and not any(getattr(type(m), "fixed_timesteps", False) for m in model.modules())


def has_spike_times(model: nn.Module) -> bool:
    """Whether ``model`` has closed-form TTFS neuron layers (``is_ttfs_neuron_layer``), whose outputs are the spike
    times ``[B, ...]`` that ``SpikeJitter`` moves. A windowed TTFS net's layers (``ttfs.window_layers``:
    ``ttfs_window``, ``convert --to ttfs``) pass on the values their spikes code, not times: nothing to move."""
    return any(is_ttfs_neuron_layer(m) for m in model.modules())


def accuracy(
    model: nn.Module,
    method: Method,
    batches: Batches,
    timesteps: int | None = None,
    context: Callable[[], contextlib.AbstractContextManager] | None = None,
    seed: int = EVAL_SEED,
) -> float:
    """Fraction of ``batches`` classified right; ``timesteps`` overrides T; ``context()`` wraps the run."""
    with context() if context else contextlib.nullcontext():
        return evaluate(model, method, batches, seed=seed, timesteps=timesteps)["accuracy"]


def monitor_run(model: nn.Module, batches: Batches, seed: int = EVAL_SEED) -> dict:
    """``NetworkMonitor.summary()`` of ``model`` in eval mode over ``batches`` (seeded), with the monitor's
    ``histograms()`` under ``"histograms"``."""
    with eval_pass(model, seed), NetworkMonitor(model) as mon:
        for x, _ in batches:
            model(x)
    return {**mon.summary(), "histograms": mon.histograms()}


def timestep_points(total: int) -> list[int]:
    """1, 2, 4, ... up to ``total`` (``total`` always included)."""
    points, t = [], 1
    while t < total:
        points.append(t)
        t *= 2
    return points + [total]


def sweep_timesteps(model, method, batches, points: Sequence[int]) -> list[dict]:
    return [{"timesteps": t, "accuracy": accuracy(model, method, batches, timesteps=t)} for t in points]


def sweep_bits(model, method, batches, bits: Sequence[int], per_channel: bool = False) -> list[dict]:
    """Post-training quantization: accuracy at each number of bits (32 = full precision)."""
    return [
        {
            "bits": b,
            "per_channel": per_channel,
            "accuracy": accuracy(quantize_model(model, b, per_channel), method, batches),
        }
        for b in bits
    ]


def sweep_snr(model, method, batches, snrs: Sequence[float], repeats: int = 1) -> list[dict]:
    """Weight noise: mean accuracy over ``repeats`` noise draws (seeds 0..repeats-1) at each SNR (dB)."""
    rows = []
    for snr in snrs:
        accs = [
            accuracy(add_weight_noise(model, snr, torch.Generator().manual_seed(r)), method, batches)
            for r in range(repeats)
        ]
        rows.append({"snr_db": snr, "accuracy": sum(accs) / len(accs)})
    return rows


def sweep_deletion(model, method, batches, probs: Sequence[float]) -> list[dict]:
    return [
        {
            "p_delete": p,
            "accuracy": accuracy(
                model,
                method,
                batches,
                context=lambda p=p: SpikeDeletion(model, p, torch.Generator().manual_seed(0)),
            ),
        }
        for p in probs
    ]


def sweep_jitter(model, method, batches, sigmas: Sequence[float], relative: bool = True) -> list[dict]:
    return [
        {
            "jitter": s,
            "relative": relative,
            "accuracy": accuracy(
                model,
                method,
                batches,
                context=lambda s=s: SpikeJitter(model, s, relative, torch.Generator().manual_seed(0)),
            ),
        }
        for s in sigmas
    ]

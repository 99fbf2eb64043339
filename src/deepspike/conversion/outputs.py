"""What ``convert_run`` writes into the converted run directory.

``config.yaml`` (method ``converted`` with the thresholds) and ``checkpoint.pt`` (so ``deepspike eval``
works), ``thresholds.json``, ``accuracy_vs_timesteps.csv/.png`` (Fig. 4), ``spike_counts.csv/.png``
(cumulative spikes per layer and sample, Fig. 5), ``operations.json`` (SNN accumulates / ANN MACs,
section 7.4) and ``summary.json``.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from torch import nn

from deepspike.config.load import resolve_method_section
from deepspike.config.schema import RunConfig
from deepspike.conversion.accuracy_sweep import AccuracySweep
from deepspike.core.atomic import atomic_write_json, atomic_write_text
from deepspike.methods.converted import ConvertedOptions
from deepspike.models.costs import layer_costs
from deepspike.models.spec import Architecture
from deepspike.training.runs import RunDir


def save_converted_run(
    out_dir: Path, config: RunConfig, options: ConvertedOptions, snn: nn.Module, epoch: int, source_run: str
) -> None:
    """``config.yaml`` (the ANN run's config with method ``converted`` and ``options``) and ``checkpoint.pt``."""
    run = RunDir(out_dir)
    run.create()
    method = resolve_method_section({"name": "converted", **dataclasses.asdict(options)})
    run.write_config(dataclasses.replace(config, method=method))
    run.write_checkpoint({"model": snn.state_dict(), "epoch": epoch, "source_run": source_run})


def write_thresholds(out_dir: Path, options: ConvertedOptions, names: list[str], roles: list[str]) -> None:
    """``thresholds.json``: the norm, residual rule and input scale, and one row per neuron layer."""
    rows = zip(names, roles, options.thresholds, strict=True)
    atomic_write_json(
        out_dir / "thresholds.json",
        {
            "norm": options.norm,
            "residual": options.residual,
            "input_scale": options.input_scale,
            "layers": [{"name": n, "role": r, "threshold": t} for n, r, t in rows],
        },
    )


def write_sweep(
    out_dir: Path, sweep: AccuracySweep, names: list[str], roles: list[str], thresholds: list[float]
) -> None:
    """``accuracy_vs_timesteps.csv`` and ``spike_counts.csv`` (neuron layers ``names`` in build order)."""
    rows = ["timesteps,accuracy"] + [f"{t},{a:.6f}" for t, a in zip(sweep.marks, sweep.accuracy, strict=True)]
    atomic_write_text(out_dir / "accuracy_vs_timesteps.csv", "\n".join(rows) + "\n")
    spikes, sizes = sweep.spikes, [sweep.neurons[k] for k in names]
    rows = ["layer,role,threshold,neurons,spikes_per_sample,spikes_per_neuron"]
    rows += [
        f"{k},{r},{t:.6g},{s},{spikes[k]:.4f},{spikes[k] / max(1, s):.6f}"
        for k, r, t, s in zip(names, roles, thresholds, sizes, strict=True)
    ]
    atomic_write_text(out_dir / "spike_counts.csv", "\n".join(rows) + "\n")


def operations(arch: Architecture, accumulates: dict[str, float], timesteps: int) -> dict[str, Any]:
    """SNN ACs per sample (measured, per layer) vs ANN MACs per sample (``layer_costs``), and their ratio."""
    costs = layer_costs(arch)
    macs = sum(c.macs for c in costs)
    total = sum(accumulates.values())
    return {
        "timesteps": timesteps,
        "snn_accumulates_per_sample": total,
        "ann_macs_per_sample": macs,
        "ratio": total / macs if macs else math.nan,
        "layers": [{"snn_layer": k, "accumulates_per_sample": v} for k, v in accumulates.items()],
        "ann_layers": [{"name": c.name, "kind": c.kind, "macs": c.macs} for c in costs],
    }


def plot_sweep(out_dir: Path, sweep: AccuracySweep, ann_accuracy: float, names: list[str], norm: str) -> None:
    """``accuracy_vs_timesteps.png`` (SNN accuracy over T against the ANN's) and ``spike_counts.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(sweep.marks, [100 * a for a in sweep.accuracy], label=f"SNN ({norm}-norm)")
    ax.axhline(100 * ann_accuracy, color="k", ls="--", lw=1, label="ANN")
    ax.set_xscale("log")
    ax.set_xlabel("time steps")
    ax.set_ylabel("test accuracy (%)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "accuracy_vs_timesteps.png", dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(range(1, len(names) + 1), [sweep.spikes[k] for k in names])
    ax.set_xlabel("neuron layer")
    ax.set_ylabel("spikes per image")
    fig.tight_layout()
    fig.savefig(out_dir / "spike_counts.png", dpi=120)
    plt.close(fig)

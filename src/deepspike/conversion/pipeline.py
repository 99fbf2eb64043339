"""``convert_run``: a trained ``ann`` run directory -> a converted SNN run directory with its measurements.

Writes into ``out_dir``: ``config.yaml`` (method ``converted`` with the thresholds) and ``checkpoint.pt``
(so ``deepspike eval out_dir`` works), ``thresholds.json``, ``accuracy_vs_timesteps.csv/.png`` (Fig. 4),
``spike_counts.csv/.png`` (cumulative spikes per layer and sample, Fig. 5), ``operations.json`` (SNN
accumulates / ANN MACs, section 7.4) and ``summary.json``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepspike.config.load import resolve_method_section, save_config
from deepspike.conversion.monitor import ActivityMonitor
from deepspike.conversion.roles import neuron_roles
from deepspike.conversion.thresholds import ActivationPeaks, model_based_thresholds, spike_norm
from deepspike.conversion.transfer import copy_ann_weights
from deepspike.core.atomic import atomic_write_text
from deepspike.core.errors import ConfigError
from deepspike.methods import get_method
from deepspike.methods.converted import set_thresholds
from deepspike.models.costs import layer_costs
from deepspike.neurons.chunked_if import chunked_neurons
from deepspike.training.checkpoint import CHECKPOINT_NAME, save_checkpoint
from deepspike.training.evaluate import eval_pass, evaluate, limit_samples
from deepspike.training.reload import load_run
from deepspike.training.run_setup import make_batches

NORM_CHOICES = ("spike", "max", "percentile")


def checkpoints_for(timesteps: int, points: int = 40) -> list[int]:
    """Sorted time steps at which accuracy is reported: log-spaced and evenly spaced points, ending at T."""
    grid = np.concatenate([np.geomspace(1, timesteps, points), np.linspace(timesteps / points, timesteps, points)])
    return sorted({int(round(t)) for t in grid if 1 <= round(t) <= timesteps} | {timesteps})


def calibration_batch(config, data, samples: int, device: torch.device) -> torch.Tensor:
    """The first ``samples`` training images in the run's seeded shuffled order, normalised as in training."""
    batches = make_batches(config, data, "train", device)
    batches.augment = None
    xs, n = [], 0
    for x, _ in batches:
        xs.append(x)
        n += len(x)
        if n >= samples:
            break
    return torch.cat(xs)[:samples]


def convert_run(
    run_dir: str | Path,
    out_dir: str | Path,
    norm: str = "spike",
    timesteps: int = 2500,
    calib_samples: int = 256,
    calib_timesteps: int = 2500,
    percentile: float = 99.99,
    reset: str = "zero",
    readout: str = "spike",
    residual: str = "unity",
    limit: int | None = None,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Convert the ``ann`` run in ``run_dir`` with threshold balancing ``norm``; evaluate; write ``out_dir``.

    norm: "spike" (SPIKE-NORM, ``calib_timesteps`` steps per layer on ``calib_samples`` training images),
    "max" (largest ANN activation per layer on those images, Diehl 2015) or "percentile" (its
    ``percentile``-th percentile, Rueckauer 2017). The test split (first ``limit`` images if given) is run
    for ``timesteps`` steps; accuracy is recorded along the way. Returns the summary dict.
    """
    if norm not in NORM_CHOICES:
        raise ConfigError(f"unknown norm {norm!r}; valid: {', '.join(NORM_CHOICES)}")
    out_dir = Path(out_dir)
    if (out_dir / CHECKPOINT_NAME).exists():
        raise ConfigError(f"{out_dir} already holds a converted model; pick another --out")
    config, parts, state = load_run(run_dir, device="cpu")
    if config.method.name != "ann":
        raise ConfigError(f"{run_dir} is a {config.method.name!r} run; convert needs a trained 'ann' run")
    device = next(parts.model.parameters()).device
    t_start = time.perf_counter()

    x_cal = calibration_batch(config, parts.data, calib_samples, device)
    input_scale = float(x_cal.abs().max()) or 1.0
    roles = neuron_roles(parts.arch)
    options = {
        "timesteps": timesteps,
        "reset": reset,
        "readout": readout,
        "input_scale": input_scale,
        "norm": norm,
        "residual": residual,
        "percentile": percentile,
        "calib_samples": calib_samples,
        "calib_timesteps": calib_timesteps,
    }
    method = get_method("converted", options)
    snn = method.build(parts.arch).to(device)
    copy_ann_weights(parts.model, snn)
    snn.eval()

    log(f"calibrating {norm}-norm on {len(x_cal)} training images (input scale {input_scale:.4g})")
    if norm == "spike":
        thresholds = spike_norm(
            snn,
            x_cal,
            roles,
            calib_timesteps,
            residual,
            seed,
            progress=lambda i, th: log(f"  layer {i + 1}/{len(roles)} ({roles[i]}): th = {th:.4g}"),
        )
    else:
        peaks = ActivationPeaks(percentile if norm == "percentile" else None)
        peaks.update(parts.model, x_cal)
        thresholds = model_based_thresholds(peaks.peaks(), roles, input_scale, residual)
        set_thresholds(snn, thresholds)
    calib_seconds = time.perf_counter() - t_start

    out_dir.mkdir(parents=True, exist_ok=True)
    snn_config = dataclasses.replace(
        config,
        method=resolve_method_section({"name": "converted", **options, "thresholds": [float(t) for t in thresholds]}),
    )
    save_config(snn_config, out_dir / "config.yaml")
    save_checkpoint(
        out_dir / CHECKPOINT_NAME,
        {"model": snn.state_dict(), "epoch": state.get("epoch", 0), "source_run": str(run_dir)},
    )
    names = [n for n, m in snn.named_modules() if m in set(chunked_neurons(snn))]
    _write_json(
        out_dir / "thresholds.json",
        {
            "norm": norm,
            "residual": residual,
            "input_scale": input_scale,
            "layers": [
                {"name": n, "role": r, "threshold": t} for n, r, t in zip(names, roles, thresholds, strict=True)
            ],
        },
    )

    test = make_batches(config, parts.data, "test", device)
    t0 = time.perf_counter()
    ann = evaluate(parts.model, parts.method, list(limit_samples(test, limit)))
    ann_seconds = time.perf_counter() - t0
    log(f"ANN test accuracy {ann['accuracy']:.4f} on {ann['samples']} images")

    marks = checkpoints_for(timesteps)
    correct = torch.zeros(len(marks), dtype=torch.long)
    n = 0
    t0 = time.perf_counter()
    # eval_pass seeds with EVAL_SEED: the same draws as `deepspike eval` on the converted run.
    with eval_pass(snn), ActivityMonitor(snn) as monitor:
        for x, y in limit_samples(test, limit):
            scores = snn.trace(x, timesteps, marks)  # [C, B, K]
            correct += (scores.argmax(dim=2) == y).sum(dim=1).cpu()
            monitor.add_samples(len(y))
            n += len(y)
            log(f"  {n} test images: accuracy at T={timesteps} so far {correct[-1].item() / n:.4f}")
    snn_seconds = time.perf_counter() - t0
    accuracy = (correct.double() / max(1, n)).tolist()

    rows = ["timesteps,accuracy"] + [f"{t},{a:.6f}" for t, a in zip(marks, accuracy, strict=True)]
    atomic_write_text(out_dir / "accuracy_vs_timesteps.csv", "\n".join(rows) + "\n")
    spikes = monitor.spikes_per_sample()
    sizes = [monitor.neurons[k].size for k in names]
    rows = ["layer,role,threshold,neurons,spikes_per_sample,spikes_per_neuron"]
    rows += [
        f"{k},{r},{t:.6g},{s},{spikes[k]:.4f},{spikes[k] / max(1, s):.6f}"
        for k, r, t, s in zip(names, roles, thresholds, sizes, strict=True)
    ]
    atomic_write_text(out_dir / "spike_counts.csv", "\n".join(rows) + "\n")
    ops = _operations(parts.arch, monitor, timesteps)
    _write_json(out_dir / "operations.json", ops)
    _plots(out_dir, marks, accuracy, ann["accuracy"], names, [spikes[k] for k in names], norm)

    summary = {
        "source_run": str(run_dir),
        "norm": norm,
        "reset": reset,
        "readout": readout,
        "residual": residual,
        "timesteps": timesteps,
        "calib_samples": len(x_cal),
        "calib_timesteps": calib_timesteps if norm == "spike" else None,
        "percentile": percentile if norm == "percentile" else None,
        "test_samples": n,
        "ann_test_accuracy": ann["accuracy"],
        "snn_test_accuracy": accuracy[-1],
        "accuracy_drop_pp": 100.0 * (ann["accuracy"] - accuracy[-1]),
        "best_snn_accuracy": max(accuracy),
        "best_at_timesteps": marks[int(np.argmax(accuracy))],
        "ac_to_mac_ratio": ops["ratio"],
        "thresholds": [float(t) for t in thresholds],
        "calibration_seconds": round(calib_seconds, 2),
        "ann_eval_seconds": round(ann_seconds, 2),
        "snn_eval_seconds": round(snn_seconds, 2),
    }
    _write_json(out_dir / "summary.json", summary)
    return summary


def _operations(arch, monitor: ActivityMonitor, timesteps: int) -> dict[str, Any]:
    """SNN ACs per sample (measured) vs ANN MACs per sample (``layer_costs``), per layer and in total."""
    acs = monitor.accumulates_per_sample()
    costs = layer_costs(arch)
    macs = sum(c.macs for c in costs)
    total = sum(acs.values())
    layers = [{"snn_layer": k, "accumulates_per_sample": v} for k, v in acs.items()]
    return {
        "timesteps": timesteps,
        "snn_accumulates_per_sample": total,
        "ann_macs_per_sample": macs,
        "ratio": total / macs if macs else math.nan,
        "layers": layers,
        "ann_layers": [{"name": c.name, "kind": c.kind, "macs": c.macs} for c in costs],
    }


def _plots(out_dir: Path, marks, accuracy, ann_accuracy: float, names, spikes, norm: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(marks, [100 * a for a in accuracy], label=f"SNN ({norm}-norm)")
    ax.axhline(100 * ann_accuracy, color="k", ls="--", lw=1, label="ANN")
    ax.set_xscale("log")
    ax.set_xlabel("time steps")
    ax.set_ylabel("test accuracy (%)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "accuracy_vs_timesteps.png", dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(range(1, len(names) + 1), spikes)
    ax.set_xlabel("neuron layer")
    ax.set_ylabel("spikes per image")
    fig.tight_layout()
    fig.savefig(out_dir / "spike_counts.png", dpi=120)
    plt.close(fig)


def _write_json(path: Path, payload: dict) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")

"""``convert_run``: a trained ``ann`` run directory -> a converted SNN run directory with its measurements.

Steps: load the ANN run; build the SNN with the ANN's weights and calibrate its thresholds with the chosen
norm (``conversion.calibration``); evaluate the ANN; sweep the SNN's accuracy over T while recording its
spikes and operations (``conversion.accuracy_sweep``); write the run directory (``conversion.outputs``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepspike.config.schema import RunConfig
from deepspike.conversion.accuracy_sweep import AccuracySweep, sweep_accuracy
from deepspike.conversion.calibration import NORM_CHOICES, balance_thresholds, calibration_batch
from deepspike.conversion.outputs import (
    operations,
    plot_sweep,
    save_converted_run,
    write_sweep,
    write_thresholds,
)
from deepspike.conversion.roles import neuron_roles
from deepspike.conversion.thresholds import neuron_names
from deepspike.conversion.transfer import copy_ann_weights
from deepspike.core.atomic import atomic_write_json, check_output_dir
from deepspike.core.errors import ConfigError
from deepspike.methods import get_method
from deepspike.methods.converted import ConvertedOptions
from deepspike.methods.converted_network import ConvertedNetwork
from deepspike.training.evaluate import evaluate, limit_samples
from deepspike.training.reload import load_run
from deepspike.training.run_setup import RunParts, make_batches
from deepspike.training.runs import RunDir


@dataclass
class Calibrated:
    """The converted network, the options that rebuild it (balanced thresholds included), its neuron
    layers' names and roles (build order, output last), the calibration images used and the time taken."""

    snn: ConvertedNetwork
    options: ConvertedOptions
    names: list[str]
    roles: list[str]
    samples: int
    seconds: float


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
    config, parts, state = _load_ann_run(run_dir, out_dir)
    device = next(parts.model.parameters()).device
    settings = dict(timesteps=timesteps, reset=reset, readout=readout, norm=norm, residual=residual,
                    percentile=percentile, calib_samples=calib_samples, calib_timesteps=calib_timesteps)
    calibrated = _calibrate(config, parts, device, settings, seed, log)
    save_converted_run(out_dir, config, calibrated.options, calibrated.snn, state.get("epoch", 0), str(run_dir))
    write_thresholds(out_dir, calibrated.options, calibrated.names, calibrated.roles)

    test = make_batches(config, parts.data, "test", device)
    ann_accuracy, ann_seconds = _evaluate_ann(parts, limit_samples(test, limit), log)
    sweep = sweep_accuracy(calibrated.snn, limit_samples(test, limit), timesteps, log)
    write_sweep(out_dir, sweep, calibrated.names, calibrated.roles, calibrated.options.thresholds)
    ops = operations(parts.arch, sweep.accumulates, timesteps)
    atomic_write_json(out_dir / "operations.json", ops)
    plot_sweep(out_dir, sweep, ann_accuracy, calibrated.names, norm)
    summary = _summary(str(run_dir), calibrated, sweep, (ann_accuracy, ann_seconds), ops["ratio"])
    RunDir(out_dir).write_summary(summary)
    return summary


def _load_ann_run(run_dir: str | Path, out_dir: Path) -> tuple[RunConfig, RunParts, dict]:
    """The trained ``ann`` run's config, parts and checkpoint state; refuses an ``out_dir`` already used."""
    check_output_dir(out_dir, "--out")
    if RunDir(out_dir).has_checkpoint():
        raise ConfigError(f"{out_dir} already holds a converted model; pick another --out")
    config, parts, state = load_run(run_dir, device="cpu")
    if config.method.name != "ann":
        raise ConfigError(f"{run_dir} is a {config.method.name!r} run; convert needs a trained 'ann' run")
    if config.method.options.activation != "relu":
        raise ConfigError(f"{run_dir} is a {config.method.options.activation!r} ANN; convert takes ReLU ANNs "
                          "(thresholds from QCFS ANNs, --norm qcfs, are not built yet)")
    return config, parts, state


def _calibrate(
    config: RunConfig, parts: RunParts, device: torch.device, settings: dict, seed: int, log: Callable[[str], None]
) -> Calibrated:
    """Build the SNN from the ANN and balance its thresholds on training images (the input scale ``c`` is
    their largest ``|x|``)."""
    start = time.perf_counter()
    x_cal = calibration_batch(config, parts.data, settings["calib_samples"], device)
    input_scale = float(x_cal.abs().max()) or 1.0
    roles = neuron_roles(parts.arch)
    options = ConvertedOptions(input_scale=input_scale, **settings)
    snn = _build_snn(parts, options, device)
    log(f"calibrating {options.norm}-norm on {len(x_cal)} training images (input scale {input_scale:.4g})")
    thresholds = balance_thresholds(snn, parts.model, x_cal, roles, options, seed, log)
    options = dataclasses.replace(options, thresholds=[float(t) for t in thresholds])
    return Calibrated(snn, options, neuron_names(snn), roles, len(x_cal), time.perf_counter() - start)


def _build_snn(parts: RunParts, options: ConvertedOptions, device: torch.device) -> ConvertedNetwork:
    """The converted network of the ANN's architecture with the ANN's weights, unscaled, in eval mode."""
    snn = get_method("converted", dataclasses.asdict(options)).build(parts.arch).to(device)
    copy_ann_weights(parts.model, snn)
    return snn.eval()


def _evaluate_ann(parts: RunParts, batches: Iterable, log: Callable[[str], None]) -> tuple[float, float]:
    """The ANN's test accuracy on ``batches`` and the seconds it took."""
    start = time.perf_counter()
    ann = evaluate(parts.model, parts.method, list(batches))
    seconds = time.perf_counter() - start
    log(f"ANN test accuracy {ann['accuracy']:.4f} on {ann['samples']} images")
    return ann["accuracy"], seconds


def _summary(
    source_run: str, calibrated: Calibrated, sweep: AccuracySweep, ann: tuple[float, float], ratio: float
) -> dict[str, Any]:
    """``summary.json``: the settings, accuracies (``ann`` = ANN accuracy and seconds), AC/MAC ratio,
    thresholds and the seconds each step took."""
    o = calibrated.options
    ann_accuracy, ann_seconds = ann
    snn_accuracy = sweep.accuracy[-1]
    return {
        "source_run": source_run,
        "norm": o.norm,
        "reset": o.reset,
        "readout": o.readout,
        "residual": o.residual,
        "timesteps": o.timesteps,
        "calib_samples": calibrated.samples,
        "calib_timesteps": o.calib_timesteps if o.norm == "spike" else None,
        "percentile": o.percentile if o.norm == "percentile" else None,
        "test_samples": sweep.samples,
        "ann_test_accuracy": ann_accuracy,
        "snn_test_accuracy": snn_accuracy,
        "accuracy_drop_pp": 100.0 * (ann_accuracy - snn_accuracy),
        "best_snn_accuracy": max(sweep.accuracy),
        "best_at_timesteps": sweep.marks[int(np.argmax(sweep.accuracy))],
        "ac_to_mac_ratio": ratio,
        "thresholds": list(o.thresholds),
        "calibration_seconds": round(calibrated.seconds, 2),
        "ann_eval_seconds": round(ann_seconds, 2),
        "snn_eval_seconds": round(sweep.seconds, 2),
    }

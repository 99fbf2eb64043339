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
from deepspike.conversion.accuracy_sweep import AccuracySweep, sweep_accuracy, table_timesteps
from deepspike.conversion.calibration import NORM_CHOICES, balance_thresholds, calibration_batch
from deepspike.conversion.outputs import (
    COMPARISON,
    operations,
    plot_sweep,
    save_converted_run,
    write_sweep,
    write_thresholds,
)
from deepspike.conversion.roles import neuron_roles
from deepspike.conversion.thresholds import neuron_names
from deepspike.core.atomic import atomic_write_json, check_output_dir
from deepspike.core.errors import ConfigError
from deepspike.methods import get_method
from deepspike.methods.converted import ConvertedOptions
from deepspike.methods.converted_network import ConvertedNetwork
from deepspike.methods.registry import method_options
from deepspike.methods.weight_transfer import copy_ann_weights
from deepspike.models.spec import Architecture
from deepspike.training.evaluate import evaluate, limit_samples
from deepspike.training.reload import load_run
from deepspike.training.run_setup import RunParts, make_batches
from deepspike.training.runs import RunDir
from deepspike.training.runtime import autocast_dtype, model_device

# convert_run's options that are ConvertedOptions fields (None: the norm's default, ``neuron_defaults``)
CHOSEN_KEYS = ("reset", "readout", "encoding", "initial_membrane", "spike_value", "signed", "residual", "percentile",
               "calib_samples", "calib_timesteps")


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
    reset: str | None = None,
    readout: str | None = None,
    residual: str = "unity",
    encoding: str | None = None,
    initial_membrane: float | None = None,
    spike_value: str | None = None,
    signed: bool | None = None,
    limit: int | None = None,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Convert the ``ann`` run in ``run_dir`` with threshold balancing ``norm``; evaluate; write ``out_dir``.

    norm: "spike" (SPIKE-NORM, ``calib_timesteps`` steps per layer on ``calib_samples`` training images),
    "max" (largest ANN activation per layer on those images, Diehl 2015), "percentile" (its
    ``percentile``-th percentile, Rueckauer 2017), "channel" (the largest per channel) or "qcfs" (the
    trained thresholds of a QCFS ANN, Bu et al. 2022). Neuron settings left at None follow the norm
    (``neuron_defaults``). The test split (first ``limit`` images if given) is run for ``timesteps`` steps;
    accuracy is recorded along the way. Returns the summary dict.
    """
    _check_norm(norm)
    out_dir = check_output_dir(out_dir, "--out")  # not Path(): it reads an empty name as the current folder
    config, parts, state = _load_ann_run(run_dir, out_dir, norm)
    device = model_device(parts.model)
    chosen = dict(reset=reset, readout=readout, encoding=encoding, initial_membrane=initial_membrane,
                  spike_value=spike_value, signed=signed, residual=residual, percentile=percentile,
                  calib_samples=calib_samples, calib_timesteps=calib_timesteps)  # CHOSEN_KEYS
    settings = conversion_settings(norm, timesteps, has_biases(parts.arch), chosen)
    calibrated = _calibrate(config, parts, device, settings, seed, log)
    method_section = {"name": "converted", **dataclasses.asdict(calibrated.options)}
    write_thresholds(out_dir, calibrated.options, calibrated.names, calibrated.roles)

    test = make_batches(config, parts.data, "test", device)
    precision = autocast_dtype(config.train.precision)
    ann_accuracy, ann_seconds = _evaluate_ann(parts, limit_samples(test, limit), log, precision)
    sweep = sweep_accuracy(calibrated.snn, limit_samples(test, limit), timesteps, log)
    write_sweep(out_dir, sweep, calibrated.names, calibrated.roles, calibrated.options.thresholds)
    ops = operations(parts.arch, sweep, calibrated.options.encoding == "direct")
    atomic_write_json(out_dir / "operations.json", ops)
    plot_sweep(out_dir, sweep, ann_accuracy, calibrated.names, norm)
    summary = _summary(str(run_dir), calibrated, sweep, (ann_accuracy, ann_seconds), ops)
    save_converted_run(out_dir, config, method_section, calibrated.snn, state.get("epoch", 0), str(run_dir))
    RunDir(out_dir).write_summary(summary)
    return summary


def conversion_settings(norm: str, timesteps: int, biases: bool, chosen: dict[str, Any]) -> dict[str, Any]:
    """The ``ConvertedOptions`` fields (but the thresholds and input scale) of converting with ``norm``: the
    ``chosen`` options (reset, readout, ..., calib_timesteps; None = the norm's default, ``neuron_defaults``). A
    one-line ``ConfigError`` in the CLI's words for signed neurons (chosen, or the norm's default) with reset to zero,
    for 0/1 spikes with ``channel``'s per-channel thresholds (``check_conversion`` asks it
    of every norm before converting one) or with ``biases``: a layer fed 0/1 spikes gets ``W a / lambda`` where the
    ANN has ``(W a + b) / lambda``, and the weights and biases stay unscaled. Spikes that carry their threshold are
    in the ANN's units, so every layer is balanced: ``residual`` is then recorded as ``balanced``, the rule applied
    (``balance_thresholds``)."""
    neuron = {**neuron_defaults(norm, biases), **{k: v for k, v in chosen.items() if v is not None}}
    if neuron["spike_value"] == "threshold":
        neuron["residual"] = "balanced"
    if biases and neuron["spike_value"] == "one":
        raise ConfigError("--spike-value one cannot carry the ANN's biases (or folded batch-norms): 0/1 spikes rescale "
                          "each layer's input by 1 / lambda but not its bias; use --spike-value threshold")
    if neuron["signed"] is True and neuron["reset"] == "zero":  # else ConvertedOptions' "method.signed needs ..."
        if chosen.get("signed") is True:
            raise ConfigError("--signed needs reset by subtraction (--reset subtract), got --reset zero")
        raise ConfigError(f"--norm {norm} converts with signed neurons, which need reset by subtraction; with "
                          "--reset zero add --no-signed")
    if norm == "channel" and neuron["spike_value"] == "one":
        raise ConfigError("--norm channel: per-channel thresholds need spikes that carry their threshold "
                          "(spike_value threshold)")
    return dict(timesteps=timesteps, norm=norm, **neuron)


def check_conversion(run_dir: str | Path, out_dir: str | Path, norm: str, timesteps: int, **chosen: Any) -> None:
    """What ``convert_run`` refuses before its calibration, read from the run's ``config.yaml`` alone (no weights,
    no data): an unknown norm, an ``out_dir`` that holds a run, a run of another method, ``qcfs`` of a ReLU ANN,
    neuron settings ``ConvertedOptions`` refuses. ``convert_norms`` asks it of every norm before converting one."""
    _check_norm(norm)
    _check_free_out_dir(out_dir)
    _check_ann_config(run_dir, RunDir(run_dir).read_config(), norm)
    converted_options(conversion_settings(norm, timesteps, False, {k: chosen.get(k) for k in CHOSEN_KEYS}))


def converted_options(settings: dict[str, Any]) -> ConvertedOptions:
    """``settings`` (``conversion_settings``) as ``ConvertedOptions`` checked like a recipe's ``method`` section
    (``methods.registry.method_options``): a value of the wrong type is a one-line ``ConfigError``."""
    return method_options("converted", settings)


def neuron_defaults(norm: str, biases: bool) -> dict[str, Any]:
    """The neuron settings a norm converts with unless told otherwise.

    ``qcfs`` and ``channel`` (low-latency conversion, Bu et al. 2022): direct input, reset by subtraction,
    ``v_0 = th / 2``, membrane readout, spikes that carry their threshold, signed neurons (``neurons.chunked_if``;
    on the Fashion-MNIST QCFS VGG they move T = 4 from 2.2 pp below the ANN to 0.4 pp, see RESULTS.md).
    ``spike``, ``max``, ``percentile`` (sengupta2019): signed Poisson input, reset to zero, ``v_0 = 0``,
    spike-count readout, 0/1 unsigned spikes, unless the ANN has biases (or folded batch-norms): then spikes carry
    their threshold, which keeps biases exact.
    """
    if norm in ("qcfs", "channel"):
        return dict(encoding="direct", reset="subtract", initial_membrane=0.5, readout="membrane",
                    spike_value="threshold", signed=True)
    return dict(encoding="poisson", reset="zero", initial_membrane=0.0, readout="spike",
                spike_value="threshold" if biases else "one", signed=False)


def has_biases(arch: Architecture) -> bool:
    """True when a conv/linear of ``arch`` has a bias or a batch-norm (which folds into one)."""
    return any(getattr(v.layer, "bias", False) or getattr(v.layer, "norm", False) for v in arch.visits())


def load_ann_run(run_dir: str | Path, out_dir: Path) -> tuple[RunConfig, RunParts, dict]:
    """The trained ``ann`` run's config, parts and checkpoint state; refuses an ``out_dir`` already used, a run of
    another method and a run whose data has no test images (``data.args.test_fraction=0``): the rate conversion
    reported 0.0 SNN accuracy and 0.0 SNN / ANN energy on those 0 images, the TTFS one a ``ZeroDivisionError``."""
    _check_free_out_dir(out_dir)
    config, parts, state = load_run(run_dir, device="cpu")
    _check_ann_config(run_dir, config, None)
    if parts.data.test is None or len(parts.data.test) == 0:
        raise ConfigError(f"{run_dir} has no test images (its data split holds none, e.g. data.args.test_fraction=0): "
                          "a conversion scores the converted net on them; train the ANN on data with a test split")
    return config, parts, state


def _load_ann_run(run_dir: str | Path, out_dir: Path, norm: str) -> tuple[RunConfig, RunParts, dict]:
    """``load_ann_run``; also refuses ``--norm qcfs`` for an ANN without QCFS activations."""
    config, parts, state = load_ann_run(run_dir, out_dir)
    _check_ann_config(run_dir, config, norm)
    return config, parts, state


def _check_norm(norm: str) -> None:
    """A one-line ``ConfigError`` for a norm that is not one of ``NORM_CHOICES``."""
    if norm not in NORM_CHOICES:
        raise ConfigError(f"unknown norm {norm!r}; valid: {', '.join(NORM_CHOICES)}")


def _check_free_out_dir(out_dir: str | Path) -> None:
    """A one-line ``ConfigError`` for an output folder that is no folder to write into, already holds a run, a run's
    file that the converted run would overwrite (``config.yaml``, ``summary.json``, ...: a recipe, a training that
    has not checkpointed yet) or a comparison of norms (whose ``accuracy_vs_timesteps.png`` the run's would replace).
    A conversion killed before it saves the run (``save_converted_run``) wrote none, so the same ``--out`` takes it."""
    check_output_dir(out_dir, "--out")
    run = RunDir(out_dir)
    if run.has_checkpoint():
        raise ConfigError(f"{out_dir} already holds a run (its checkpoint.pt); pick another --out")
    if run.run_files():
        raise ConfigError(f"{out_dir} holds {', '.join(run.run_files())}, which the converted run would overwrite; "
                          "pick another --out")
    if (Path(out_dir) / COMPARISON).exists():
        raise ConfigError(f"{out_dir} holds a comparison of norms (its {COMPARISON}); pick another --out")


def _check_ann_config(run_dir: str | Path, config: RunConfig, norm: str | None) -> None:
    """A one-line ``ConfigError`` for a run that is not an ``ann`` run, or, for ``norm`` qcfs, not a QCFS ANN."""
    if config.method.name != "ann":
        raise ConfigError(f"{run_dir} is a {config.method.name!r} run; convert needs a trained 'ann' run")
    if norm == "qcfs" and config.method.options.activation != "qcfs":
        raise ConfigError(f"--norm qcfs needs an ANN trained with method.activation=qcfs; {run_dir} is a "
                          f"{config.method.options.activation!r} ANN (use --norm channel, max, percentile or spike)")


def _calibrate(
    config: RunConfig, parts: RunParts, device: torch.device, settings: dict, seed: int, log: Callable[[str], None]
) -> Calibrated:
    """Build the SNN from the ANN and balance its thresholds on training images (the input scale ``c`` is
    their largest ``|x|``); the options record how many images that was (all of the split when it holds fewer than
    ``calib_samples``)."""
    start = time.perf_counter()
    options = converted_options(settings)
    x_cal = calibration_batch(config, parts.data, options.calib_samples, device)
    input_scale = float(x_cal.abs().max()) or 1.0
    roles = neuron_roles(parts.arch)
    options = dataclasses.replace(options, input_scale=input_scale, calib_samples=len(x_cal))  # fewer if no more
    snn = _build_snn(parts, options, device)
    log(f"calibrating {options.norm}-norm on {len(x_cal)} training images (input scale {input_scale:.4g})")
    thresholds = balance_thresholds(snn, parts.model, x_cal, roles, options, seed, log)
    options = dataclasses.replace(options, thresholds=[_plain(t) for t in thresholds])
    return Calibrated(snn, options, neuron_names(snn), roles, len(x_cal), time.perf_counter() - start)


def _build_snn(parts: RunParts, options: ConvertedOptions, device: torch.device) -> ConvertedNetwork:
    """The converted network of the ANN's architecture with the ANN's weights, unscaled, in eval mode."""
    snn = get_method("converted", dataclasses.asdict(options)).build(parts.arch).to(device)
    copy_ann_weights(parts.model, snn)
    return snn.eval()


def _evaluate_ann(parts: RunParts, batches: Iterable, log: Callable[[str], None],
                  precision: torch.dtype | None) -> tuple[float, float]:
    """The ANN's test accuracy on ``batches`` (under the autocast it was trained and scored with, so it is the
    accuracy its own summary and ``eval`` report) and the seconds it took."""
    start = time.perf_counter()
    ann = evaluate(parts.model, parts.method, list(batches), precision=precision)
    seconds = time.perf_counter() - start
    log(f"ANN test accuracy {ann['accuracy']:.4f} on {ann['samples']} images")
    return ann["accuracy"], seconds


def _summary(
    source_run: str, calibrated: Calibrated, sweep: AccuracySweep, ann: tuple[float, float], ops: dict[str, Any]
) -> dict[str, Any]:
    """``summary.json``: the settings, accuracies (``ann`` = ANN accuracy and seconds), the accuracy and the
    SNN / ANN energy (per MAC/AC preset; without and with the neurons' own updates) at every power of two up to T
    and at T, ``ac_to_mac_ratio`` = SNN operations (ACs + MACs, the input-driven first layer's included) / ANN MACs
    and ``if_driven_ac_to_mac_ratio``, sengupta2019 section 7.4's, of the layers IF neurons drive only
    (``conversion.outputs.operations``), thresholds and the seconds each step took."""
    o = calibrated.options
    ann_accuracy, ann_seconds = ann
    table = table_timesteps(o.timesteps)
    rows = [row for row in ops["by_timesteps"] if row["timesteps"] in table]
    snn_accuracy = sweep.accuracy[-1]
    return {
        "source_run": source_run,
        "norm": o.norm,
        "reset": o.reset,
        "readout": o.readout,
        "residual": o.residual,
        "encoding": o.encoding,
        "initial_membrane": o.initial_membrane,
        "spike_value": o.spike_value,
        "signed": o.signed,
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
        "accuracy_by_timesteps": {str(t): a for t, a in zip(sweep.marks, sweep.accuracy, strict=True) if t in table},
        "energy_ratio_by_timesteps": _energy_ratios(rows, "snn_over_ann"),
        "energy_ratio_with_updates_by_timesteps": _energy_ratios(rows, "snn_with_updates_over_ann"),
        "ac_to_mac_ratio": ops["ratio"],  # (SNN ACs + MACs) / ANN MACs, input-driven first layer included
        "if_driven_ac_to_mac_ratio": ops["if_driven"]["ratio"],  # sengupta2019 7.4: only IF-driven operations
        "thresholds": list(o.thresholds),
        "calibration_seconds": round(calibrated.seconds, 2),
        "ann_eval_seconds": round(ann_seconds, 2),
        "snn_eval_seconds": round(sweep.seconds, 2),
    }


def _energy_ratios(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, float | None]]:
    """Per MAC/AC preset, ``key`` (an SNN / ANN energy ratio) of each reported T's row."""
    return {preset: {str(row["timesteps"]): row[preset][key] for row in rows}
            for preset in (k for k, v in rows[0].items() if isinstance(v, dict))}


def _plain(threshold: Any) -> float | list[float]:
    """A threshold for the options (and ``config.yaml``): a float, or a list of floats per channel."""
    return [float(t) for t in threshold] if isinstance(threshold, list | tuple) else float(threshold)

"""``convert_to_ttfs``: a trained ReLU ``ann`` run -> an exact single-spike TTFS run (method ``ttfs_window``).

The ANN's parameters go unchanged into the windowed ReL-PSP network of the same architecture (a batch-norm in
eval mode is an affine map: part of the synapses); every layer's window is ``margin`` x its largest activation
on ``calib_samples`` training images (``methods.window_network.calibrate_windows``), so nothing clips on those.
The test split is then run through both nets: accuracies, the largest deviation of the SNN's output potentials
from the ANN's logits, the fraction of equal predictions, and the spiking measures (``methods.window_measures``).
Writes ``OUT/config.yaml`` + ``checkpoint.pt`` (a ``ttfs_window`` run that ``deepspike eval`` and
``method.init_from`` read), ``OUT/windows.json`` and ``OUT/summary.json``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from deepspike.conversion.calibration import CALIB_BATCH, calibration_batch
from deepspike.conversion.outputs import save_converted_run
from deepspike.conversion.pipeline import load_ann_run
from deepspike.core.atomic import atomic_write_json, check_output_dir
from deepspike.core.errors import ConfigError
from deepspike.methods import get_method
from deepspike.methods.ttfs_window import check_exact_alpha
from deepspike.methods.window_measures import window_measures
from deepspike.methods.window_network import WindowNetwork, calibrate_windows
from deepspike.models.costs import count_macs
from deepspike.training.evaluate import limit_samples
from deepspike.training.run_setup import make_batches
from deepspike.training.runs import RunDir


def convert_to_ttfs(
    run_dir: str | Path,
    out_dir: str | Path,
    calib_samples: int = 2048,
    margin: float = 1.0,
    alpha: float = 1.0,
    limit: int | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Convert the ReLU ``ann`` run in ``run_dir`` to a ``ttfs_window`` run in ``out_dir``; returns the summary."""
    if calib_samples < 1 or not margin > 0 or not alpha > 0:
        raise ConfigError(f"--calib-samples must be >= 1 and margin, alpha > 0; got {calib_samples}, {margin}, {alpha}")
    check_exact_alpha(alpha, f"--alpha={alpha:g}")
    out_dir = check_output_dir(out_dir, "--out")  # not Path(): it reads an empty name as the current folder
    config, parts, state = load_ann_run(run_dir, out_dir)
    if config.method.options.activation != "relu":
        raise ConfigError(f"--to ttfs maps ReLU activations exactly; {run_dir} is a "
                          f"{config.method.options.activation!r} ANN (train it with method.activation=relu)")
    start = time.perf_counter()
    options = {"alpha": alpha, "margin": margin}
    method = get_method("ttfs_window", options)
    snn = method.build(parts.arch)
    method.init_from_run(snn, "ann", parts.model)
    x_cal = calibration_batch(config, parts.data, calib_samples, torch.device("cpu"))
    windows = calibrate_windows(snn, x_cal.split(CALIB_BATCH), margin)
    log(f"windows from {len(x_cal)} training images: input {windows[0]:.4g}, hidden "
        f"{', '.join(f'{w:.4g}' for w in windows[1:-1])}, output {windows[-1]:.4g}")
    calib_seconds = time.perf_counter() - start
    atomic_write_json(out_dir / "windows.json", {"input": windows[0], "hidden": windows[1:-1], "output": windows[-1],
                                                 "margin": margin, "alpha": alpha, "calib_samples": len(x_cal)})
    test = list(limit_samples(make_batches(config, parts.data, "test", torch.device("cpu")), limit))
    summary = {"source_run": str(run_dir), "calib_samples": len(x_cal), "margin": margin, "alpha": alpha,
               "calibration_seconds": round(calib_seconds, 2), **_compare(parts.model, snn, test, log)}
    summary.update(_measures(snn, test, count_macs(parts.arch)))
    save_converted_run(out_dir, config, {"name": "ttfs_window", **options}, snn, state.get("epoch", 0), str(run_dir))
    RunDir(out_dir).write_summary(summary)
    return summary


@torch.no_grad()
def _compare(ann: torch.nn.Module, snn: WindowNetwork, batches: list, log: Callable[[str], None]) -> dict[str, Any]:
    """Test accuracies of both nets, the fraction of equal predictions and the largest relative deviation of the
    SNN's scores from the ANN's logits (relative to the sample's largest |logit|). Both run in float32, even for an
    ANN trained with ``train.precision=bf16``: the TTFS net is the exact image of the float32 ANN, which is what the
    deviation checks (its accuracy can then differ from the bf16 ANN's summary by rounding)."""
    ann.eval()
    snn.eval()
    correct_ann = correct_snn = agree = n = 0
    deviation = 0.0
    for x, y in batches:
        z_ann, z_snn = ann(x), snn(x)
        correct_ann += int((z_ann.argmax(1) == y).sum())
        correct_snn += int((z_snn.argmax(1) == y).sum())
        agree += int((z_ann.argmax(1) == z_snn.argmax(1)).sum())
        scale = z_ann.abs().amax(dim=1, keepdim=True).clamp(min=1e-12)
        batch_deviation = float(((z_snn - z_ann).abs() / scale).max())
        deviation = math.inf if math.isnan(batch_deviation) else max(deviation, batch_deviation)  # max() drops NaN
        n += len(y)
    result = {"test_samples": n, "ann_test_accuracy": correct_ann / n, "snn_test_accuracy": correct_snn / n,
              "accuracy_drop_pp": 100.0 * (correct_ann - correct_snn) / n, "prediction_agreement": agree / n,
              "max_relative_score_deviation": deviation}
    log(f"ANN {result['ann_test_accuracy']:.4f}, TTFS {result['snn_test_accuracy']:.4f} on {n} test images "
        f"(agreement {result['prediction_agreement']:.4f}, largest relative score deviation {deviation:.2e})")
    return result


def _measures(snn: WindowNetwork, batches: list, ann_macs: int) -> dict[str, Any]:
    """Spikes per neuron, input spikes, latency and synaptic operations on the test images; ``ops_over_ann_macs``.
    ``hidden_before_decision`` is NaN (null in the summary) for a net without hidden layers, which the measures leave
    out (a single-layer ANN's conversion once ended in a ``KeyError``)."""
    measures = window_measures(snn, batches)
    keys = ("spikes_per_neuron", "input_spikes", "latency", "no_output_spike", "hidden_before_decision",
            "saturated_fraction", "synaptic_ops", "total_time")
    result = {key: measures.get(key, math.nan) for key in keys}
    result["spikes_per_neuron_by_layer"] = {k.split("/", 1)[1]: v for k, v in measures.items()
                                            if k.startswith("spiking_fraction/")}
    result["ann_macs"] = ann_macs
    result["synaptic_ops_over_ann_macs"] = measures["synaptic_ops"] / ann_macs
    return result

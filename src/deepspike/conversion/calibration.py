"""Calibration of a converted network: the training images it sees and its thresholds per balancing norm.

Norms (sengupta2019 section 5, ``conversion.thresholds``): ``spike`` (SPIKE-NORM: the largest weighted
spike input per layer, ``calib_timesteps`` steps per layer), ``max`` (the largest ANN activation per layer,
Diehl 2015) and ``percentile`` (its ``percentile``-th percentile, Rueckauer 2017), the last two turned into
thresholds ``th_l = lambda_l / s`` with unscaled weights.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from deepspike.config.schema import RunConfig
from deepspike.conversion.thresholds import ActivationPeaks, model_based_thresholds, spike_norm
from deepspike.data.splits import DataSplits
from deepspike.methods.converted import ConvertedOptions, set_thresholds
from deepspike.methods.converted_network import ConvertedNetwork
from deepspike.training.run_setup import make_batches

NORM_CHOICES = ("spike", "max", "percentile")


def calibration_batch(config: RunConfig, data: DataSplits, samples: int, device: torch.device) -> torch.Tensor:
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


def balance_thresholds(
    snn: ConvertedNetwork,
    ann: nn.Module,
    x_cal: torch.Tensor,
    roles: list[str],
    options: ConvertedOptions,
    seed: int,
    log: Callable[[str], None],
) -> list[float]:
    """Set and return the thresholds of ``snn`` (build order, output last) found on images ``x_cal``.

    ``options``: ``norm``, ``residual``, ``percentile``, ``calib_timesteps`` and ``input_scale`` apply;
    ``seed`` seeds SPIKE-NORM's input spike trains.
    """
    o = options
    if o.norm == "spike":
        return spike_norm(
            snn,
            x_cal,
            roles,
            o.calib_timesteps,
            o.residual,
            seed,
            progress=lambda i, th: log(f"  layer {i + 1}/{len(roles)} ({roles[i]}): th = {th:.4g}"),
        )
    peaks = ActivationPeaks(o.percentile if o.norm == "percentile" else None)
    peaks.update(ann, x_cal)
    thresholds = model_based_thresholds(peaks.peaks(), roles, o.input_scale, o.residual)
    set_thresholds(snn, thresholds)
    return thresholds

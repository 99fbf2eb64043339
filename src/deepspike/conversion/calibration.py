"""Calibration of a converted network: the training images it sees and its thresholds per balancing norm.

Norms (``conversion.thresholds``): ``spike`` (sengupta2019's SPIKE-NORM: the largest weighted spike input per
layer, ``calib_timesteps`` steps per layer), ``max`` (the largest ANN activation per layer, Diehl 2015),
``percentile`` (its ``percentile``-th percentile, Rueckauer 2017), ``channel`` (the largest activation per
channel) and ``qcfs`` (the trained clipping thresholds ``lambda`` of a QCFS ANN, Bu et al. 2022; the output
layer, which has none, gets max-norm). Peaks become thresholds with unscaled weights
(``model_based_thresholds``), starting from the scale of what the encoder sends: ``input_scale`` ``c`` for Poisson
input (rate ``|x| / c``), 1 for direct input (the image ``x`` itself).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from deepspike.config.schema import RunConfig
from deepspike.conversion.activation_peaks import ActivationPeaks, qcfs_thresholds
from deepspike.conversion.thresholds import model_based_thresholds, spike_norm
from deepspike.core.errors import ConfigError
from deepspike.data.splits import DataSplits
from deepspike.methods.converted import ConvertedOptions, set_thresholds
from deepspike.methods.converted_network import ConvertedNetwork
from deepspike.training.run_setup import make_batches

NORM_CHOICES = ("spike", "max", "percentile", "channel", "qcfs")
CALIB_BATCH = 256
"""Calibration images per forward pass of the ANN (``balance_thresholds``' peaks, the TTFS windows): the peaks are
those of one pass over all images (a max of maxima; the percentile keeps the largest values it reads), while only this
many images' activations are held at once (one pass over 10,000 images held all of them)."""


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


def sent_scale(options: ConvertedOptions) -> float:
    """The scale of what the encoder sends, which the first threshold is balanced against: ``input_scale`` ``c``
    for Poisson input (rate ``|x| / c``), 1 for direct input (the image ``x`` itself, in the ANN's units)."""
    return options.input_scale if options.encoding == "poisson" else 1.0


def balance_thresholds(
    snn: ConvertedNetwork,
    ann: nn.Module,
    x_cal: torch.Tensor,
    roles: list[str],
    options: ConvertedOptions,
    seed: int,
    log: Callable[[str], None],
) -> list[float]:
    """Set and return the thresholds of ``snn`` (build order, output last) found on images ``x_cal`` ``[N, C, H, W]``
(the ANN's peaks in batches of ``CALIB_BATCH`` images).

    ``options``: ``norm``, ``residual``, ``percentile``, ``calib_timesteps``, ``encoding`` and ``input_scale`` (Poisson
    input only: direct input sends the image in the ANN's units, scale 1; ``sent_scale``) apply; ``seed`` seeds
    SPIKE-NORM's input spike trains.
    """
    o = options
    residual = o.residual if o.spike_value == "one" else "balanced"  # ANN units: every layer its own
    if o.norm == "spike":
        return spike_norm(
            snn,
            x_cal,
            roles,
            o.calib_timesteps,
            residual,
            seed,
            progress=lambda i, th: log(f"  layer {i + 1}/{len(roles)} ({roles[i]}): th = {th:.4g}"),
        )
    peaks = ActivationPeaks(o.percentile if o.norm == "percentile" else None, per_channel=o.norm == "channel",
                            samples=len(x_cal))
    for x in x_cal.split(CALIB_BATCH):
        peaks.update(ann, x)
    found = peaks.peaks()
    if o.norm == "qcfs":
        lambdas = qcfs_thresholds(ann)
        if len(lambdas) != len(found) - 1:
            raise ConfigError(f"--norm qcfs needs a QCFS activation at each of the {len(found) - 1} neuron layers "
                              f"(train with method.activation=qcfs); the ANN has {len(lambdas)}")
        if min(lambdas) <= 0:  # lambda <= 0 gives QCFS(x) = lambda * ... <= 0, which no IF neuron fires
            raise ConfigError(f"--norm qcfs: QCFS layer {lambdas.index(min(lambdas)) + 1} has a trained threshold "
                              f"lambda = {min(lambdas):.4g} <= 0, whose outputs are <= 0 (no spike rate); retrain "
                              "the ANN (e.g. a lower optim.lr) or convert with --norm channel, max or percentile")
        found = [*lambdas, found[-1]]
    thresholds = model_based_thresholds(found, roles, sent_scale(o), residual, o.spike_value)
    set_thresholds(snn, thresholds)
    return thresholds

"""The direct-training choices of method ``stbp``: the loss (``method.loss``) and the batch-norm kind
(``method.norm``) placed where the model's spec has ``norm=True`` (``conv -> norm -> neuron``).

Losses, on the readout's scores (``layers.readout``):

* ``mse``: mean squared error of the mean output ``(1/T) sum_t o_t`` to the one-hot label (wu2019 eq. 11,
  with ``vote_group`` the voting layer);
* ``ce``: cross-entropy of the mean output;
* ``tet``: TET (Deng et al., ICLR 2022), the mean over t of ``CE(o_t, y)`` plus ``tet_lambda`` times the MSE
  of every ``o_t`` to ``tet_phi`` (``methods.losses.tet_loss``). In training the network returns the per-step
  scores ``[T, B, K]`` (``RateNetwork.per_step``); the online temporal-grad modes (sltt, ottt) hand each step's
  ``[B, K]`` to the loss, which is then the same sum taken one step at a time. Evaluation scores the mean
  output (the reported test loss is TET of the mean, ``T = 1``).

Norms (``layers.temporal_batchnorm``): ``bn``, ``tdbn`` (scale ``tdbn_alpha * threshold``), ``tebn``
(per-step scale) for the spec's ``norm=True`` layers; ``none`` (the default) builds no batch-norm and refuses a
model that has them (the same model without, e.g. ``model.args.batch_norm=false``, is the BN-free baseline).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.layers.temporal_batchnorm import (
    TemporalEffectiveBatchNorm,
    batch_norm,
    threshold_dependent_batch_norm,
)
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods.losses import LOSSES, classification_loss, tet_loss
from deepspike.models.fold import has_batch_norm
from deepspike.models.spec import Architecture

STBP_LOSSES = (*LOSSES, "tet")
NORMS = ("none", "bn", "tdbn", "tebn")


def check_training_choices(o: Any) -> None:
    """One-line ``ConfigError`` for a bad ``norm``, ``tdbn_alpha``, ``tet_lambda``, ``tet_phi`` of options ``o``."""
    if o.norm not in NORMS:
        raise ConfigError(f"bad value {o.norm!r} for method.norm; valid: {', '.join(NORMS)}")
    if not o.tdbn_alpha > 0:
        raise ConfigError(f"bad value {o.tdbn_alpha!r} for method.tdbn_alpha: expected > 0")
    if not 0.0 <= o.tet_lambda <= 1.0:
        raise ConfigError(f"bad value {o.tet_lambda!r} for method.tet_lambda: expected in [0, 1]")
    if o.norm == "tebn" and o.eval_timesteps not in (None, o.timesteps):
        raise ConfigError("method.norm=tebn has one scale per training step: eval_timesteps must equal timesteps")


def check_norm_fits(norm: str, arch: Architecture) -> None:
    """One-line ``ConfigError`` when ``arch`` has batch-norm layers and ``norm`` is none."""
    if norm == "none" and has_batch_norm(arch):
        raise ConfigError(f"model {arch.name!r} has batch-norm layers: choose method.norm: bn, tdbn or tebn, or "
                          "a model without them (model.args.batch_norm=false where the model has it)")


def norm_rule(o: Any) -> Callable[[tuple[int, ...]], nn.Module]:
    """``(per-sample shape) -> module`` on ``[T, B, ...]`` for ``o.norm`` (bn, tdbn or tebn)."""
    if o.norm == "tebn":
        return lambda shape: TemporalEffectiveBatchNorm(shape, o.timesteps)
    if o.norm == "tdbn":
        return lambda shape: TimeDistributed(threshold_dependent_batch_norm(shape, o.threshold, o.tdbn_alpha))
    return lambda shape: TimeDistributed(batch_norm(shape))


def stbp_loss(o: Any, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The training loss of ``output`` (``[B, K]``, or ``[T, B, K]`` per-step scores for ``tet``)."""
    if o.loss == "tet":
        return tet_loss(output, target, o.tet_lambda, o.tet_phi)
    return classification_loss(o.loss, output, target)

"""The direct-training choices of method ``stbp``: the loss (``method.loss``) and the batch-norm kind
(``method.norm``) placed where the model's spec has ``norm=True`` (``conv -> norm -> neuron``).

Losses, on the readout's scores (``layers.readout``):

* ``mse``: mean squared error of the mean output ``(1/T) sum_t o_t`` to the one-hot label (wu2019 eq. 11,
  with ``vote_group`` the voting layer);
* ``ce``: cross-entropy of the mean output;
* ``tet``: TET (Deng et al., ICLR 2022), the mean over t of ``CE(o_t, y)`` plus ``tet_lambda`` times the MSE
  of every ``o_t`` to ``tet_phi`` (``methods.losses.tet_loss``). In training the network returns the per-step
  scores ``[T, B, K]`` (``RateNetwork.per_step``); the online temporal-grad modes (sltt, ottt, eprop) hand each
  step's ``[B, K]`` to the loss, which is then the same sum taken one step at a time. Evaluation scores the mean
  output (the reported test loss is TET of the mean, ``T = 1``);
* ``mse_count``: snnTorch's spike-count MSE (``methods.losses.mse_count_loss``): the output spike count of
  class k should be ``T * count_correct_rate`` for the label and ``T * count_incorrect_rate`` for the others,
  ``L = (1/(B K T)) sum_{b,k} (c[b, k] - c*[b, k])^2``. Only with ``readout: rate`` (with ``vote_group`` G, c is
  the group's mean count). In training the network returns the output spikes ``[T, B, K]`` (T from the shape);
  in evaluation the rates ``[B, K]`` of ``eval_timesteps`` steps (or of the T a scoring pass ran,
  ``Method.loss_at``) give ``c = r T``. The online modes, whose single
  step has no count, are refused.

Readouts (``method.readout``, ``layers.readout``): ``rate``, ``membrane`` and ``max_membrane`` (``readout_decay``:
``V_t = decay V_{t-1} + x_t``, score ``max_t V_t``; with ``loss: ce`` this is snnTorch's ``ce_max_membrane_loss``);
the max has no per-step scores, so it is refused with ``tet`` and ``mse_count``.

Activity regulariser (``method.rate_reg: none | l1 | l2 | band``, ``rate_reg_weight``, ``rate_reg_low``,
``rate_reg_high``; ``layers.rate_penalty``): ``weight * sum_l P(r^l)`` on the per-sample firing rates
``r^l [B, N_l]`` of every hidden spiking layer, added to the training loss (``Method.penalty``).

STDP (``method.stdp_layers``, ``layers.stdp``): the listed linear / convolutional layers (0-based, in forward order)
learn by trace STDP instead of gradients (``stdp_decay_pre``, ``stdp_decay_post``, ``stdp_rate_plus``,
``stdp_rate_minus``, ``stdp_bounds``, ``stdp_w_min``, ``stdp_w_max``: ``layers.stdp_rule``), applied after every
training batch's backward pass (``Method.after_backward``), in every epoch or the first ``stdp_epochs``; the others
train by the loss.

Norms (``layers.temporal_batchnorm``): ``bn``, ``tdbn`` (scale ``tdbn_alpha * threshold``), ``tebn``
(per-step scale) for the spec's ``norm=True`` layers; ``none`` (the default) builds no batch-norm and refuses a
model that has them (the same model without, e.g. ``model.args.batch_norm=false``, is the BN-free baseline).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from deepspike.core.errors import ConfigError, UnusedOptionError
from deepspike.core.options import FLOAT32_MAX, check_unused, is_finite
from deepspike.layers.rate_penalty import check_rate_reg, rate_penalty
from deepspike.layers.stdp_rule import StdpRule
from deepspike.layers.temporal_batchnorm import (
    TemporalEffectiveBatchNorm,
    batch_norm,
    check_tdbn_scale,
    threshold_dependent_batch_norm,
)
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods.encoder_choice import BUILT_IN as BUILT_IN_ENCODERS
from deepspike.methods.losses import LOSSES, classification_loss, mse_count_loss, tet_loss
from deepspike.methods.neuron_choice import NEURONS, PSN_FAMILY
from deepspike.models.fold import has_batch_norm
from deepspike.models.spec import Architecture

STBP_LOSSES = (*LOSSES, "tet", "mse_count")
MSE_COUNT_WINDOW = "method.loss=mse_count trains on the spike counts [T, B, K] of all T steps"
PER_STEP_LOSSES = ("tet", "mse_count")  # the network hands them the per-step scores [T, B, K] in training
NORMS = ("none", "bn", "tdbn", "tebn")
# ~2.8e14: the MSE's sum of (o_t - phi)^2 over up to 2^30 values (T*B*K), outputs up to phi's size, stays finite
TET_PHI_MAX = math.sqrt(FLOAT32_MAX / 2**30) / 2


def check_training_choices(o: Any) -> None:
    """One-line ``ConfigError`` for a bad ``norm``, ``tdbn_alpha``, ``tet_lambda``, ``tet_phi``, loss / readout pair,
    ``readout_decay``, ``count_*_rate`` (each in [0, 1], incorrect < correct) or ``rate_reg*`` of options ``o``."""
    if o.norm not in NORMS:
        raise ConfigError(f"bad value {o.norm!r} for method.norm; valid: {', '.join(NORMS)}")
    if not o.tdbn_alpha > 0:
        raise ConfigError(f"bad value {o.tdbn_alpha!r} for method.tdbn_alpha: expected > 0")
    if o.norm == "tdbn":  # the options, not the build, refuse what the layers would (1e39 passed them)
        try:
            check_tdbn_scale(o.threshold, o.tdbn_alpha)
        except ConfigError as error:
            raise ConfigError(f"bad value {o.tdbn_alpha!r} for method.tdbn_alpha: {error}") from None
    if not 0.0 <= o.tet_lambda < 1.0:  # 1 weights the cross-entropy by 1 - lambda = 0: the label would not count
        raise ConfigError(f"bad value {o.tet_lambda!r} for method.tet_lambda: expected in [0, 1) (at 1 the loss is "
                          "the MSE to tet_phi alone and ignores the label)")
    if not abs(o.tet_phi) <= FLOAT32_MAX:  # TET's (o_t - phi)^2 is float32: 1e39 was torch's RuntimeError
        raise ConfigError(f"bad value {o.tet_phi!r} for method.tet_phi: expected a float32 number (at most "
                          f"{FLOAT32_MAX:.4g} in size)")
    if o.tet_lambda > 0 and not abs(o.tet_phi) <= TET_PHI_MAX:  # a larger (o_t - phi)^2 is inf in float32
        raise ConfigError(f"bad value {o.tet_phi!r} for method.tet_phi with method.tet_lambda={o.tet_lambda!r}: "
                          f"expected at most {TET_PHI_MAX:.4g} in size (TET's (o_t - phi)^2 must fit float32)")
    if o.norm == "tebn" and o.eval_timesteps not in (None, o.timesteps):
        raise ConfigError("method.norm=tebn has one scale per training step: eval_timesteps must equal timesteps")
    if not 0.0 <= o.readout_decay <= 1.0:
        raise ConfigError(f"bad value {o.readout_decay!r} for method.readout_decay: expected in [0, 1]")
    _check_membrane_decay(o)
    if o.loss == "mse_count" and o.readout != "rate":
        raise ConfigError(f"method.loss=mse_count counts output spikes: it needs method.readout: rate, not {o.readout}")
    if o.loss == "tet" and o.readout == "max_membrane":
        raise ConfigError("method.loss=tet scores every step; method.readout=max_membrane has no per-step scores: "
                          "use readout rate or membrane")
    for key in ("count_correct_rate", "count_incorrect_rate"):
        if not 0.0 <= getattr(o, key) <= 1.0:
            raise ConfigError(f"bad value {getattr(o, key)!r} for method.{key}: expected in [0, 1]")
    if not o.count_incorrect_rate < o.count_correct_rate:  # predict takes the largest rate: the label's must be it
        raise ConfigError(f"bad values for method.count_correct_rate/count_incorrect_rate: expected incorrect < "
                          f"correct (the label's output must fire most), got {o.count_correct_rate!r}/"
                          f"{o.count_incorrect_rate!r}")
    check_rate_reg(o.rate_reg, o.rate_reg_weight, o.rate_reg_low, o.rate_reg_high)
    stdp_rule(o)
    if o.stdp_epochs is not None and o.stdp_epochs < 1:
        raise ConfigError(f"bad value {o.stdp_epochs!r} for method.stdp_epochs: expected >= 1 or null")


def check_options_used(o: Any) -> None:
    """A one-line ``ConfigError`` for an option of stbp options ``o`` set away from its default while the feature it
    belongs to is off (``core.options.check_unused``): ``readout_decay`` without ``readout: max_membrane``,
    ``tet_*`` without ``loss: tet`` (``tet_phi`` also with ``tet_lambda: 0``), ``count_*`` without
    ``loss: mse_count``, ``neunorm_decay`` without NeuNorm, ``tdbn_alpha`` without ``norm: tdbn``, ``delta_*`` /
    ``population_*`` without their encoder, ``rate_reg_*`` without their regulariser, ``stdp_*`` without
    ``stdp_layers``, a built-in neuron's own constants with another neuron, ``decay`` with ``plif`` (which learns
    its decay from ``tau_init``), ``state_low/high`` without
    ``state_bits`` and ``reset`` with a PSN-family neuron. An encoder or neuron of one's own is handed all the
    options, so it may read any of them."""
    own_encoder, own_neuron = o.encoder not in BUILT_IN_ENCODERS, o.neuron not in NEURONS
    stdp = tuple(f"stdp_{key}" for key in ("decay_pre", "decay_post", "rate_plus", "rate_minus", "bounds", "w_min",
                                           "w_max", "epochs"))
    check_unused(o, (
        (("readout_decay",), o.readout == "max_membrane", "method.readout=max_membrane (its integrator's leak)"),
        (("tet_lambda", "tet_phi"), o.loss == "tet", "method.loss=tet"),
        (("tet_phi",), o.tet_lambda > 0, "method.tet_lambda > 0 (phi is the target of TET's MSE term)"),
        (("count_correct_rate", "count_incorrect_rate"), o.loss == "mse_count", "method.loss=mse_count"),
        (("neunorm_decay",), o.neunorm, "method.neunorm=true"),
        (("tdbn_alpha",), o.norm == "tdbn", "method.norm=tdbn"),
        (("delta_threshold", "delta_off_spikes", "delta_mode"), o.encoder == "delta" or own_encoder,
         "method.encoder=delta"),
        (("population_size", "population_low", "population_high", "population_width", "population_spikes"),
         o.encoder == "population" or own_encoder, "method.encoder=population"),
        (("rate_reg_weight",), o.rate_reg != "none", "method.rate_reg=l1, l2 or band"),
        (("rate_reg_low", "rate_reg_high"), o.rate_reg == "band", "method.rate_reg=band"),
        (stdp, bool(o.stdp_layers), "method.stdp_layers lists a layer"),
        (("tau_init",), o.neuron == "plif" or own_neuron, "method.neuron=plif"),
        (("decay",), o.neuron != "plif", "method.neuron is one with a fixed decay, not plif (which learns its own, "
                                         "started from method.tau_init)"),
        (("syn_decay",), o.neuron == "synaptic" or own_neuron, "method.neuron=synaptic"),
        (("adapt_decay", "adapt_scale"), o.neuron == "alif" or own_neuron, "method.neuron=alif"),
        (("psn_order",), o.neuron in ("masked_psn", "sliding_psn") or own_neuron,
         "method.neuron=masked_psn or sliding_psn"),
        (("state_low", "state_high"), o.state_bits is not None, "method.state_bits is set"),
        (("reset",), o.neuron not in PSN_FAMILY, "method.neuron has a reset (the PSN family has none)"),
    ))


def _check_membrane_decay(o) -> None:
    """``membrane_decay`` of options ``o``: a number in [0, 1], below 1 only for ``readout: membrane`` and a loss
    that scores the final membrane (TET's per-step scores average to the score only without a leak)."""
    if not (is_finite(o.membrane_decay) and 0.0 <= o.membrane_decay <= 1.0):
        raise ConfigError(f"bad value {o.membrane_decay!r} for method.membrane_decay: expected a number in [0, 1]")
    if o.membrane_decay != 1.0 and o.readout != "membrane":
        raise UnusedOptionError(f"method.membrane_decay is the leak of the membrane readout: it needs "
                                f"method.readout: membrane, not {o.readout}", "method", "membrane_decay",
                                o.membrane_decay, 1.0, "method.readout=membrane")
    if o.membrane_decay != 1.0 and o.loss == "tet":
        raise ConfigError("method.loss=tet scores every step, whose mean is the score only without a leak: use "
                          "method.membrane_decay: 1")


def stdp_rule(o: Any) -> StdpRule:
    """The STDP rule of options ``o`` (``method.stdp_*``); a one-line ``ConfigError`` for a bad value."""
    return StdpRule(o.stdp_decay_pre, o.stdp_decay_post, o.stdp_rate_plus, o.stdp_rate_minus, o.stdp_bounds,
                    o.stdp_w_min, o.stdp_w_max)


def check_norm_fits(norm: str, arch: Architecture) -> None:
    """One-line ``ConfigError`` when ``arch`` has batch-norm layers and ``norm`` is none."""
    if norm == "none" and has_batch_norm(arch):
        raise ConfigError(f"model {arch.name!r} has batch-norm layers: choose method.norm: bn, tdbn or tebn, or "
                          "a model without them (model.args.batch_norm=false where the model has it)")


def check_norm_used(norm: str, arch: Architecture) -> None:
    """One-line ``UnusedOptionError`` when ``norm`` names the kind of batch-norm layers ``arch`` does not have: it
    would be ignored while the run's config records it. For new runs only (``Method.check_new_run``): runs saved with
    such a setting before it was refused still load."""
    if norm != "none" and not has_batch_norm(arch):
        raise UnusedOptionError(f"method.norm={norm} sets the kind of the model's batch-norm layers, but model "
                                f"{arch.name!r} has none: use method.norm: none, or a model with them "
                                "(model.args.batch_norm=true where the model has it)", "method", "norm", norm, "none",
                                f"the model has batch-norm layers (model {arch.name!r} has none)")


def norm_rule(o: Any) -> Callable[[tuple[int, ...]], nn.Module]:
    """``(per-sample shape) -> module`` on ``[T, B, ...]`` for ``o.norm`` (bn, tdbn or tebn)."""
    if o.norm == "tebn":
        return lambda shape: TemporalEffectiveBatchNorm(shape, o.timesteps)
    if o.norm == "tdbn":
        return lambda shape: TimeDistributed(threshold_dependent_batch_norm(shape, o.threshold, o.tdbn_alpha))
    return lambda shape: TimeDistributed(batch_norm(shape))


def stbp_loss(o: Any, output: torch.Tensor, target: torch.Tensor, steps: int | None = None) -> torch.Tensor:
    """The training loss of ``output`` (``[B, K]``, or ``[T, B, K]`` per-step scores for ``tet`` and
    ``mse_count``; module docstring); ``steps``: the T the rates ``[B, K]`` were counted over (None: ``eval_timesteps``
    or ``timesteps``)."""
    if o.loss == "tet":
        return tet_loss(output, target, o.tet_lambda, o.tet_phi)
    if o.loss == "mse_count":
        if output.dim() == 2 and output.requires_grad:  # training hands over [T, B, K]: this is one online step
            raise ConfigError(f"{MSE_COUNT_WINDOW}; got scores [B, K] with a gradient (train.temporal_grad "
                              "sltt/ottt/eprop score one step at a time: use bptt or checkpoint; evaluate under "
                              "torch.no_grad())")
        return mse_count_loss(output, target, o.count_correct_rate, o.count_incorrect_rate,
                              steps or o.eval_timesteps or o.timesteps)
    return classification_loss(o.loss, output, target)


def rate_reg_penalty(o: Any, net: nn.Module) -> torch.Tensor | None:
    """``rate_reg_weight * sum_l P(r^l)`` (``layers.rate_penalty``) on the hidden rates of ``net``'s last training
    call, collected by its ``hidden_rates`` (``HiddenRates``); None without a regulariser."""
    if o.rate_reg == "none":
        return None
    probe = getattr(net, "hidden_rates", None)
    if probe is None:
        raise ConfigError(f"method.rate_reg={o.rate_reg}: the network has no rate probes; build it with these "
                          "method options (StbpMethod.build)")
    return o.rate_reg_weight * rate_penalty(probe.take(), o.rate_reg, o.rate_reg_low, o.rate_reg_high)

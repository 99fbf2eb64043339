"""Spike-timing-dependent plasticity (STDP) with exponential traces: the rule, on whole spike sequences.

Pair-based STDP in its trace form (all-to-all pairing; Song, Miller & Abbott 2000, Morrison, Diesmann & Gerstner
2008). For a synaptic layer with presynaptic activity ``s_pre [T, B, ...]`` (its input) and postsynaptic spikes
``s_post [T, B, ...]`` (the spikes of the neurons it drives), every neuron keeps a trace that takes the step's spike
before it is read, from 0 before the first step::

    x_t = lambda_pre  x_{t-1} + s_pre_t          y_t = lambda_post y_{t-1} + s_post_t

A postsynaptic spike potentiates a synapse by the presynaptic trace, a presynaptic spike depresses it by the
postsynaptic trace; summed over the steps and samples of a batch::

    LTP_ij = sum_{t,b} s_post_{t,b,i} x_{t,b,j}          LTD_ij = sum_{t,b} y_{t,b,i} s_pre_{t,b,j}

For a convolution the sums also run over the output positions, with ``j`` the input under kernel tap ``(c, k)``:
each correlation is the convolution's weight gradient for the output gradient ``s_post`` (or ``y``) and the input
``x`` (or ``s_pre``), computed by ``torch.nn.grad`` in one call for all T steps (any stride, padding, dilation,
groups). The weight step is the mean over the ``B`` samples (the batch's, or the data-parallel ranks' together) and
the ``P`` output positions of a sample (a convolution's map size; 1 for a linear layer on vectors), so that one rate
suits layers of any map size::

    dW = (eta_plus A_plus(W) * LTP - eta_minus A_minus(W) * LTD) / (B P)

with soft bounds ``A_plus = w_max - W``, ``A_minus = W - w_min`` (multiplicative STDP, van Rossum, Bi & Turrigiano
2000: the weights approach the bounds), or hard bounds ``A = 1`` (additive STDP). Either way ``W + dW`` is clipped to
``[w_min, w_max]`` (with soft bounds that only matters for a step so large that ``eta LTP / (B P) > 1``, which would
overshoot). The weights are the batch's, fixed while its sums are taken.

Because each trace takes its step's spike first, a pre- and a postsynaptic spike in the same step count once as
potentiation (``x_t`` holds ``s_pre_t``) and once as depression (``y_t`` holds ``s_post_t``). That is
SpikingJelly's ``STDPLearner`` convention; its time constants are ``tau = 1 / (1 - lambda)`` (its traces decay by
``1 - 1/tau``), its ``f_post(W) = eta_plus A_plus(W)`` and ``f_pre(W) = eta_minus A_minus(W)``, and it sums over
the batch and positions where this rule takes the mean (``tests/conformance`` compares the two).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import grad as conv_grad

from deepspike.core.errors import ConfigError
from deepspike.core.precision import at_least_float32

STDP_BOUNDS = ("soft", "hard")
PLASTIC_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)


@dataclass(frozen=True)
class StdpRule:
    """The rule's constants (module docstring): trace decays ``lambda_pre``, ``lambda_post`` in [0, 1); learning rates
    ``eta_plus``, ``eta_minus`` >= 0; ``bounds`` soft | hard; ``w_min < w_max``."""

    decay_pre: float = 0.5
    decay_post: float = 0.5
    rate_plus: float = 1e-3
    rate_minus: float = 1e-3
    bounds: str = "soft"
    w_min: float = -1.0
    w_max: float = 1.0

    def __post_init__(self) -> None:
        for key, value in (("decay_pre", self.decay_pre), ("decay_post", self.decay_post)):
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"bad value {value!r} for method.stdp_{key}: expected in [0, 1)")
        for key, value in (("rate_plus", self.rate_plus), ("rate_minus", self.rate_minus)):
            if not 0.0 <= value < float("inf"):
                raise ConfigError(f"bad value {value!r} for method.stdp_{key}: expected a finite number >= 0")
        if self.bounds not in STDP_BOUNDS:
            raise ConfigError(f"bad value {self.bounds!r} for method.stdp_bounds; valid: {', '.join(STDP_BOUNDS)}")
        largest = torch.finfo(torch.float32).max  # the weights' float32 must hold the bounds
        if not -largest <= self.w_min < self.w_max <= largest:
            raise ConfigError(f"bad values for method.stdp_w_min/stdp_w_max: expected w_min < w_max, both within "
                              f"+-{largest:.3g} (float32), got {self.w_min!r}/{self.w_max!r}")


def spike_trace(spikes: torch.Tensor, decay: float) -> torch.Tensor:
    """``x_t = decay x_{t-1} + s_t`` from ``x_{-1} = 0``, for ``spikes [T, B, ...]``; ``[T, B, ...]`` in float32
    (float64 for float64 spikes)."""
    trace = spikes.to(at_least_float32(spikes.dtype), copy=True)
    for t in range(1, trace.shape[0]):
        trace[t].add_(trace[t - 1], alpha=decay)
    return trace


def check_plastic(synapse: nn.Module, where: str) -> None:
    """A one-line ``ConfigError`` unless ``synapse`` is a layer the rule can correlate (``where`` names it)."""
    if not isinstance(synapse, PLASTIC_LAYERS):
        raise ConfigError(f"STDP needs a Linear, Conv1d or Conv2d layer; {where} is {type(synapse).__name__}")
    if isinstance(synapse, nn.Linear):
        return
    if synapse.padding_mode != "zeros" or isinstance(synapse.padding, str):
        raise ConfigError(f"STDP needs numeric zero padding; {where} has padding {synapse.padding!r} "
                          f"({synapse.padding_mode})")


def correlation(post: torch.Tensor, pre: torch.Tensor, synapse: nn.Module) -> torch.Tensor:
    """``C_ij = sum_{t,b(,positions)} post_i pre_j`` in the shape of ``synapse.weight``, for ``post [T, B, ...out]``
    and ``pre [T, B, ...in]`` (float32): the weight gradient of ``synapse`` for output gradient ``post`` and input
    ``pre``."""
    post, pre = post.flatten(0, 1), pre.flatten(0, 1)  # [T*B, ...]
    if isinstance(synapse, nn.Linear):
        return post.reshape(-1, post.shape[-1]).T @ pre.reshape(-1, pre.shape[-1])
    weight_grad = conv_grad.conv2d_weight if isinstance(synapse, nn.Conv2d) else conv_grad.conv1d_weight
    return weight_grad(pre, synapse.weight.shape, post, synapse.stride, synapse.padding, synapse.dilation,
                       synapse.groups)


def stdp_correlations(pre: torch.Tensor, post: torch.Tensor, synapse: nn.Module,
                      rule: StdpRule) -> tuple[torch.Tensor, torch.Tensor]:
    """``(LTP, LTD)`` (module docstring) of one call: presynaptic activity ``pre [T, B, ...in]`` into ``synapse``,
    postsynaptic spikes ``post [T, B, ...out]``; tensors in the shape of its weight, float32 (float64 for float64
    activity)."""
    dtype = at_least_float32(pre.dtype)
    pre, post = pre.to(dtype), post.to(dtype)
    potentiation = correlation(post, spike_trace(pre, rule.decay_pre), synapse)
    depression = correlation(spike_trace(post, rule.decay_post), pre, synapse)
    return potentiation, depression


@torch.no_grad()
def apply_stdp(weight: torch.Tensor, potentiation: torch.Tensor, depression: torch.Tensor, count: float,
               rule: StdpRule) -> None:
    """``W += dW`` in place (module docstring) for the sums ``LTP``, ``LTD`` over ``count = B P`` samples and
    positions, clipped to the bounds. The step is taken in float64: a rate near float32's limit times a sum overflowed
    float32, and ``inf - inf`` made the weight NaN."""
    w = weight.to(torch.float64)
    potentiation, depression = potentiation.to(torch.float64), depression.to(torch.float64)
    if rule.bounds == "soft":
        step = rule.rate_plus * (rule.w_max - w) * potentiation - rule.rate_minus * (w - rule.w_min) * depression
    else:
        step = rule.rate_plus * potentiation - rule.rate_minus * depression
    weight.copy_((w + step / count).clamp_(rule.w_min, rule.w_max))

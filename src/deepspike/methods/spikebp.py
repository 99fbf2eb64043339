"""Method ``spikebp`` (Lee et al. 2020): LIF with the leak-corrected approximate derivative.

- Input: Poisson bipolar spikes ``sign(x) 1[|x| / c > U_t]`` of the (normalised) image (``encoder: bipolar``),
  ``c = input_scale``: 2 in lee2020's MNIST code (the [0, 1] pixels halved: ``Poisson_d_input = (|input| / 2) >
  rand``); about 2.25 for its CIFAR-10 code on ``data.normalize`` images (it divides by std 0.557, 0.549, 0.5534,
  not CIFAR-10's 0.247, 0.243, 0.262).
- Hidden layers: ``layers.spikebp_lif.LeakCorrectedLIF`` (leak ``exp(-1/tau_m)``, threshold 1, hard reset;
  backward ``a' = (1[count > 0] + ln(leak) LF / count) / V_th``, eq. 22 as in the original code, gated by the
  paper's text (a neuron with no spike gets 0) where the code gates on ``LF > 1e-3``; with the
  correction on, a leak below 1/e, where that turns negative, is refused for new runs).
- Pooling: ``layers.spiking_pool.SpikingAvgPool`` (2x2 average, weights 0.25, threshold 0.75, reset; padding
  is a silent input); max pooling of spikes is ``nn.MaxPool2d`` per step.
- Output: non-spiking integrator, score ``V(T) / T`` with derivative ``1/T``
  (``layers.leaky_integrator``); loss ``sse`` = ``(1/2) sum_k (output_k - label_k)^2`` per sample (eq. 9),
  averaged over the batch (``mse`` and ``ce`` are offered too).
- Dropout: one mask per iteration, the same at every time step (``layers.dropout.TimeFixedDropout``).
- Initialisation: every conv/linear weight ``~ N(0, kappa / fan_in)``, kappa 2 for plain nets, 1 for
  residual nets (``init_kappa`` overrides); the layers are bias-free as in the model specs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepspike.coding.encoder import ENCODERS, InputEncoder, check_input_scale
from deepspike.core.errors import ConfigError
from deepspike.core.options import FLOAT32_MAX, check_unused, is_float32
from deepspike.layers.dropout import TimeFixedDropout
from deepspike.layers.leaky_integrator import LeakyIntegratorReadout
from deepspike.layers.spiking_pool import SpikingAvgPool
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods.base import Method
from deepspike.methods.build import BuildRules, build_body, default_pool
from deepspike.methods.init import check_init_kappa, init_weights
from deepspike.methods.losses import classification_loss
from deepspike.methods.rate_network import RateNetwork
from deepspike.methods.registry import register_method
from deepspike.models.spec import Architecture, Pool, Residual
from deepspike.neurons.params import THRESHOLD_LOW
from deepspike.neurons.spikebp_lif import DERIVATIVES, LeakCorrectedLIF, negative_derivative

SPIKEBP_LOSSES = ("sse", "mse", "ce")


@dataclass
class SpikeBpOptions:
    timesteps: int = 100
    eval_timesteps: int | None = None
    leak: float = 0.99
    threshold: float = 1.0
    pool_threshold: float = 0.75
    leak_correction: bool = True
    derivative: str = "code"
    init_kappa: float | None = None
    encoder: str = "bipolar"
    input_scale: float = 1.0  # bipolar: c of s_t = sign(x) 1[|x| / c > U_t] (lee2020's MNIST code: 2)
    loss: str = "sse"

    def __post_init__(self) -> None:
        if self.timesteps < 1 or (self.eval_timesteps is not None and self.eval_timesteps < 1):
            raise ConfigError(f"bad value for method.timesteps/eval_timesteps: expected >= 1, got "
                              f"{self.timesteps}/{self.eval_timesteps}")
        for key, value, valid in (("encoder", self.encoder, ENCODERS), ("loss", self.loss, SPIKEBP_LOSSES),
                                  ("derivative", self.derivative, DERIVATIVES)):
            if value not in valid:
                raise ConfigError(f"bad value {value!r} for method.{key}; valid: {', '.join(valid)}")
        if not 0.0 < self.leak <= 1.0:
            raise ConfigError(f"bad value {self.leak!r} for method.leak: expected in (0, 1] (exp(-1/tau_m))")
        for key in ("threshold", "pool_threshold"):  # a float32 membrane: beyond 3.4e38 inf, below 1.2e-38 NaN grads
            if not (is_float32(getattr(self, key)) and getattr(self, key) >= THRESHOLD_LOW):
                raise ConfigError(f"bad value {getattr(self, key)!r} for method.{key}: expected > 0, from float32's "
                                  f"smallest normal {THRESHOLD_LOW:.4g} to its largest {FLOAT32_MAX:.4g}")
        check_init_kappa(self.init_kappa)
        check_input_scale(self.input_scale, self.encoder, "method.input_scale")


def has_avg_pool(arch: Architecture) -> bool:
    """True when ``arch`` holds an average ``Pool`` anywhere: the spiking pooling neurons ``pool_threshold`` sets
    (a max pool of spikes has no threshold)."""
    return any(isinstance(visit.layer, Pool) and visit.layer.kind == "avg" for visit in arch.visits())


def is_residual(arch: Architecture) -> bool:
    """True when ``arch`` holds a ``Residual`` block anywhere (lee2020 then uses kappa = 1)."""
    return arch.contains(Residual)


@register_method
class SpikeBpMethod(Method):
    name = "spikebp"
    Options = SpikeBpOptions
    description = "lee2020 spike-based BP: LIF with leak-corrected derivative, integrating output, fixed dropout"

    def build(self, arch: Architecture) -> nn.Module:
        o = self.options

        def pool(spec: Pool, shape: tuple[int, ...]) -> nn.Module:
            if spec.kind == "avg":
                return SpikingAvgPool(spec.kernel_size, spec.step, o.pool_threshold, o.derivative, spec.padding)
            return TimeDistributed(default_pool(spec))

        rules = BuildRules(activation=lambda shape: self._neuron(), wrap=TimeDistributed, dropout=TimeFixedDropout,
                           pool=pool, channel_dim=2)
        body = build_body(arch, rules)
        kappa = o.init_kappa if o.init_kappa is not None else (1.0 if is_residual(arch) else 2.0)
        init_weights(body, kappa)
        return self._network(body)

    def _neuron(self) -> LeakCorrectedLIF:
        o = self.options
        return LeakCorrectedLIF(o.leak, o.threshold, o.leak_correction, o.derivative)

    def _network(self, body: nn.Module) -> RateNetwork:
        o = self.options
        return RateNetwork(InputEncoder(o.encoder, o.input_scale), body, LeakyIntegratorReadout(o.leak), o.timesteps,
                           o.eval_timesteps)

    def options_probe(self) -> RateNetwork:
        """A net of one of the method's neurons, as ``build`` makes every one: what the options alone decide of a net
        (``training.temporal_grad.check_settings_before_data``: lee2020's neurons train on whole sequences only)."""
        return self._network(nn.Sequential(self._neuron()))

    def check_new_run(self, arch: Architecture) -> None:
        """``method.pool_threshold`` set (not its default) for a model without average pooling, where no spiking
        pooling neuron reads it, and ``method.leak_correction`` set with ``leak: 1``, where the correction
        ``ln(leak) LF / count`` is 0: refused for new runs (``core.options.check_unused``), so runs saved with one
        load; so is a leak below 1/e with the correction on (``LEAK_CORRECTION_LOW``: eq. 22's derivative turns
        negative there; the paper's tau_m is 100 steps, leak 0.99; a run saved with one loads and evaluates, but the
        neurons refuse to train it, ``spikebp_lif.leak_corrected_lif``)."""
        super().check_new_run(arch)
        reason = negative_derivative(self.options.leak, self.options.leak_correction, "method.leak",
                                     "method.leak_correction")
        if reason:
            raise ConfigError(reason)

    def check_options_fit(self, arch: Architecture) -> None:
        """``method.pool_threshold`` set for a model without average pooling (``check_new_run``)."""
        check_unused(self.options, ((("pool_threshold",), has_avg_pool(arch),
                                     f"the model has average pooling (model {arch.name!r} has none)"),))

    def check_options_used(self) -> None:
        """``method.leak_correction`` set with ``leak: 1`` (``check_new_run``)."""
        check_unused(self.options, ((("leak_correction",), self.options.leak < 1.0,
                                     "method.leak is below 1 (its term ln(leak) LF / count is 0 at leak 1)"),))

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.options.loss == "sse":
            onehot = F.one_hot(target, output.shape[1]).to(output.dtype)
            return 0.5 * (output - onehot).pow(2).sum(dim=1).mean()
        return classification_loss(self.options.loss, output, target)

    def class_scores(self, output: torch.Tensor) -> torch.Tensor:
        """The output layer's membrane ``V_T / T`` ``[B, K]`` (lee2020's readout; the loss's logits or targets)."""
        return output

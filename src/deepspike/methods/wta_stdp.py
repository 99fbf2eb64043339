"""Method ``wta_stdp``: Diehl & Cook (2015)'s unsupervised competitive STDP network, labelled by its responses.

"Unsupervised learning of digit recognition using spike-timing-dependent plasticity" (Front. Comput. Neurosci.
9:99): Poisson inputs drive a layer of conductance-based excitatory neurons through plastic weights; each excitatory
neuron drives an inhibitory partner that inhibits all the other excitatory neurons (a soft winner-take-all); an
adaptive threshold keeps any neuron from taking every input. No label reaches the weights: after learning, each
neuron is labelled with the class it answers most, and a sample's class is the label whose neurons answer it most
(``layers.wta_stdp``; the equations are ``layers.wta_kernels``'). The paper reaches 82.9% (100 neurons), 87.0%
(400), 91.9% (1,600) and 95.0% (6,400) on MNIST.

The architecture is one hidden layer, the excitatory population, and the class layer, the labels' vote:
``Flatten, Linear(N), Linear(K, act=False)`` (model ``diehl_cook`` with ``neurons``, or ``mlp`` with one hidden
size). The net learns without gradients (``learns_locally``): the trainer hands it each training batch
(``learn``), with no optimizer step; the ``optim`` and ``schedule`` sections do nothing (a key of either set away
from its default is refused, ``config.schema.check_settings_used``).

Options, Diehl & Cook's values by default (times in ms, potentials in mV): ``dt``; ``present_ms`` per sample,
``rest_ms`` after it; ``rate_max`` (Hz at intensity 1), ``rate_step``, ``min_spikes``, ``max_presentations`` (repeats
of a sample that drew too few spikes); excitatory ``exc_tau``, ``exc_rest``, ``exc_reset``, ``exc_thresh``,
``exc_refractory``, reversal potentials ``exc_e_exc``, ``exc_e_inh``; inhibitory ``inh_tau``, ``inh_rest``,
``inh_reset``, ``inh_thresh``, ``inh_refractory``, ``inh_e_exc``; conductance decays ``tau_ge``, ``tau_gi``; the
fixed weights ``w_ei`` (excitatory -> its inhibitory partner) and ``w_ie`` (inhibitory -> the other excitatory
neurons); the adaptive threshold ``theta_init``, ``theta_plus``, ``theta_offset``, ``tau_theta``; STDP ``tau_pre``,
``tau_post1``, ``tau_post2``, ``nu_pre``, ``nu_post``, ``w_max``; ``weight_sum`` (each neuron's input weights sum,
null: 78 per 784 inputs, scaled to the input size; at most ``inputs * w_max``); ``init_scale`` (weights start at
``(U[0, 1) + 0.01) * init_scale``); ``delay_max`` (input synapses delay by whole steps drawn uniformly from
``[0, delay_max)`` ms; 0: none); ``labels``: ``pass`` (after each epoch, every neuron takes the class it answers most
in one presentation of the training set with learning off and thresholds fixed: the paper's procedure) or ``blocks``
(the labels the authors' code keeps while learning, from blocks of ``label_window`` samples; no extra pass);
``label_window`` (the blocks, which also label the neurons during an epoch, for its running train accuracy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.jit import HAVE_NUMBA
from deepspike.core.options import check_ranges, check_unused, is_finite, is_whole
from deepspike.layers.wta_kernels import WtaConstants
from deepspike.layers.wta_stdp import CompetitiveStdpLayer, Presentation
from deepspike.methods.base import Method
from deepspike.methods.registry import register_method
from deepspike.models.spec import Architecture, Flatten, Linear

WEIGHT_SUM_PER_INPUT = 78.0 / 784.0  # Diehl & Cook: the weights into a neuron sum to 78 over MNIST's 784 inputs
PERIODS = ("present_ms", "rest_ms", "exc_tau", "exc_refractory", "inh_tau", "inh_refractory", "tau_ge", "tau_gi",
           "tau_theta", "tau_pre", "tau_post1", "tau_post2")
POTENTIALS = ("exc_rest", "exc_reset", "exc_thresh", "exc_e_exc", "exc_e_inh", "inh_rest", "inh_reset", "inh_thresh",
              "inh_e_exc", "theta_init", "theta_offset")
NONNEGATIVE = ("rate_step", "w_ei", "w_ie", "theta_plus", "nu_pre", "nu_post", "delay_max")
POSITIVE = ("dt", "rate_max", "w_max", "init_scale")
LABELINGS = ("pass", "blocks")  # how neurons get their labels after an epoch (WtaStdpMethod.end_training_pass)


@dataclass
class WtaStdpOptions:
    dt: float = 0.5
    present_ms: float = 350.0
    rest_ms: float = 150.0
    rate_max: float = 63.75
    rate_step: float = 31.875
    min_spikes: int = 5
    max_presentations: int = 10
    exc_tau: float = 100.0
    exc_rest: float = -65.0
    exc_reset: float = -65.0
    exc_thresh: float = -52.0
    exc_refractory: float = 5.0
    exc_e_exc: float = 0.0
    exc_e_inh: float = -100.0
    inh_tau: float = 10.0
    inh_rest: float = -60.0
    inh_reset: float = -45.0
    inh_thresh: float = -40.0
    inh_refractory: float = 2.0
    inh_e_exc: float = 0.0
    tau_ge: float = 1.0
    tau_gi: float = 2.0
    w_ei: float = 10.4
    w_ie: float = 17.0
    theta_init: float = 20.0
    theta_plus: float = 0.05
    theta_offset: float = 20.0
    tau_theta: float = 1e7
    tau_pre: float = 20.0
    tau_post1: float = 20.0
    tau_post2: float = 40.0
    nu_pre: float = 1e-4
    nu_post: float = 1e-2
    w_max: float = 1.0
    weight_sum: float | None = None
    init_scale: float = 0.3
    delay_max: float = 10.0
    labels: str = "pass"
    label_window: int = 10000

    def __post_init__(self) -> None:
        if self.labels not in LABELINGS:
            raise ConfigError(f"bad value {self.labels!r} for method.labels; valid: {', '.join(LABELINGS)}")
        checks = tuple((is_finite(getattr(self, k)) and getattr(self, k) >= 0, k, "a finite number >= 0")
                       for k in NONNEGATIVE)
        checks += tuple((is_finite(getattr(self, k)) and getattr(self, k) > 0, k, "a finite number > 0")
                        for k in POSITIVE + PERIODS)
        checks += tuple((is_finite(getattr(self, k)) and abs(getattr(self, k)) <= 1e6, k, "a finite number of mV")
                        for k in POTENTIALS)
        checks += ((self.weight_sum is None or 0 < self.weight_sum < math.inf, "weight_sum", "> 0 or null"),
                   (is_whole(self.min_spikes, 0), "min_spikes", "a whole number >= 0"),
                   (is_whole(self.max_presentations, 1, 1000), "max_presentations", "a whole number from 1 to 1000"),
                   (is_whole(self.label_window, 1, 10**7), "label_window", "a whole number from 1 to 10**7"))
        check_ranges(self, checks)
        for key in ("present_ms", "exc_refractory", "inh_refractory", "delay_max"):
            check_ranges(self, ((_steps(getattr(self, key), self.dt) is not None, key,
                                 f"a whole number of dt = {self.dt:g} ms steps"),))
        if _steps(self.delay_max, self.dt) > 256:
            raise ConfigError(f"bad value {self.delay_max!r} for method.delay_max: at most 256 steps of dt")
        if _steps(self.present_ms, self.dt) > 10**5:
            raise ConfigError(f"bad value {self.present_ms!r} for method.present_ms: at most 10**5 steps of dt")
        if self.dt > min(self.tau_ge, self.tau_gi):
            raise ConfigError(f"method.dt ({self.dt:g} ms) must be at most tau_ge and tau_gi (conductances decay by "
                              "forward Euler steps, 1 - dt / tau)")


def _steps(period: float, dt: float) -> int | None:
    """``period / dt`` when it is a whole number of steps (to rounding), else None."""
    steps = round(period / dt)
    return steps if abs(steps * dt - period) <= 1e-9 * max(period, 1.0) else None


def wta_constants(o: WtaStdpOptions) -> WtaConstants:
    """The kernels' constants of options ``o`` (refractory periods in steps)."""
    fields = {name: float(getattr(o, name)) for name in WtaConstants._fields if hasattr(o, name)}
    return WtaConstants(**fields, exc_refractory_steps=float(_steps(o.exc_refractory, o.dt)),
                        inh_refractory_steps=float(_steps(o.inh_refractory, o.dt)))


def column_sum(o: WtaStdpOptions, inputs: int) -> float:
    """What the ``inputs`` weights into a neuron are scaled to sum to: ``weight_sum``, or 78 per 784 inputs; a one-line
    error when ``inputs * w_max`` cannot reach it (every weight would start past ``w_max`` and be clipped at its first
    update, so the columns never keep their sum)."""
    total = o.weight_sum if o.weight_sum is not None else WEIGHT_SUM_PER_INPUT * inputs
    if total > inputs * o.w_max:
        raise ConfigError(f"method.weight_sum: the {inputs} input weights of a neuron cannot sum to {total:.4g} when "
                          f"each is at most method.w_max = {o.w_max:g} (their sum is at most {inputs * o.w_max:.4g}); "
                          "lower weight_sum or raise w_max")
    return total


def population_sizes(arch: Architecture) -> tuple[int, int, int]:
    """``(inputs, neurons, classes)`` of an architecture ``[Flatten], Linear(N), Linear(K, act=False)``; a one-line
    error for any other."""
    layers = arch.layers[1:] if arch.layers and isinstance(arch.layers[0], Flatten) else arch.layers
    plain = all(isinstance(layer, Linear) and not (layer.bias or layer.norm or layer.recurrent or layer.delayed
                                                       or layer.spike_delay) for layer in layers)
    if len(layers) != 2 or not plain or not layers[0].act or layers[1].act:
        raise ConfigError(f"method wta_stdp needs the model Flatten, Linear(N), Linear(classes, act=False) (model "
                          f"diehl_cook, or mlp with one hidden size, no bias, no spike_delay); {arch.name!r} is not")
    return math.prod(arch.input_shape), layers[0].out_features, layers[1].out_features


@register_method
class WtaStdpMethod(Method):
    """Unsupervised competitive STDP (Diehl & Cook 2015) with label voting; learns without gradients."""

    name = "wta_stdp"
    Options = WtaStdpOptions
    description = "unsupervised competitive STDP with adaptive thresholds and label voting (Diehl & Cook 2015)"
    init_sources = ()
    learns_locally = True

    def build(self, arch: Architecture) -> nn.Module:
        if not HAVE_NUMBA:
            raise ConfigError("method wta_stdp simulates its network in numba loops, about 600x slower in plain Python "
                              "(a Fashion-MNIST epoch: days): pip install 'deepspike[fast]'")
        o = self.options
        inputs, neurons, classes = population_sizes(arch)
        presentation = Presentation(
            steps=_steps(o.present_ms, o.dt), rest_ms=o.rest_ms, rate_max=o.rate_max, rate_step=o.rate_step,
            min_spikes=o.min_spikes, max_presentations=o.max_presentations, label_window=o.label_window,
            weight_sum=column_sum(o, inputs))
        return CompetitiveStdpLayer(inputs, neurons, classes, wta_constants(o), presentation, o.init_scale,
                                    o.theta_init, _steps(o.delay_max, o.dt))

    def check_options_used(self) -> None:
        """The repeat options set (not their defaults) where no sample is ever shown twice: ``rate_step`` and
        ``max_presentations`` with ``min_spikes: 0`` (every response has at least 0 spikes), ``rate_step`` and
        ``min_spikes`` with ``max_presentations: 1``. Refused for new runs (``core.options.check_unused``; the base's
        ``check_new_run`` calls this), so runs saved with one load."""
        o = self.options
        check_unused(o, ((("rate_step", "max_presentations"), o.min_spikes > 0, "method.min_spikes is above 0"),
                         (("rate_step", "min_spikes"), o.max_presentations > 1, "method.max_presentations is above 1")))

    def learn(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Learn from one training batch (``CompetitiveStdpLayer.learn``); returns its class scores ``[B, K]``."""
        return model.learn(x, y)

    def end_training_pass(self, model: nn.Module, batches) -> None:
        """Label the neurons after each epoch: by their responses to one more presentation of the training batches
        with learning off (``labels: pass``, the paper's procedure), or from the blocks (``labels: blocks``)."""
        if self.options.labels == "pass":
            model.label_by_responses(batches)
        else:
            model.assign_labels()

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """The class of the largest score of ``output [B, K]`` (ties: the lower class); -1, no decision, where no
        labelled neuron answered (every score 0), as the vote error counts it (1): not class 0."""
        return torch.where(output.sum(dim=1) > 0, output.argmax(dim=1), -1)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The vote error: the share of the class scores ``output [B, K]`` not on the target, ``1 - s_y / sum_k s_k``
        (1 where no labelled neuron answered), averaged over the batch; nothing is trained by it."""
        total = output.sum(dim=1)
        on_target = output.gather(1, target[:, None])[:, 0]
        share = torch.where(total > 0, on_target / total.clamp(min=1e-30), torch.zeros_like(total))
        return (1.0 - share).mean() if len(target) else output.sum() * 0.0

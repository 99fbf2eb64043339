"""Method ``stbp`` (Wu et al. 2019): iterative LIF, rectangular surrogate, BPTT, NeuNorm, encoding and voting.

Neuron (wu2019 eq. 5-6): ``u_t = k_tau1 u_{t-1} (1 - o_{t-1}) + I_t``, ``o_t = H(u_t - V_th)`` with the
surrogate ``h(u) = (1/a) 1[|u - V_th| < a/2]`` (eq. 14; ``surrogate_args: {a: ...}``), trained by backprop
through space and time (autograd through the neuron's loop over T).

- Encoding layer: with ``encoder: direct`` the first layer receives the analog image at every step; with
  ``encoder: frames`` it receives event frames ``[B, T, C, H, W]`` (neuromorphic data); ``delta``: ON/OFF spikes
  where an analog sequence changes (``coding.delta``); ``population``: each value spread over Gaussian receptive
  fields (``coding.population``; the architecture is built for the wider input, ``input_shape``: build it with
  ``create_model``, or for ``method.input_shape(shape)``); ``poisson`` and ``bipolar`` spikes, or an encoder of
  one's own registered with ``register_encoder`` (``methods.encoder_choice``).
- NeuNorm (``neunorm: true``, eq. 9-10, ``layers.neunorm``): the spikes of every convolutional layer that
  feeds another convolutional layer pass through ``o - U x`` with decay ``neunorm_decay`` (k_tau2).
- Voting layer (``vote_group: G``): the classifier gets ``K * G`` spiking neurons; class k scores the mean
  firing rate of its group; the loss is MSE to the one-hot label (eq. 11). ``G = 1`` is the plain rate
  readout. ``readout: membrane`` and ``loss: ce`` are offered as alternatives.
- ``readout: membrane`` integrates the classifier's currents, ``V_t = membrane_decay V_{t-1} + x_t``, and scores
  ``V_T / T`` (``membrane_decay`` 1, the default: the mean current; below 1: a leaky LI readout, as NIR's LI).
- Surrogate-gradient practice (SHD work, snnTorch, ``methods.stbp_training``): ``readout: max_membrane`` (a
  non-spiking leaky integrator ``V_t = readout_decay V_{t-1} + x_t``, score ``max_t V_t``; Cramer et al. 2020,
  Zenke & Vogels 2021), ``loss: mse_count`` (snnTorch's spike-count MSE: ``count_correct_rate``,
  ``count_incorrect_rate``) and ``rate_reg: l1 | l2 | band`` (``rate_reg_weight``, ``rate_reg_low``,
  ``rate_reg_high``), a penalty on the hidden layers' firing rates (``layers.rate_penalty``).
- STDP beside the gradient (``stdp_layers``, ``stdp_*``; ``layers.stdp``): chosen linear / convolutional layers learn
  by trace STDP, unsupervised, after every batch; the rest of the net trains by the loss.
- Direct training as the field does it now (``methods.stbp_training``): ``loss: tet`` (per-step cross-entropy,
  ``tet_lambda``, ``tet_phi``) and ``norm: none | bn | tdbn | tebn`` (``tdbn_alpha``): the kind of the
  model's batch-norm layers.
- Neuron (``neuron: lif | plif | psn | masked_psn | sliding_psn | synaptic | alif``, ``learn_threshold``,
  ``neuron_params: layer | channel | neuron``, ``tau_init``, ``psn_order``, ``syn_decay``, ``adapt_decay``,
  ``adapt_scale``, ``max_spikes``):
  the fixed LIF above (default), PLIF's learnable time constant, the parallel spiking neurons (whole, masked,
  sliding), the current-based LIF or the adaptive-threshold LIF; or a neuron of one's own registered with
  ``register_neuron`` (``methods.neuron_choice``). ``max_spikes: N`` lets hidden lif / synaptic neurons fire up to
  ``N`` spikes a step, as Xylo's do (``neurons.multi_spike``).
- Initialisation: ``w ~ N(0, init_kappa / fan_in)`` (default 2, He); ``null`` keeps torch's default. Our
  specs are bias-free while wu2019's code keeps biases; torch's default (variance ``1/(3 fan_in)``) then
  leaves deep layers silent at the start. ``init_from: FILE.nir`` starts the run from another tool's (or an
  exported) net: the recipe builds the same layers and neurons and the file's weights are copied in
  (``deploy.nir_init``; a layer or neuron constant that differs is a one-line error naming the recipe key).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from deepspike.coding.delta import DELTA_MODES
from deepspike.coding.encoder import ENCODERS
from deepspike.coding.population import BOHTE_WIDTH, check_population
from deepspike.core.errors import ConfigError, UnusedOptionError
from deepspike.layers.delays import DelayedLinear
from deepspike.layers.dropout import TimeFixedDropout
from deepspike.layers.neunorm import NeuNorm
from deepspike.layers.population_encoder import encoded_shape
from deepspike.layers.rate_penalty import HiddenRates
from deepspike.layers.readout import MaxMembraneReadout, MembraneReadout, SpikeRateReadout, step_mean
from deepspike.layers.recurrent import RecurrentSpiking
from deepspike.layers.spike_delay import SpikeDelay
from deepspike.layers.spiking_sequential import SpikingSequential
from deepspike.layers.stdp import WHOLE_SEQUENCE_REASON, StdpLearner
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.layers.voting import VotingReadout
from deepspike.methods.base import Method
from deepspike.methods.build import BuildRules, build_body
from deepspike.methods.encoder_choice import encoder_names, make_encoder
from deepspike.methods.init import check_init_kappa, init_weights
from deepspike.methods.neuron_choice import check_neuron_options, make_neuron
from deepspike.methods.rate_network import RateNetwork
from deepspike.methods.registry import register_method
from deepspike.methods.stbp_training import (
    MSE_COUNT_WINDOW,
    PER_STEP_LOSSES,
    STBP_LOSSES,
    check_norm_fits,
    check_norm_used,
    check_options_used,
    check_training_choices,
    norm_rule,
    rate_reg_penalty,
    stbp_loss,
    stdp_rule,
)
from deepspike.models.spec import Architecture, Linear

READOUTS = ("rate", "membrane", "max_membrane")


@dataclass
class StbpOptions:
    timesteps: int = 8
    eval_timesteps: int | None = None
    decay: float = 0.25
    threshold: float = 0.5
    reset: str = "zero"
    surrogate: str = "rectangular"
    surrogate_args: dict[str, Any] = field(default_factory=dict)  # the surrogate's own defaults (rectangular: a = 1)
    encoder: str = "direct"
    delta_threshold: float = 0.1  # encoder delta: the change that makes a spike (coding.delta)
    delta_off_spikes: bool = True  # encoder delta: -1 spikes for falls
    delta_mode: str = "step"  # encoder delta: step (x_t - x_{t-1}) | level (level crossing)
    population_size: int = 8  # encoder population: neurons per input value (coding.population)
    population_low: float = 0.0  # ... their centres evenly on [low, high]
    population_high: float = 1.0
    population_width: float = BOHTE_WIDTH  # ... each field's standard deviation, in spacings of the centres
    population_spikes: bool = False  # ... Bernoulli spikes of the responses instead of currents
    readout: str = "rate"
    loss: str = "mse"
    neunorm: bool = False
    neunorm_decay: float = 0.9
    vote_group: int = 1
    init_kappa: float | None = 2.0
    norm: str = "none"
    tdbn_alpha: float = 1.0
    tet_lambda: float = 0.0
    tet_phi: float = 1.0
    neuron: str = "lif"  # lif | plif | psn | masked_psn | sliding_psn | synaptic | alif | one registered
    learn_threshold: bool = False
    detach_reset: bool = False  # the spike in the reset is a constant in backward (SpikingJelly's; Spikformer: true)
    neuron_params: str = "layer"  # layer | channel | neuron
    tau_init: float = 2.0
    syn_decay: float = 0.5  # synaptic: the current's decay alpha = 1 - dt/tau_syn
    adapt_decay: float = 0.9  # alif: the adaptation trace's decay rho
    adapt_scale: float = 0.2  # alif: the threshold's rise per spike beta
    psn_order: int = 4  # masked_psn / sliding_psn: k, the inputs each step reads (itself and the k - 1 before)
    state_bits: int | None = None  # lif/synaptic: membrane on 2^bits levels (neurons.state_quant); null: float
    state_low: float = 0.0  # the levels reach th * state_low below -th
    state_high: float = 0.2  # ... and th * state_high above th (snnTorch's state_quant defaults)
    max_spikes: int = 1  # lif/synaptic hidden neurons: up to N spikes a step (Xylo's 31; neurons.multi_spike)
    readout_decay: float = 0.9  # max_membrane: V_t = decay V_{t-1} + x_t (exp(-1 ms / 10 ms) ~ 0.905, SpyTorch)
    membrane_decay: float = 1.0  # membrane: V_t = decay V_{t-1} + x_t, score V_T / T (1: the mean current)
    count_correct_rate: float = 1.0  # mse_count: wanted spikes per step of the label's output (snnTorch's default)
    count_incorrect_rate: float = 0.0  # mse_count: ... of the other outputs (snnTorch's default)
    rate_reg: str = "none"  # none | l1 | l2 | band: penalty on the hidden layers' firing rates (layers.rate_penalty)
    rate_reg_weight: float = 0.1
    rate_reg_low: float = 0.0  # band: per-neuron lower bound on the rate (0: no lower term)
    rate_reg_high: float = 0.1  # band: upper bound on a layer's mean rate per sample
    stdp_layers: list[int] = field(default_factory=list)  # linear/conv layers (0-based) learning by STDP (layers.stdp)
    stdp_decay_pre: float = 0.5  # the presynaptic trace's decay lambda_pre (SpikingJelly's tau_pre = 1/(1 - lambda))
    stdp_decay_post: float = 0.5  # the postsynaptic trace's decay lambda_post
    stdp_rate_plus: float = 1e-3  # eta_plus: potentiation per sample
    stdp_rate_minus: float = 1e-3  # eta_minus: depression per sample
    stdp_bounds: str = "soft"  # soft (multiplicative, w_max - W / W - w_min) | hard (additive, clipped)
    stdp_w_min: float = -1.0
    stdp_w_max: float = 1.0
    stdp_epochs: int | None = None  # learn by STDP in the first N epochs only (null: all)
    init_from: str | None = None  # a NIR file whose net (the same layers and neurons) the run starts from

    def __post_init__(self) -> None:
        if self.timesteps < 1 or (self.eval_timesteps is not None and self.eval_timesteps < 1):
            raise ConfigError(f"bad value for method.timesteps/eval_timesteps: expected >= 1, got "
                              f"{self.timesteps}/{self.eval_timesteps}")
        for key, value, valid in (("encoder", self.encoder, encoder_names()), ("readout", self.readout, READOUTS),
                                  ("loss", self.loss, STBP_LOSSES), ("delta_mode", self.delta_mode, DELTA_MODES)):
            if value not in valid:
                raise ConfigError(f"bad value {value!r} for method.{key}; valid: {', '.join(valid)}")
        try:
            check_population(self.population_size, self.population_low, self.population_high, self.population_width)
        except ConfigError as error:
            raise ConfigError(f"method.{error}") from None
        if not self.delta_threshold > 0:
            raise ConfigError(f"bad value {self.delta_threshold!r} for method.delta_threshold: expected > 0")
        if self.vote_group < 1:
            raise ConfigError(f"bad value {self.vote_group!r} for method.vote_group: expected >= 1")
        if self.vote_group > 1 and self.readout != "rate":
            raise UnusedOptionError("method.vote_group > 1 needs method.readout: rate (voting counts spikes)", "method",
                                    "vote_group", self.vote_group, 1, "method.readout=rate (voting counts spikes)")
        check_init_kappa(self.init_kappa)
        if not 0.0 <= self.neunorm_decay < 1.0:
            raise ConfigError(f"bad value {self.neunorm_decay!r} for method.neunorm_decay: expected in [0, 1)")
        check_training_choices(self)
        check_neuron_options(self)
        if self.init_from is not None and not str(self.init_from).lower().endswith(".nir"):
            raise ConfigError(f"bad value {self.init_from!r} for method.init_from: expected a NIR file (.nir) whose "
                              "net the run starts from")


def check_delays_fit(arch: Architecture, timesteps: int) -> None:
    """A one-line ``ConfigError`` when a ``Linear(delays=D)`` of ``arch`` has delays (up to ``D - 1`` steps) that a net
    run for ``timesteps`` steps could never deliver: ``D`` must be at most ``timesteps``."""
    longest = max((v.layer.delays for v in arch.visits() if isinstance(v.layer, Linear) and v.layer.delayed),
                  default=0)
    if longest > timesteps:
        raise ConfigError(f"Linear(delays={longest}) has delays of up to {longest - 1} steps, which a net run for "
                          f"method.timesteps={timesteps} steps would deliver after its end: give delays <= {timesteps}")


def voting_architecture(arch: Architecture, group: int) -> Architecture:
    """``arch`` with its classifier widened from K to ``K * group`` outputs (the voting population)."""
    if group == 1:
        return arch
    last = arch.layers[-1]
    if not isinstance(last, Linear) or last.act:
        raise ConfigError(f"voting needs a model ending in a Linear classifier; {arch.name!r} ends in {last}")
    layers = (*arch.layers[:-1], replace(last, out_features=arch.num_classes * group))
    return Architecture(arch.name, layers, arch.input_shape, arch.num_classes * group)


def _count_map_activations(arch: Architecture) -> int:
    """How many activations of ``arch`` see feature maps ``(C, H, W)`` (a dry walk of the builder)."""
    shapes: list[tuple[int, ...]] = []
    build_body(arch, BuildRules(activation=lambda shape: shapes.append(shape) or nn.Identity(),
                                recurrent=lambda module, shape: nn.Identity(),  # recurrent layers are (F,)
                                norm=lambda shape: nn.Identity(),
                                attention_neuron=lambda fraction, shape: nn.Identity(),
                                lone_activation=lambda shape: nn.Identity(),  # not counted: no NeuNorm after them
                                delayed=lambda *sizes: nn.Identity(), spike_delay=nn.Identity))
    return sum(len(s) == 3 for s in shapes)


@register_method
class StbpMethod(Method):
    name = "stbp"
    Options = StbpOptions
    description = "wu2019 STBP: iterative LIF, rectangular surrogate, BPTT; NeuNorm, encoding layer, voting"
    init_sources = ()  # no runs: a NIR file (method.init_from, deploy.nir_init)
    init_files = (".nir",)

    def neuron(self, inplace: bool = False, shape: tuple[int, ...] | None = None) -> nn.Module:
        """The neuron layer (``method.neuron``, ``methods.neuron_choice``) after a layer whose one-sample output
        is ``shape``; ``inplace`` for body neurons, whose input is always a fresh layer output."""
        return make_neuron(self.options, shape, inplace)

    def _attention_neuron(self, fraction: float, shape: tuple[int, ...]) -> nn.Module:
        """The neuron after an attention product: ``method.neuron`` at ``fraction`` of ``method.threshold``."""
        return make_neuron(replace(self.options, threshold=self.options.threshold * fraction), shape, inplace=True,
                           max_spikes=1)  # one spike a step (the products assume binary spikes)

    def _output_neuron(self, classes: int) -> nn.Module:
        """The readout's neurons: ``method.neuron`` with one spike a step (``max_spikes`` is for hidden layers)."""
        return make_neuron(self.options, (classes,), max_spikes=1)  # options not copied: validated once a run

    @property
    def reads_sequences(self) -> bool:
        """With the ``frames``, ``delta`` or ``population`` encoder, or an encoder of one's own."""
        return self.options.encoder not in ENCODERS

    def input_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """``shape`` widened ``population_size`` times on its first axis under ``encoder: population``."""
        o = self.options
        return encoded_shape(shape, o.population_size) if o.encoder == "population" else shape

    def build(self, arch: Architecture) -> nn.Module:
        o = self.options
        num_classes = arch.num_classes
        check_norm_fits(o.norm, arch)
        check_delays_fit(arch, o.timesteps)
        arch = self.built_architecture(arch)
        # NeuNorm sits on every conv layer's spikes except the last map layer's (which feeds the FC part).
        normed = _count_map_activations(arch) - 1 if o.neunorm else 0
        seen = [0]

        def activation(shape: tuple[int, ...]) -> nn.Module:
            if len(shape) == 3:
                seen[0] += 1
                if seen[0] <= normed:
                    return nn.Sequential(self.neuron(True, shape), NeuNorm(shape, o.neunorm_decay))
            return self.neuron(True, shape)

        rules = BuildRules(activation=activation, wrap=TimeDistributed, dropout=TimeFixedDropout, channel_dim=2,
                           sequential=SpikingSequential, norm=norm_rule(o),  # neuron + tiling avg pool: one kernel
                           recurrent=lambda module, shape: RecurrentSpiking(module, self.neuron(shape=shape), shape[0]),
                           delayed=DelayedLinear, attention_neuron=self._attention_neuron,
                           lone_activation=lambda shape: self.neuron(False, shape),  # its input feeds a shortcut too
                           spike_delay=SpikeDelay)
        body = build_body(arch, rules)
        if o.init_kappa is not None:
            init_weights(body, o.init_kappa)
        network = self._network(body, num_classes)
        if o.stdp_layers:
            network.stdp = StdpLearner.attach(network, body, tuple(o.stdp_layers), stdp_rule(o), o.stdp_epochs)
        return network

    def _network(self, body: nn.Module, num_classes: int) -> RateNetwork:
        """The ``RateNetwork`` of ``body`` ``[T, B, ...] -> [T, B, num_classes]``: encoder, readout
        (``method.readout``, ``method.vote_group``), and what the loss and ``method.rate_reg`` ask of it."""
        o = self.options
        if o.readout == "membrane":
            readout: nn.Module = MembraneReadout(o.membrane_decay)
        elif o.readout == "max_membrane":
            readout = MaxMembraneReadout(o.readout_decay)
        elif o.vote_group > 1:
            readout = VotingReadout(self._output_neuron(num_classes), num_classes)
        else:
            readout = SpikeRateReadout(self._output_neuron(num_classes))
        network = RateNetwork(make_encoder(o), body, readout, o.timesteps, o.eval_timesteps)
        network.per_step = o.loss in PER_STEP_LOSSES
        network.whole_window_loss = MSE_COUNT_WINDOW if o.loss == "mse_count" else None
        if o.rate_reg != "none":
            network.hidden_rates = HiddenRates.attach(network, body)
        return network

    def options_probe(self) -> RateNetwork:
        """A net of one hidden neuron (``method.neuron``) and one class, with the readout and the marks of the loss,
        ``method.rate_reg`` and STDP (``method.stdp_layers``) that ``build`` gives any net of these options: what the
        options alone decide of a net (``training.temporal_grad.check_settings_before_data``), before the data (and
        so the architecture) is known."""
        probe = self._network(nn.Sequential(self.neuron(shape=(1,))), 1)
        if self.options.stdp_layers:  # what StdpLearner.attach marks (its layers are the model's)
            probe.trains_on_whole_sequences = WHOLE_SEQUENCE_REASON
        return probe

    def check_options_fit(self, arch: Architecture) -> None:
        """``method.norm`` naming batch-norm layers the model does not have (``check_norm_used``) or NeuNorm on a model
        where it would sit nowhere (fewer than two convolutional layers): refused for new runs (the base's
        ``check_new_run``, after ``check_options_used``), so runs saved with one still load."""
        check_norm_used(self.options.norm, arch)
        if self.options.neunorm and _count_map_activations(self.built_architecture(arch)) < 2:  # build's NeuNorm count
            raise UnusedOptionError(f"method.neunorm=true normalises the spikes of a convolutional layer that feeds "
                                    f"another, and model {arch.name!r} has none: set method.neunorm: false, or use a "
                                    "model with two or more convolutional layers", "method", "neunorm", True, False,
                                    f"the model has two or more convolutional layers (model {arch.name!r} has fewer)")

    def check_options_used(self) -> None:
        """An option set for a feature that is off (``stbp_training.check_options_used``)."""
        check_options_used(self.options)

    def built_architecture(self, arch: Architecture) -> Architecture:
        """``arch`` with its classifier widened to ``K * vote_group`` outputs (``voting_architecture``)."""
        return voting_architecture(arch, self.options.vote_group)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return stbp_loss(self.options, output, target)

    def loss_at(self, output: torch.Tensor, target: torch.Tensor, timesteps: int | None) -> torch.Tensor:
        """``loss`` of rates ``[B, K]`` of a net run for ``timesteps`` steps: ``mse_count``'s counts and targets are
        those of that T (``c = r T``, ``c* = T rate``), not of ``eval_timesteps``."""
        return stbp_loss(self.options, output, target, timesteps)

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        """``method.rate_reg`` on the hidden firing rates of the last training call (None when off)."""
        return rate_reg_penalty(self.options, model)

    def after_backward(self, model: nn.Module) -> None:
        """The STDP step of ``method.stdp_layers`` for the batch just run (``layers.stdp``)."""
        learner = getattr(model, "stdp", None)
        if learner is not None:
            learner.apply()

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """The largest score of the mean output (per-step scores ``[T, B, K]`` are averaged over T first,
        ``class_scores``)."""
        return self.class_scores(output).argmax(dim=1)

    def class_scores(self, output: torch.Tensor) -> torch.Tensor:
        """The readout's scores ``[B, K]`` the loss takes (rates, the membrane's ``V_T / T``); per-step scores
        ``[T, B, K]`` (TET, mse_count) averaged over T in float32 at least (``layers.readout.step_mean``: a bfloat16
        mean merged neighbouring spike counts into ties)."""
        return step_mean(output) if output.dim() == 3 else output

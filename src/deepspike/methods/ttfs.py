"""Method ``ttfs`` (Zhou et al. 2021): closed-form single-spike TTFS network with the exp synaptic kernel.

Every conv/linear layer of the spec becomes a layer of non-leaky IF neurons that fire once, with an
exponentially decaying synaptic current (tau = theta = 1) and a bias input spike at t = 0; its spike
times come from the closed form ``exp(t_j/tau) = sum_C w_ji exp(t_i/tau) / (sum_C w_ji - theta)``
(eq. 4) with exact gradients (``deepspike.ttfs``). Pooling: max = earliest spike, avg = zhou2021's
neuron with weights theta/(N-1). Optional time-domain batch-norm (eq. 6) after conv layers.

Input coding ``t = alpha (1 - p)`` (MNIST, alpha 3) or ``t = alpha p`` (CIFAR-10); optional input jitter.
Loss (``loss``): ``zhou_code`` (softmax over -z, the released code; default) or ``zhou_paper`` (eq. 5 as
printed); ``penalty`` adds ``K`` x weight-sum cost and ``lambda`` x L2 (``reg_reduction``: mean as in the
code or sum as in eq. 5) to the training loss; ``after_backward`` clips each weight matrix's gradient to a
row-normalised Frobenius norm of ``grad_clip_rows`` (paper: 10).
Prediction: the class whose output neuron fires first (ties: lowest index; no output spike: -1, wrong).

Trainer hooks used: ``penalty(model)``, ``after_backward(model)`` and ``epoch_measures(model, batches)``
(the spiking measures of ``ttfs.measures``, recorded by ``methods.ttfs_measures``: latency, sparsity,
hidden-before-decision, dead neurons).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from deepspike.coding.decoders import first_spike_class
from deepspike.coding.latency import ALPHA_LOW
from deepspike.coding.ttfs_input import CODINGS, TTFSInput
from deepspike.core.errors import unknown_choice
from deepspike.core.options import FLOAT32_MAX, check_ranges, check_unused
from deepspike.layers.neuron_kinds import ttfs_neuron_layers
from deepspike.methods.base import INIT_FROM_EXPECTED, Method
from deepspike.methods.registry import register_method
from deepspike.methods.ttfs_measures import collect_measures
from deepspike.methods.ttfs_network import TTFSConfig, build_ttfs_network, init_from_ann
from deepspike.models.fold import map_weighted
from deepspike.models.spec import Architecture, Conv
from deepspike.ttfs._validate import BACKENDS, KERNELS, check_neuron_params
from deepspike.ttfs.losses import (
    REDUCTIONS,
    TTFS_LOSSES,
    clip_row_normalized,
    l2_cost,
    ttfs_loss,
    weight_sum_cost,
)


@dataclass
class TtfsOptions:
    """Options of the TTFS methods (the ``method`` section of a recipe); defaults are zhou2021's MNIST ones.

    kernel: ``exp`` (zhou2021) or ``relpsp`` (zhang2021); theta, tau: threshold and synaptic time constant.
    coding: ``1-p``, ``p`` or ``255``; alpha: time scale of the input code; jitter: std of the Gaussian
    input jitter in training. loss: ``zhou_code``, ``zhou_paper`` or ``ce`` (softmax over -t).
    weight_sum_cost: K; l2: lambda; reg_reduction: ``mean`` | ``sum``. grad_clip_rows: max row-normalised
    Frobenius norm of each weight gradient (null = off). bias: bias input spike at t = 0.
    init_scale: weights ~ U(0, init_scale / fan_in). init_from: an ``ann`` run directory of the same
    model whose weights initialise the network (zhang2021). batchnorm: time-domain BN after conv layers.
    t_silent: time a silent output counts as in the loss. theta, tau, weight_sum_cost, l2, init_scale and t_silent are
    float32 numbers (at most ``FLOAT32_MAX`` in size: the weights, times and losses are float32). measures: compute
    ``epoch_measures``; measure_batches: at most this many batches for them (null = all). backend: ``auto``,
    ``numba``, ``torch``.
    """

    kernel: str = "exp"
    theta: float = 1.0
    tau: float = 1.0
    coding: str = "1-p"
    alpha: float = 3.0
    jitter: float = 0.0
    loss: str = "zhou_code"
    weight_sum_cost: float = 100.0
    l2: float = 1e-3
    reg_reduction: str = "mean"
    grad_clip_rows: float | None = 10.0
    bias: bool = True
    init_scale: float = 8.0
    init_from: str | None = None
    batchnorm: bool = False
    t_silent: float = math.log(1e5)
    measures: bool = True
    measure_batches: int | None = None
    backend: str = "auto"

    def __post_init__(self) -> None:
        check_neuron_params(self.kernel, self.theta, self.tau)
        for value, valid, kind in ((self.kernel, KERNELS, "TTFS kernel"),
                                   (self.coding, CODINGS, "TTFS coding"),
                                   (self.loss, TTFS_LOSSES, "TTFS loss"),
                                   (self.reg_reduction, REDUCTIONS, "method.reg_reduction"),
                                   (self.backend, BACKENDS, "TTFS backend")):
            if value not in valid:
                raise unknown_choice(kind, value, valid)
        most = f"at most float32's {FLOAT32_MAX:.4g}"
        checks = (
            (self.theta <= FLOAT32_MAX, "theta", most), (self.tau <= FLOAT32_MAX, "tau", most),
            (ALPHA_LOW <= self.alpha <= FLOAT32_MAX, "alpha", f"in [{ALPHA_LOW:.4g}, {FLOAT32_MAX:.4g}] (float32's "
             "normal numbers: a smaller alpha makes every input time 0 or subnormal)"),
            (self.jitter >= 0, "jitter", ">= 0"),
            (0 <= self.weight_sum_cost <= FLOAT32_MAX, "weight_sum_cost", f">= 0 and {most}"),
            (0 <= self.l2 <= FLOAT32_MAX, "l2", f">= 0 and {most}"),
            (self.grad_clip_rows is None or self.grad_clip_rows > 0, "grad_clip_rows", "> 0 or null"),
            (0 < self.init_scale <= FLOAT32_MAX, "init_scale", f"> 0 and at most float32's {FLOAT32_MAX:.4g}"),
            (abs(self.t_silent) <= FLOAT32_MAX, "t_silent", f"a time of float32's range (|t| <= {FLOAT32_MAX:.4g})"),
            (self.measure_batches is None or self.measure_batches >= 1, "measure_batches", ">= 1 or null"),
            (self.init_from is None or self.init_from.strip() != "", "init_from", INIT_FROM_EXPECTED),
        )
        check_ranges(self, checks)


@register_method
class TtfsMethod(Method):
    """zhou2021: closed-form TTFS layers with the exponentially decaying synaptic kernel."""

    name = "ttfs"
    Options = TtfsOptions
    description = "single-spike TTFS, closed-form exp-kernel IF neurons (zhou2021)"
    autocasts = False  # its layers are closed-form kernels on float32 times; autocast casts none of their inputs

    def build(self, arch: Architecture) -> nn.Module:
        o = self.options
        cfg = TTFSConfig(o.kernel, o.theta, o.tau, o.bias, o.backend, o.init_scale, o.batchnorm)
        return build_ttfs_network(arch, cfg, TTFSInput(o.coding, o.alpha, o.jitter))

    def built_architecture(self, arch: Architecture) -> Architecture:
        """``arch`` with every conv and linear layer biased as ``method.bias`` says, as ``build`` makes them (the
        weight of a bias spike at t = 0 per neuron or channel, whatever the spec's ``bias``): the parameter count and
        ``analyze``'s mesh left the biases out (zhou2021_mnist: 21,440 where the net holds 21,498)."""
        biased = map_weighted(arch.layers, lambda layer: replace(layer, bias=self.options.bias))
        return Architecture(arch.name, biased, arch.input_shape, arch.num_classes)

    def init_from_ann(self, model: nn.Module, ann_state: dict[str, torch.Tensor]) -> None:
        """Copy the weights of a same-shape trained ANN (``method.init_from``, loaded by ``train``)."""
        init_from_ann(model, ann_state)

    def check_options_fit(self, arch: Architecture) -> None:
        """``batchnorm`` on a model without convolutional layers (it normalises their outputs only): a setting the run
        would ignore (``core.options.check_unused``; the base's ``check_new_run`` calls this after
        ``check_options_used``)."""
        check_unused(self.options, ((("batchnorm",), arch.contains(Conv),
                                     f"the model has convolutional layers (model {arch.name!r} has none)"),))

    def check_options_used(self) -> None:
        """``method.reg_reduction`` without a regulariser (``weight_sum_cost`` and ``l2`` both 0), ``measure_batches``
        with ``measures: false`` or ``tau`` where nothing has a time constant (relpsp neurons, ``V(t) = sum_C w_i (t -
        t_i)``, the ``ce`` loss of ``-t`` and no time-domain batch-norm): settings the run would ignore
        (``core.options.check_unused``; ``check_new_run``)."""
        o = self.options
        check_unused(o, ((("reg_reduction",), o.weight_sum_cost != 0 or o.l2 != 0,
                          "method.weight_sum_cost or method.l2 is above 0"),
                         (("tau",), o.kernel == "exp" or o.loss != "ce" or o.batchnorm,
                          "method.kernel=exp, method.loss=zhou_code or zhou_paper, or method.batchnorm=true (relpsp "
                          "neurons and the ce loss have no time constant)"),
                         (("measure_batches",), o.measures, "method.measures=true")))

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Output-time loss ``options.loss`` (``ttfs.losses.ttfs_loss``) of times ``[B, K]``."""
        o = self.options
        return ttfs_loss(o.loss, output, target, o.tau, o.t_silent)

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        """``K * weight_sum_cost + lambda * l2_cost`` over the TTFS neuron layers; None when both are 0."""
        o = self.options
        layers = [m for _, m in ttfs_neuron_layers(model)]
        if not layers or (o.weight_sum_cost == 0 and o.l2 == 0):
            return None
        reg = torch.zeros((), device=layers[0].weight.device)
        if o.weight_sum_cost:
            reg = reg + o.weight_sum_cost * weight_sum_cost(layers, o.theta, o.reg_reduction)
        if o.l2:
            reg = reg + o.l2 * l2_cost(layers, o.reg_reduction)
        return reg

    def after_backward(self, model: nn.Module) -> None:
        """zhou2021's clip (``grad_clip_rows``) of every neuron layer's weight and bias gradient."""
        if self.options.grad_clip_rows is None:
            return
        with torch.no_grad():
            for _, layer in ttfs_neuron_layers(model):
                for w in layer.weights():
                    if w.grad is not None:
                        w.grad.copy_(clip_row_normalized(w.grad, self.options.grad_clip_rows))

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """The earliest output spike's class ``[B]``; ties -> lowest index; no output spike -> -1."""
        return first_spike_class(output)

    def epoch_measures(self, model: nn.Module, batches) -> dict[str, float]:
        """Latency, spiking fractions, hidden-before-decision, dead neurons (``ttfs.measures``)."""
        if not self.options.measures:
            return {}
        return collect_measures(model, batches, self.options.measure_batches)


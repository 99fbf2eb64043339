"""Learnable synaptic delays (Hammouamri, Khalfaoui-Hassani & Masquelier, ICLR 2024: DCLS delays).

A fully connected layer whose synapse ``n -> m`` has a weight ``w[m, n]`` and a delay ``d[m, n]`` in steps, at most
``D - 1``: a spike of input ``n`` at step ``t`` reaches neuron ``m`` at step ``t + d[m, n]``::

    y[t, b, m] = bias[m] + sum_n w[m, n] x[t - d[m, n], b, n]          (x before step 0 is 0)

To learn ``d`` by gradient descent each synapse spreads its weight over the ``D`` possible delays with a Gaussian
of width ``sigma`` around its real-valued position ``p[m, n]`` (clamped to ``[0, D - 1]``)::

    K[m, n, k] = w[m, n] g_k / sum_j g_j,   g_k = exp(-(k - p[m, n])^2 / (2 sigma^2)),   k = 0 .. D - 1
    y[t, b, m] = bias[m] + sum_n sum_k K[m, n, k] x[t - k, b, n]

a causal 1-D convolution over time with kernel ``K [M, N, D]``. ``sigma`` starts wide (``D / 2``: every delay gets
some gradient) and shrinks each epoch, ``sigma_e = sigma_0 (sigma_end / sigma_0)^(e / E)`` over the first quarter of
the epochs (``sigma_0 = D // 2``, ``E = epochs // 4``, at least 1, as the paper's code sets them), then stays at
``sigma_end = 0.23``, where a position on a whole step puts
all but 2e-4 of its weight on that one delay (the paper's schedule and constants); ``begin_epoch`` sets it. The
positions learn with a larger step than the weights (``lr_scale`` on the parameter, 100 in the paper;
``training.optim``).
While training, each forward pass first puts positions that an update moved out of ``[0, D - 1]`` back on its
nearest end (the paper's ``clamp_parameters``), so they keep learning. ``discrete_delays()`` gives the rounded
delays ``[M, N]``; the trained layer itself runs the Gaussian kernel at ``sigma_end`` around the unrounded
positions (a position near a half step splits its weight over two delays); ``round_delays_()`` turns it into the
discrete-delay layer (each synapse delivers once, ``d`` steps late), as hardware would run it; ``round_all_delays_``
does it to every delayed layer of a net (``deepspike eval RUN --round-delays``).

Memory: the kernel ``[M, N, D]`` is built at every forward pass (with its Gaussian and gradient), so ``D`` is
bounded by ``MAX_DELAY``.

The layer needs the whole sequence at once: checkpointed BPTT, SLTT, OTTT, e-prop and streaming refuse nets holding it
(``whole_sequence``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_whole
from deepspike.core.precision import at_least_float32

MAX_DELAY = 1024
"""The largest ``D`` (steps) a layer accepts."""
SIGMA_END = 0.23
"""The final Gaussian width (steps), the paper's."""
ONE_HOT_SIGMA = 0.05
"""A width at which a whole-step position's neighbours get exp(-200) of its weight: a one-hot kernel in float32."""
POSITION_LR_SCALE = 100.0
"""How much faster the positions learn than the weights (the paper's ``lr_pos = 100 lr_w``)."""


class DelayPosition(nn.Parameter):
    """The positions ``p [M, N]`` of a delayed layer: a parameter that learns ``lr_scale`` times faster than the
    weights (``training.optim.make_optimizer``); a class attribute, so deep copies of the module keep it (the
    library saves state dicts, which hold the values only)."""

    lr_scale = POSITION_LR_SCALE


class DelayedLinear(nn.Module):
    """``x [T, B, N] -> y [T, B, M]`` through weights ``w [M, N]`` and learnable delays of ``0 .. max_delay - 1``
    steps (module docstring). ``max_delay = D >= 1``; ``D = 1`` is a plain linear layer."""

    whole_sequence = True  # a convolution over time: cannot run a step at a time

    def __init__(self, in_features: int, out_features: int, max_delay: int, bias: bool = False) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not is_whole(value, 1):
                raise ConfigError(f"DelayedLinear {name}={value!r} must be a whole number >= 1")
        if not is_whole(max_delay, 1, MAX_DELAY):
            raise ConfigError(f"max_delay must be an integer from 1 to {MAX_DELAY} (steps), got {max_delay!r}")
        self.in_features, self.out_features, self.max_delay = in_features, out_features, max_delay
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Linear's default
        self.position = DelayPosition(torch.rand(out_features, in_features) * (max_delay - 1))  # uniform delays
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.register_buffer("sigma", torch.tensor(self.sigma_start))

    @property
    def sigma_start(self) -> float:
        """The first epoch's Gaussian width, ``D // 2`` (at least ``SIGMA_END``)."""
        return max(float(self.max_delay // 2), SIGMA_END)

    def begin_epoch(self, epoch: int, epochs: int) -> None:
        """Set ``sigma`` for 0-based ``epoch`` of ``epochs`` (module docstring's schedule)."""
        shrink_epochs = max(1, epochs // 4)
        start = self.sigma_start
        sigma = start * (SIGMA_END / start) ** min(epoch / shrink_epochs, 1.0)
        self.sigma.fill_(max(sigma, SIGMA_END))

    def kernel(self) -> torch.Tensor:
        """``K [M, N, D]``: each weight spread over the delays ``k = 0 .. D - 1`` by the normalised Gaussian; computed
        in float32 at least (bfloat16 holds the steps above 256 only to even numbers: delays there would land on
        neighbouring steps)."""
        dtype = at_least_float32(self.weight.dtype)
        k = torch.arange(self.max_delay, dtype=dtype, device=self.weight.device)
        # a copy: the clamp saves its input for backward, and forward's in-place clamp_ of the positions while
        # training would otherwise void the graph of an earlier call not yet backpropagated
        p = self.position.to(dtype, copy=True).clamp(0, self.max_delay - 1)[..., None]  # [M, N, 1]
        g = torch.exp(-((k - p) ** 2) / (2 * self.sigma.to(dtype) ** 2))  # [M, N, D]
        return self.weight.to(dtype)[..., None] * g / g.sum(-1, keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.in_features:
            raise ConfigError(f"DelayedLinear({self.in_features}, {self.out_features}) needs [T, B, "
                              f"{self.in_features}] sequences; got shape {tuple(x.shape)}")
        if not x.is_floating_point():  # the kernel would be cast to it: an integer kernel truncates its weights to 0
            raise ConfigError(f"DelayedLinear needs floating-point input (float16, bfloat16, float32 or float64), got "
                              f"{x.dtype}")
        if self.training:  # an update may have moved positions past an end: back onto it (they keep learning)
            with torch.no_grad():
                self.position.clamp_(0, self.max_delay - 1)
        t = x.shape[0]
        # [B, N, D - 1 + T]: zeros before step 0 (and one after when T = 0, for conv1d's window of D; cut off below)
        series = F.pad(x.permute(1, 2, 0), (self.max_delay - 1, int(t == 0)))
        # conv1d correlates: out[t] = sum_j W[j] series[t + j] = sum_k W[D-1-k] x[t - k], so the kernel is flipped
        bias = None if self.bias is None else self.bias.to(x.dtype)  # the kernel's dtype: conv1d takes one
        y = F.conv1d(series, self.kernel().flip(-1).to(x.dtype), bias)  # [B, M, T]
        return y[..., :t].permute(2, 0, 1).contiguous()  # [T, B, M]

    @torch.no_grad()
    def round_delays_(self) -> DelayedLinear:
        """Make the layer the discrete-delay layer it stands for: positions rounded to whole steps and a width at
        which the kernel is one-hot (to float32 precision), so each synapse delivers once, ``d = discrete_delays()``
        steps late; returns ``self``. For inference and analysis: training again resets the width by the schedule
        (``begin_epoch``)."""
        self.position.copy_(self.discrete_delays().to(self.position.dtype))
        self.sigma.fill_(ONE_HOT_SIGMA)
        return self

    def discrete_delays(self) -> torch.Tensor:
        """The delays ``[M, N]`` (int64 steps) the positions round to."""
        return self.position.detach().clamp(0, self.max_delay - 1).round().long()

    def extra_repr(self) -> str:
        return (f"{self.in_features}, {self.out_features}, max_delay={self.max_delay}, "
                f"bias={self.bias is not None}, sigma={float(self.sigma):.3g}")


def round_all_delays_(model: nn.Module) -> int:
    """``round_delays_()`` on every ``DelayedLinear`` in ``model`` (in place: round a loaded or copied net, not the
    one a run keeps training); returns how many layers it rounded (0: the net has no delays)."""
    layers = [m for m in model.modules() if isinstance(m, DelayedLinear)]
    for layer in layers:
        layer.round_delays_()
    return len(layers)

"""The layer specs an architecture is made of: plain frozen dataclasses, no shapes, no walking.

Conventions:
- ``Conv`` and ``Linear`` with ``act=True`` are followed by the method's nonlinearity (ReLU, a spiking
  neuron, a TTFS layer's firing). The final classifier layer has ``act=False``: the method decides
  the readout.
- ``norm=True`` puts a batch-norm between the layer and its nonlinearity (``conv -> BN -> act``). Methods
  that cannot build one refuse the model; conversion folds it into the layer's weight and bias
  (``models.fold.fold_batch_norms``).
- ``Residual``: ``out = act(body(x) + shortcut(x))``; an empty shortcut is the identity. With ``connect`` set
  (SEW-ResNet, Fang et al. NeurIPS 2021) it is ``out = g(body(x), shortcut(x))`` with no activation after
  the junction: the body and a non-empty shortcut end in activated layers (spikes; currents in a membrane shortcut,
  below), ``g`` is ``add``
  (``A + S``), ``and`` (``A S``) or ``iand`` (``(1 - A) S``).
- ``Concat``: the branches run on the same input; their outputs are concatenated on the channel axis.
- ``Linear(..., recurrent=True)``: a recurrent spiking layer; ``Linear(..., delays=D)``: learnable synaptic delays
  (``Linear``'s docstring).
- ``Attention``: spiking self-attention over the positions of a map (its docstring). Spikformer's SSA holds its own
  projections, batch-norms and neurons and ends in spikes, so it sits in a SEW ``Residual`` body; the Spike-driven
  Transformer's SDSA ends in currents (membrane shortcut, below).
- ``Activation``: the method's nonlinearity on its own (a spiking neuron in SNN methods). It builds the
  membrane-shortcut ("MS") residual of MS-ResNet and the Spike-driven Transformer: ``x + body(x)`` as a SEW ``add``
  junction whose body opens with ``Activation()`` and ends in a layer with ``act=False``, so the residual stream
  carries currents (membrane potentials) and every convolution reads spikes.
Shapes are per sample: ``(C, H, W)`` for images, ``(F,)`` after ``Flatten``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from deepspike.core.errors import ConfigError, check_pool_padding
from deepspike.core.options import is_finite, is_whole


def check_whole(spec, name: str, low: int) -> None:
    """A one-line ``ConfigError`` unless field ``name`` of layer ``spec`` is a whole number >= ``low`` (a float or
    text channel count crashed torch; 0 channels built an empty layer; a kernel of 0 divided by zero)."""
    value = getattr(spec, name)
    if not is_whole(value, low):
        raise ConfigError(f"{spec}: {name} must be a whole number >= {low}, got {value!r}")


def check_flags(spec, *names: str) -> None:
    """A one-line ``ConfigError`` unless each field in ``names`` of layer ``spec`` is True or False: ``Conv(8, 3,
    bias="no")`` built a biased conv (any non-empty text is true), ``Linear(16, recurrent=1)`` a recurrent layer."""
    for name in names:
        value = getattr(spec, name)
        if not isinstance(value, bool):
            raise ConfigError(f"{spec}: {name} must be True or False, got {value!r}")


def check_layers(block, name: str, layers) -> None:
    """A one-line ``ConfigError`` unless ``layers`` (a block's branch ``name``) is a tuple or list: ``Residual((Conv(8,
    3)))``, the comma forgotten, passed the layer itself, which the walk then failed to iterate (TypeError)."""
    if not isinstance(layers, tuple | list):
        raise ConfigError(f"{type(block).__name__}: {name} must be a tuple of layer specs, got {layers!r} (a one-layer "
                          "tuple needs its comma: (layer,))")


@dataclass(frozen=True)
class Conv:
    """2-D convolution, bias-free by default (the papers' nets are bias-free or use bias spikes).

    ``norm_scale``: the batch-norm's initial weight times this (MS-ResNet's code starts its batch-norms at 0.5 and the
    last of each unit at 0, so that a unit begins as the identity); 1 keeps the method's own initialisation.
    """

    out_channels: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    act: bool = True
    bias: bool = False
    norm: bool = False
    norm_scale: float = 1.0

    def __post_init__(self) -> None:
        for name, low in (("out_channels", 1), ("kernel_size", 1), ("stride", 1), ("padding", 0)):
            check_whole(self, name, low)
        check_flags(self, "act", "bias", "norm")
        value = self.norm_scale
        if not is_finite(value) or value < 0:
            raise ConfigError(f"{self}: norm_scale must be a finite number >= 0")


@dataclass(frozen=True)
class Linear:
    """Fully connected layer; ``act=False`` marks the classifier output.

    ``recurrent=True``: the layer's neurons also receive their own spikes of the step before through a second
    weight ``V [M, M]`` (an Elman-style spiking recurrent layer, snnTorch's ``RLeaky``, Norse's
    ``LIFRecurrent``): ``I_t = W x_t + V s_{t-1}`` (``s_{-1} = 0``), ``s_t = neuron(I_t)``. Only time-stepped
    methods build it (the others refuse the spec); it needs ``act=True`` (the spikes it feeds back) and no
    batch-norm between the sum and the neuron.

    ``delays=D`` (2 to 1024; 0 or 1: none): every synapse also has a learnable delay of 0 to ``D - 1`` steps
    (``layers.delays``: ``y_t = sum_n w_mn x_{t - d_mn}``); time-stepped methods that see the whole sequence build it
    (stbp), the others refuse the spec. Not together with ``recurrent``.

    ``spike_delay=1`` (0: none): the layer's spikes reach the next layer one step later, ``out[t] = s[t - 1]``,
    ``out[0] = 0`` (``layers.spike_delay``: Xylo's timing, one step a hidden layer); needs ``act=True``; method stbp
    builds it, the others refuse the spec.
    """

    out_features: int
    act: bool = True
    bias: bool = False
    norm: bool = False
    recurrent: bool = False
    delays: int = 0
    spike_delay: int = 0

    def __post_init__(self) -> None:
        check_whole(self, "out_features", 1)
        check_flags(self, "act", "bias", "norm", "recurrent")
        if self.recurrent and (not self.act or self.norm):
            raise ConfigError(f"{self}: a recurrent layer needs act=True (its spikes feed back) and norm=False")
        if not is_whole(self.delays, 0, 1024):
            raise ConfigError(f"{self}: delays must be a whole number of steps from 0 to 1024 (0 or 1: none)")
        if self.delayed and self.recurrent:
            raise ConfigError(f"{self}: a layer is either recurrent or delayed, not both")
        if not is_whole(self.spike_delay, 0, 1) or (self.spike_delay and not self.act):
            raise ConfigError(f"{self}: spike_delay must be 0 (none) or 1 (its spikes reach the next layer one step "
                              "late), and 1 only on a layer with act=True (spikes to delay)")

    @property
    def delayed(self) -> bool:
        """True when the synapses have delays (``delays >= 2``: a one-step range is no delay)."""
        return self.delays >= 2


@dataclass(frozen=True)
class Pool:
    """Spatial pooling; ``kind`` is ``"avg"`` or ``"max"``; ``stride`` defaults to ``kernel_size``.

    ``padding`` p (each side, ``0 <= p <= kernel_size // 2`` so every window holds a real input) means "no
    input" there: ``-inf`` for an ANN max, a zero counted in the ``1/k^2`` average (``count_include_pad``),
    no spike (``+inf`` time) in a TTFS net. Output size is floor mode, ``H' = floor((H + 2p - k) / s) + 1``
    (torchvision's GoogLeNet uses ceil mode; with p = 1 floor gives the same sizes at 224 x 224).
    """

    kind: str
    kernel_size: int
    stride: int | None = None
    padding: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("avg", "max"):
            raise ConfigError(f"unknown pool kind {self.kind!r}; valid: avg, max")
        check_whole(self, "kernel_size", 1)
        if self.stride is not None:
            check_whole(self, "stride", 1)
        check_whole(self, "padding", 0)  # 1.5 crashed the cost count (TypeError), True was taken as 1
        check_pool_padding(self.padding, self.kernel_size, str(self))

    @property
    def step(self) -> int:
        return self.stride or self.kernel_size


@dataclass(frozen=True)
class Flatten:
    """``(C, H, W) -> (C*H*W,)``."""


@dataclass(frozen=True)
class Dropout:
    """Dropout with drop probability ``p`` in [0, 1) (rate-coded methods keep one mask for all time steps)."""

    p: float

    def __post_init__(self) -> None:
        if not is_finite(self.p) or not 0.0 <= self.p < 1.0:
            raise ConfigError(f"dropout probability must be a number in [0, 1), got {self.p!r}")


MIXINGS = ("ssa", "sdsa", "qk_token", "qk_channel")


@dataclass(frozen=True)
class Attention:
    """Spiking self-attention on a map ``(C, H, W)`` read as ``L = H W`` tokens of ``C`` channels; the shape is kept.
    Per time step, with spikes ``Q, K, V = SN(BN(W_q x)), SN(BN(W_k x)), SN(BN(W_v x))`` from 1x1 projections
    ``C -> C`` (token-major ``[L, C]``), ``mixing`` picks how they are combined:

    ``"ssa"`` (Zhou et al., "Spikformer", ICLR 2023), in heads of ``d = C / heads`` channels::

        A_h = SN_a(scale * Q_h K_h^T V_h)      (each head h; no softmax)
        out = SN(BN(W_o A))                    (A: the heads side by side, [L, C]; spikes)

    ``"sdsa"`` (Yao et al., "Spike-driven Transformer", NeurIPS 2023, its SDSA: masks and additions only)::

        a   = SN_a(sum_l K_l * V_l)            (per channel: the column sum of the Hadamard product, [1, C])
        out = BN(W_o (Q * a))                  (each token's query spikes masked by a; currents, no neuron)

    ``"qk_token"`` / ``"qk_channel"`` (Zhou et al., "QKFormer", NeurIPS 2024, its Q-K attention: no V)::

        a   = SN_a(sum_{c in head} Q_c)        (qk_token: per head and token, [L, heads])
        a   = SN_a(sum_l Q_l)                  (qk_channel: per channel, [1, C])
        out = SN(BN(W_o (K * a)))              (the key spikes masked by a, a head's mask on its d channels; spikes)

    ``SN`` is the method's neuron, ``SN_a`` the same with its threshold times ``attention_threshold`` (all three
    papers: 0.5 against 1). SSA's product is computed as ``Q (K^T V)`` (``2 L d^2`` operations per head instead of
    ``2 L^2 d``; the same integers); ``scale`` is SSA's only (the others refuse one). SDSA's heads only have to
    divide ``C`` (its operations are per channel); Q-K attention's group its query sums. SSA and Q-K attention end
    in spikes and sit in a SEW ``Residual`` body; SDSA ends in currents and sits in a membrane-shortcut body after an
    ``Activation()`` (module docstring). Q-K attention has no V projection. Batch-norms follow the method's ``norm``
    choice. Only time-stepped rate methods build it (stbp); the others refuse the spec.
    """

    heads: int = 8
    scale: float = 0.125
    attention_threshold: float = 0.5
    mixing: str = "ssa"

    def __post_init__(self) -> None:
        if not is_whole(self.heads, 1):
            raise ConfigError(f"{self}: heads must be a whole number >= 1")
        if self.mixing not in MIXINGS:
            raise ConfigError(f"{self}: unknown attention mixing {self.mixing!r}; valid: {', '.join(MIXINGS)}")
        if self.mixing != "ssa" and self.scale != 0.125:
            raise ConfigError(f"{self}: scale is SSA's product's; {self.mixing} masks and adds, it has none to set")
        for key in ("scale", "attention_threshold"):
            value = getattr(self, key)
            if not is_finite(value) or value <= 0:
                raise ConfigError(f"{self}: {key} must be a finite number > 0")


@dataclass(frozen=True)
class Activation:
    """The method's nonlinearity on its own, shape kept: a spiking neuron layer in SNN methods. It opens a
    membrane-shortcut residual body (module docstring) and fires on a pooled current before a classifier."""


CONNECTS = ("add", "and", "iand")


@dataclass(frozen=True)
class Residual:
    """``act(body(x) + shortcut(x))``; ``shortcut=()`` is the identity (type A when shapes match); with
    ``connect`` in ``CONNECTS`` the SEW block ``g(body(x), shortcut(x))`` (module docstring)."""

    body: tuple[Layer, ...]
    shortcut: tuple[Layer, ...] = ()
    connect: str | None = None

    def __post_init__(self) -> None:
        for name in ("body", "shortcut"):
            check_layers(self, name, getattr(self, name))
        if self.connect is not None and self.connect not in CONNECTS:
            raise ConfigError(f"unknown connect function {self.connect!r}; valid: {', '.join(CONNECTS)}")


@dataclass(frozen=True)
class Concat:
    """Parallel branches on one input, outputs concatenated on the channel axis (inception block)."""

    branches: tuple[tuple[Layer, ...], ...]

    def __post_init__(self) -> None:
        check_layers(self, "branches", self.branches)
        if not self.branches:  # (a branch of no layers passes its input on)
            raise ConfigError(f"{self}: an inception block needs at least one branch")
        for j, branch in enumerate(self.branches):
            check_layers(self, f"branch {j}", branch)


Layer = Union[Conv, Linear, Pool, Flatten, Dropout, Attention, Activation, Residual, Concat]  # noqa: UP007 (runtime alias)
Block = Union[Residual, Concat]  # noqa: UP007 (runtime alias): the layers that hold branches of layers
Shape = tuple[int, ...]

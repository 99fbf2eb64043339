"""Spiking transformers for ``stbp``-style direct training.

* ``spikformer`` (Zhou et al., "Spikformer: When Spiking Neural Network Meets Transformer", ICLR 2023; the layout of
  its public CIFAR code): a spiking patch-splitting stem of four 3x3 conv + BN + neuron layers of ``dim/8``,
  ``dim/4``, ``dim/2`` and ``dim`` channels, each of the last ``pools`` followed by a 3x3 stride-2 max pool of its
  spikes (two at 32x32: 8x8 = 64 tokens, "patch size 4"); a relative position embedding ``x + SN(BN(conv3x3(x)))``;
  ``depth`` encoder blocks ``x = x + SSA(x)``, ``x = x + MLP(x)`` with ``MLP = SN(BN(W_2 SN(BN(W_1 x))))`` of
  ``mlp_ratio * dim`` hidden channels (1x1); the mean over the tokens and a linear classifier. Each ``x + f(x)`` is
  a SEW ``add`` junction (Spikformer's residual stream carries counts, not spikes), ``SSA`` the spiking
  self-attention of ``models.layer_specs.Attention``. The CIFAR-10 configuration of its code: ``depth`` 4,
  ``dim`` 384, 12 heads, ``mlp_ratio`` 4, T = 4 (Spikformer-4-384; the defaults here).

* ``sdt`` (Yao et al., "Spike-driven Transformer", NeurIPS 2023; the layout of its public code and of SpikingJelly
  2.0's ``SpikeDrivenTransformer``): every residual is a membrane shortcut (``models.layer_specs.Activation``), so the
  stream between blocks carries currents and every convolution reads spikes. The stem: three 3x3 conv + BN + neuron
  layers of ``dim/8``, ``dim/4``, ``dim/2`` channels and a fourth of ``dim`` without a neuron, each followed by a 3x3
  stride-2 max pool where ``pooling`` (four 0/1 characters) has a 1; a position embedding
  ``x + BN(conv3x3(SN(x)))``; ``depth`` blocks ``x = x + SDSA(SN(x))``, ``x = x + BN(W_2 SN(BN(W_1 SN(x))))``
  (``mlp_ratio * dim`` hidden channels; with ``mlp_ratio`` 1 the code adds a shortcut around each half, as here);
  the mean over the tokens, a neuron, and a linear classifier. CIFAR-10 configuration of its code (the default):
  ``dim`` 512, ``depth`` 2, 8 heads, ``mlp_ratio`` 4, ``pooling`` "0011", T = 4 (Spike-driven Transformer-2-512).

* ``qkformer`` (Zhou et al., "QKFormer: Hierarchical Spiking Transformer using Q-K Attention", NeurIPS 2024; the
  layout of SpikingJelly 2.0's ``QKFormer``, after the paper's ImageNet code): three stages of ``dim/4``, ``dim/2``,
  ``dim`` channels, each opened by a downsampling patch embedding, a SEW ``add`` residual whose body is
  ``SN(BN(conv3(SN(maxpool(BN(conv3 x))))))`` and whose shortcut is ``SN(BN(conv1x1 stride 2 x))`` (the first
  stage's input is ``SN(maxpool(BN(conv3 image)))`` of ``dim/8`` channels); then ``depths[i]`` blocks
  ``x = x + A(x)``, ``x = x + MLP(x)`` (as Spikformer's), ``A`` the Q-K attention of ``heads[i]`` heads in the first
  two stages (``qk``: ``token`` or ``channel``) and Spikformer's SSA in the last; the token mean and a linear
  classifier. Defaults: QKFormer-10-384 (``heads`` 6 in every stage, as the paper's code and SpikingJelly's
  ``qkformer_10_384``; ``depths`` 1, 2, 7) on 3x224x224.

The stem's max pools act on spikes, after the neurons, as in both codes (SpikingJelly's Spikformer rewrite pools
before them); SDT's last one pools currents. Convolutions followed by a batch-norm have no bias here (the papers' code
gives some of them one, which the batch-norm's shift makes redundant).
"""

from __future__ import annotations

import math

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_finite, is_whole
from deepspike.models.blocks import global_pool_classifier
from deepspike.models.layer_specs import Activation, Attention, Conv, Layer, Pool, Residual
from deepspike.models.registry import MAX_SIZE_ARG, register_model, scaled


def _check_sizes(model: str, dim, depth, heads, mlp_ratio, pools=0) -> None:
    """One-line ``ConfigError`` (naming ``model``) unless dim, depth, heads and pools are whole numbers (dim >= 8,
    heads >= 1, depth >= 0, pools 0 to 4) and mlp_ratio a number in (0, MAX_SIZE_ARG] (1e308 x dim overflowed)."""
    for key, value, low in (("dim", dim, 8), ("depth", depth, 0), ("heads", heads, 1), ("pools", pools, 0)):
        if not is_whole(value, low, 4 if key == "pools" else math.inf):
            valid = "0 to 4" if key == "pools" else f">= {low}"
            raise ConfigError(f"{model}: model.args.{key} must be a whole number {valid}, got {value!r}")
    if not is_finite(mlp_ratio) or not 0 < mlp_ratio <= MAX_SIZE_ARG:
        raise ConfigError(f"{model}: model.args.mlp_ratio must be a finite number > 0 and at most {MAX_SIZE_ARG}, "
                          f"got {mlp_ratio!r}")


def _square_image(model: str, input_shape) -> None:
    """One-line ``ConfigError`` unless ``input_shape`` is a square image ``(C, H, H)`` (the token mean is one pool)."""
    if len(input_shape) != 3:
        raise ConfigError(f"{model} needs image-shaped input (C, H, W), got {tuple(input_shape)}")
    if input_shape[1] != input_shape[2]:
        raise ConfigError(f"{model} needs a square input (its token mean is one square pool), got {input_shape}")


def _scaled_dim(model: str, dim: int, width: float, heads: int) -> int:
    """``dim`` scaled by ``model.width``: a multiple of 8 (the stem's ``dim/8``) and of ``heads``, else ConfigError."""
    dim = scaled(dim, width)
    if dim % 8 or dim % heads:
        raise ConfigError(f"{model}: dim {dim} (after model.width) must be a multiple of 8 and of heads={heads}")
    return dim


@register_model("spikformer", default_input_shape=(3, 32, 32), paper="Spikformer (Zhou et al. 2023), CIFAR layout")
def spikformer(num_classes, input_shape, width, dim: int = 384, depth: int = 4, heads: int = 12,
               mlp_ratio: float = 4.0, pools: int = 2):
    """Spikformer: conv stem (max pool after its last ``pools`` layers), position embedding, ``depth`` SSA + MLP
    blocks of ``dim`` channels and ``heads`` heads, token mean, linear classifier."""
    _square_image("spikformer", input_shape)
    _check_sizes("spikformer", dim, depth, heads, mlp_ratio, pools)
    dim = _scaled_dim("spikformer", dim, width, heads)
    layers: list[Layer] = []
    for i, channels in enumerate((dim // 8, dim // 4, dim // 2, dim)):
        layers.append(Conv(channels, 3, padding=1, norm=True))
        if i >= 4 - pools:
            layers.append(Pool("max", 3, 2, 1))
    layers.append(Residual((Conv(dim, 3, padding=1, norm=True),), connect="add"))  # relative position embedding
    hidden = max(1, int(dim * mlp_ratio))  # truncated, as in both papers' code
    for _ in range(depth):
        layers.append(Residual((Attention(heads),), connect="add"))
        layers.append(Residual((Conv(hidden, 1, norm=True), Conv(dim, 1, norm=True)), connect="add"))
    return global_pool_classifier("spikformer", layers, input_shape, num_classes)  # the token mean, the classifier


def _downsampling(channels: int) -> Residual:
    """QKFormer's patch embedding: ``SN(BN(conv3(SN(maxpool(BN(conv3 x)))))) + SN(BN(conv1x1 stride 2 x))``."""
    body = (Conv(channels, 3, padding=1, norm=True, act=False), Pool("max", 3, 2, 1), Activation(),
            Conv(channels, 3, padding=1, norm=True))
    return Residual(body, (Conv(channels, 1, 2, norm=True),), connect="add")


def _three(model: str, key: str, values) -> tuple[int, int, int]:
    """``values`` as three whole numbers >= 1 (one per stage; ``depths`` may hold 0), or a one-line ``ConfigError``."""
    low = 0 if key == "depths" else 1
    if isinstance(values, str) or not hasattr(values, "__len__") or len(values) != 3 or any(
            not is_whole(v, low) for v in values):
        raise ConfigError(f"{model}: model.args.{key} must be three whole numbers >= {low}, got {values!r}")
    return tuple(values)


@register_model("qkformer", default_input_shape=(3, 224, 224), paper="QKFormer (Zhou et al. 2024), ImageNet code")
def qkformer(num_classes, input_shape, width, dim: int = 384, heads=(6, 6, 6), depths=(1, 2, 7),
             mlp_ratio: float = 4.0, qk: str = "token"):
    """QKFormer (module docstring): three stages, each a downsampling patch embedding and ``depths[i]`` attention +
    MLP blocks (Q-K attention, then SSA in the last), token mean, linear classifier."""
    _square_image("qkformer", input_shape)
    heads, depths = _three("qkformer", "heads", heads), _three("qkformer", "depths", depths)
    _check_sizes("qkformer", dim, 0, 1, mlp_ratio)
    if qk not in ("token", "channel"):
        raise ConfigError(f"qkformer: model.args.qk must be token or channel, got {qk!r}")
    dim = scaled(dim, width)
    dims = (dim // 4, dim // 2, dim)
    if dim % 8 or any(d % h for d, h in zip(dims, heads, strict=True)):
        raise ConfigError(f"qkformer: dim {dim} (after model.width) must be a multiple of 8 whose stage widths "
                          f"{dims} the heads {heads} divide")
    layers: list[Layer] = [Conv(dims[0] // 2, 3, padding=1, norm=True, act=False), Pool("max", 3, 2, 1), Activation()]
    for stage, (channels, count) in enumerate(zip(dims, depths, strict=True)):
        layers.append(_downsampling(channels))
        mixing = "ssa" if stage == 2 else f"qk_{qk}"
        hidden = max(1, int(channels * mlp_ratio))
        for _ in range(count):
            layers += [Residual((Attention(heads[stage], mixing=mixing),), connect="add"),
                       Residual((Conv(hidden, 1, norm=True), Conv(channels, 1, norm=True)), connect="add")]
    return global_pool_classifier("qkformer", layers, input_shape, num_classes)


def _membrane_shortcut(*body: Layer) -> Residual:
    """``x + body(SN(x))``: a membrane-shortcut residual (``models.layer_specs``' module docstring)."""
    return Residual((Activation(), *body), connect="add")


@register_model("sdt", default_input_shape=(3, 32, 32), paper="Spike-driven Transformer (Yao et al. 2023), CIFAR code")
def spike_driven_transformer(num_classes, input_shape, width, dim: int = 512, depth: int = 2, heads: int = 8,
                             mlp_ratio: float = 4.0, pooling: str = "0011"):
    """Spike-driven Transformer (module docstring): conv stem (max pools where ``pooling`` has a 1), position
    embedding, ``depth`` SDSA + MLP blocks with membrane shortcuts, token mean, neuron, linear classifier."""
    _square_image("sdt", input_shape)
    _check_sizes("sdt", dim, depth, heads, mlp_ratio)
    if not isinstance(pooling, str) or len(pooling) != 4 or set(pooling) - {"0", "1"}:
        raise ConfigError(f"sdt: model.args.pooling must be four characters 0 or 1 (a max pool after each stem "
                          f"layer with a 1), got {pooling!r}")
    dim = _scaled_dim("sdt", dim, width, heads)
    layers: list[Layer] = []
    for i, channels in enumerate((dim // 8, dim // 4, dim // 2, dim)):
        layers.append(Conv(channels, 3, padding=1, norm=True, act=i < 3))
        if pooling[i] == "1":
            layers.append(Pool("max", 3, 2, 1))
    layers.append(_membrane_shortcut(Conv(dim, 3, padding=1, norm=True, act=False)))  # relative position embedding
    hidden = max(1, int(dim * mlp_ratio))  # truncated, as in both papers' code
    for _ in range(depth):
        layers.append(_membrane_shortcut(Attention(heads, mixing="sdsa")))
        if hidden == dim:  # the code's extra shortcut around the first half when the MLP keeps the width
            layers += [_membrane_shortcut(Conv(dim, 1, norm=True, act=False))] * 2
        else:
            layers.append(_membrane_shortcut(Conv(hidden, 1, norm=True), Conv(dim, 1, norm=True, act=False)))
    return global_pool_classifier("sdt", layers, input_shape, num_classes, (Activation(),))  # fires on the mean

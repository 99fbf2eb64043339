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

The stem's max pools act on spikes, after the neurons, as in that code (SpikingJelly's rewrite pools before them).
"""

from __future__ import annotations

from deepspike.core.errors import ConfigError
from deepspike.models.layer_specs import Attention, Conv, Flatten, Layer, Linear, Pool, Residual
from deepspike.models.registry import register_model, scaled
from deepspike.models.spec import sequence_shape


def _check_sizes(dim, depth, heads, mlp_ratio, pools) -> None:
    """One-line ``ConfigError`` unless dim, depth, heads and pools are whole numbers (dim >= 8, heads >= 1, depth >= 0,
    pools 0 to 4) and mlp_ratio a finite number > 0."""
    for key, value, low in (("dim", dim, 8), ("depth", depth, 0), ("heads", heads, 1), ("pools", pools, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (key == "pools" and value > 4):
            valid = "0 to 4" if key == "pools" else f">= {low}"
            raise ConfigError(f"spikformer: model.args.{key} must be a whole number {valid}, got {value!r}")
    if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio, int | float) or not 0 < mlp_ratio < float("inf"):
        raise ConfigError(f"spikformer: model.args.mlp_ratio must be a finite number > 0, got {mlp_ratio!r}")


@register_model("spikformer", default_input_shape=(3, 32, 32), paper="Spikformer (Zhou et al. 2023), CIFAR layout")
def spikformer(num_classes, input_shape, width, dim: int = 384, depth: int = 4, heads: int = 12,
               mlp_ratio: float = 4.0, pools: int = 2):
    """Spikformer: conv stem (max pool after its last ``pools`` layers), position embedding, ``depth`` SSA + MLP
    blocks of ``dim`` channels and ``heads`` heads, token mean, linear classifier."""
    if len(input_shape) != 3:
        raise ConfigError(f"spikformer needs image-shaped input (C, H, W), got {tuple(input_shape)}")
    _check_sizes(dim, depth, heads, mlp_ratio, pools)
    dim = scaled(dim, width)
    if dim % 8 or dim % heads:
        raise ConfigError(f"spikformer: dim {dim} (after model.width) must be a multiple of 8 and of heads={heads}")
    if input_shape[1] != input_shape[2]:
        raise ConfigError(f"spikformer needs a square input (its token mean is one square pool), got {input_shape}")
    layers: list[Layer] = []
    for i, channels in enumerate((dim // 8, dim // 4, dim // 2, dim)):
        layers.append(Conv(channels, 3, padding=1, norm=True))
        if i >= 4 - pools:
            layers.append(Pool("max", 3, 2, 1))
    layers.append(Residual((Conv(dim, 3, padding=1, norm=True),), connect="add"))  # relative position embedding
    hidden = max(1, int(round(dim * mlp_ratio)))
    for _ in range(depth):
        layers.append(Residual((Attention(heads),), connect="add"))
        layers.append(Residual((Conv(hidden, 1, norm=True), Conv(dim, 1, norm=True)), connect="add"))
    side = sequence_shape(tuple(layers), tuple(input_shape))[1]  # the token grid's side
    return (*layers, Pool("avg", side), Flatten(), Linear(num_classes, act=False, bias=True))

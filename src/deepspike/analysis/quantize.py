"""Symmetric uniform weight quantization to k bits, post-training or as a fake-quantize parametrization.

With ``q = 2^(k-1) - 1`` levels on each side and scale ``s = max|w| / q`` (per layer, or per output
channel: the max over each ``w[o]``), a weight becomes ``Q(w) = s * clamp(round(w / s), -q, q)``: the
``2q + 1`` values ``{-q s, ..., -s, 0, s, ..., q s}`` (2 bits: ``{-s, 0, s}``; 8 bits: 255 values). The
ops are torch's ``fake_quantize_per_tensor_affine`` / ``fake_quantize_per_channel_affine``, whose
gradient is the straight-through estimator (1 inside the clamp range), so a parametrized model trains with
quantized forward and full-precision backward (zhou2021 B.4). ``bits >= 32`` means full precision; bits
run from 2 to ``MAX_BITS`` = 64 (no weight format holds more).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_whole
from deepspike.layers.fan_out import WEIGHTED_LAYERS
from deepspike.layers.wta_stdp import CompetitiveStdpLayer

FULL_PRECISION = 32
MAX_BITS = 64


def check_bits(bits: int) -> None:
    """A one-line ``ConfigError`` unless ``bits`` is an integer from 2 to ``MAX_BITS`` (``--bits 99999999999999999999``
    ran every sweep at full precision and died in a TypeError drawing its log-scaled plot)."""
    if not is_whole(bits, 2):
        raise ConfigError(f"quantization bits must be an integer >= 2, got {bits!r}")
    if bits > MAX_BITS:
        raise ConfigError(f"quantization bits must be at most {MAX_BITS} ({FULL_PRECISION} and more: full precision), "
                          f"got {bits!r}")


TINY = 2.0 ** -60  # below this, max|w| / q (q < 2^30) may be subnormal or 0 in float32, and its inverse inf


def _tiny_unit(amax: torch.Tensor) -> torch.Tensor:
    """``2^e`` where ``0 < amax < TINY``, ``amax = f 2^e`` (``0.5 <= f < 1``), else 1: dividing ``w`` by it is exact
    and brings its largest magnitude into ``[0.5, 1)``, whose scale ``amax / q`` float32 holds with a finite inverse."""
    unit = torch.ldexp(torch.ones_like(amax), torch.frexp(amax).exponent)
    return torch.where((amax > 0) & (amax < TINY), unit, torch.ones_like(amax))


def quantize_weight(w: torch.Tensor, bits: int, per_channel: bool = False) -> torch.Tensor:
    """``Q(w) = s clamp(round(w / s), -q, q)``, ``q = 2^(bits-1) - 1``, ``s = max|w| / q`` (module docstring).

    w: any shape, channel axis 0 (``[O, C, kh, kw]`` or ``[M, N]``); returns the same shape. The scale is
    detached: gradients flow to ``w`` straight through. ``bits >= 32`` returns ``w`` unchanged. Weights whose
    ``max|w|`` is below ``TINY`` are quantized as ``u Q(w / u)``, ``u`` a power of 2 (``_tiny_unit``; the same ``Q``
    in exact arithmetic): their scale was subnormal or 0 in float32, and a zero weight came out as ``-max|w|``.
    """
    check_bits(bits)
    if bits >= FULL_PRECISION:
        return w
    q = 2 ** (bits - 1) - 1
    if per_channel and w.dim() > 1:
        amax = w.detach().abs().flatten(1).amax(dim=1)  # [O]
        unit = _tiny_unit(amax)  # [O]
        amax = amax / unit
        scale = torch.where(amax > 0, amax / q, torch.ones_like(amax)).float()
        zero = torch.zeros(w.shape[0], dtype=torch.int32, device=w.device)
        unit = unit.view(-1, *[1] * (w.dim() - 1))  # [O, 1, ...]
        return torch.fake_quantize_per_channel_affine(w / unit, scale, zero, 0, -q, q) * unit
    amax = w.detach().abs().max() if w.numel() else torch.zeros((), device=w.device)
    unit = float(_tiny_unit(amax))
    amax = float(amax) / unit
    return torch.fake_quantize_per_tensor_affine(w / unit, amax / q if amax > 0 else 1.0, 0, -q, q) * unit


def weighted_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every layer with synaptic weights: ``Conv2d``, ``Linear``, ``DelayedLinear`` (its
    weights; the delays stay), TTFS layers with a ``weight`` parameter of 2 or 4 dimensions, and the competitive
    STDP layer (``W [inputs, neurons]``, a buffer: it learns without gradients)."""
    out = []
    for name, m in model.named_modules():
        w = getattr(m, "weight", None)
        ttfs = getattr(type(m), "is_ttfs_layer", False)
        if isinstance(m, WEIGHTED_LAYERS + (CompetitiveStdpLayer,)) or (
            ttfs and isinstance(w, nn.Parameter) and w.dim() in (2, 4)
        ):
            out.append((name, m))
    return out


@torch.no_grad()
def quantize_model(model: nn.Module, bits: int, per_channel: bool = False) -> nn.Module:
    """A copy of ``model`` with every synaptic weight replaced by ``quantize_weight`` (post-training); per channel,
    a channel is an output neuron (axis 0, or ``weight_output_axis`` where a layer's class names another:
    ``CompetitiveStdpLayer``'s ``W [inputs, neurons]``)."""
    check_bits(bits)
    model = copy.deepcopy(model)
    for _, m in weighted_modules(model):
        axis = getattr(type(m), "weight_output_axis", 0)
        m.weight.copy_(quantize_weight(m.weight.movedim(axis, 0), bits, per_channel).movedim(0, axis))
    return model


class FakeQuantize(nn.Module):
    """Parametrization ``w -> quantize_weight(w, bits, per_channel)`` (straight-through gradient)."""

    def __init__(self, bits: int, per_channel: bool = False) -> None:
        super().__init__()
        check_bits(bits)
        self.bits, self.per_channel = bits, per_channel

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return quantize_weight(w, self.bits, self.per_channel)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, per_channel={self.per_channel}"


def add_fake_quantization(model: nn.Module, bits: int, per_channel: bool = False) -> nn.Module:
    """In place: parametrize every synaptic ``weight`` of ``model`` with ``FakeQuantize``; returns ``model``.

    Any previous quantization parametrization is removed first (keeping the full-precision weights), so
    stages 8 -> 4 -> 2 bits can be applied in turn.
    """
    remove_fake_quantization(model, bake=False)
    for _, m in weighted_modules(model):
        parametrize.register_parametrization(m, "weight", FakeQuantize(bits, per_channel))
    return model


def remove_fake_quantization(model: nn.Module, bake: bool = True) -> nn.Module:
    """In place: drop the ``FakeQuantize`` parametrizations; ``bake=True`` keeps the quantized weights,
    ``bake=False`` the full-precision ones. Returns ``model``."""
    for m in model.modules():
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=bake)
    return model


def quantized_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` with every parametrized weight stored as its quantized value under the plain
    ``<module>.weight`` key (loadable into the unparametrized model); ``model`` is left as it is."""
    state = {k: v for k, v in model.state_dict().items() if ".parametrizations." not in f".{k}"}
    for name, m in model.named_modules():
        if parametrize.is_parametrized(m, "weight"):
            state[f"{name}.weight" if name else "weight"] = m.weight.detach().clone()
    return state


def quantization_levels(model: nn.Module) -> dict[str, int]:
    """Number of distinct weight values per synaptic layer (a check that quantization took effect)."""
    return {name: int(torch.unique(m.weight.detach()).numel()) for name, m in weighted_modules(model)}

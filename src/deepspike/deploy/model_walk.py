"""What the NIR exporters read from a torch model: its layers in order and their tensors as numpy arrays."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_whole, shown_value
from deepspike.layers.time_distributed import TimeDistributed


def check_own_forward(module: nn.Module) -> None:
    """``ConfigError`` when ``module``'s ``forward`` comes from a class outside deepspike and torch: an exporter
    that knows the layer by its base class (``LIF``, ``nn.Linear``, ``nn.Sequential``) would write the base's
    computation, not the subclass's. A direct ``nn.Module`` subclass passes here: the exporter names it as a layer
    without a NIR node."""
    owner = next((cls for cls in type(module).__mro__ if "forward" in vars(cls)), None)
    if owner is not None and owner.__module__.split(".")[0] not in ("deepspike", "torch"):
        base = next(cls for cls in type(module).__mro__ if cls.__module__.split(".")[0] in ("deepspike", "torch"))
        if base is nn.Module:  # a layer of the user's own: the exporter names it as a layer without a NIR node
            return
        raise ConfigError(f"NIR export: {type(module).__name__} overrides forward() of {base.__name__}; NIR would "
                          f"hold what a plain {base.__name__} computes, so it is not exported")


def leaf_modules(module: nn.Module) -> list[nn.Module]:
    """``module`` as a flat list: nested ``nn.Sequential`` unrolled, ``TimeDistributed`` unwrapped; each module
    passed ``check_own_forward``."""
    check_own_forward(module)
    if isinstance(module, nn.Sequential):
        return [m for child in module for m in leaf_modules(child)]
    if isinstance(module, TimeDistributed):
        check_own_forward(module.module)
        return [module.module]
    return [module]


def flatten_sample_dims(m: nn.Flatten, rank: int) -> tuple[int, int]:
    """A torch ``Flatten``'s dims over ``[B, *sample]`` as NIR's over the sample (``rank`` dims, no batch): ``d - 1``
    for ``d >= 0``, a negative ``d`` (counted from the end) as it is (``from_nir`` reads them back the same); a
    ``Flatten`` that would merge the batch into the sample is a ``ConfigError``."""
    if min(d if d >= 0 else d + rank + 1 for d in (m.start_dim, m.end_dim)) < 1:
        raise ConfigError(f"NIR export: Flatten(start_dim={m.start_dim}, end_dim={m.end_dim}) would merge the batch "
                          "into the sample; NIR flattens one sample's dims (start_dim >= 1 in torch's numbering)")
    return tuple(d - 1 if d >= 0 else d for d in (m.start_dim, m.end_dim))


def to_numpy(t: torch.Tensor | None) -> np.ndarray | None:
    """A float32 numpy copy of ``t`` (None stays None): what NIR nodes hold."""
    return None if t is None else t.detach().cpu().to(torch.float32).numpy().copy()


def ungrouped_conv_weight(weight: np.ndarray, groups: int) -> np.ndarray:
    """A grouped conv's weight ``[C_out, C_in/G, kh, kw]`` as the plain (``groups=1``) conv's ``[C_out, C_in, kh,
    kw]`` that computes the same: ``W'[o, g*C_in/G + j] = W[o, j]`` for output ``o`` of group ``g = o // (C_out/G)``,
    zero elsewhere (block-diagonal). NIR 1.0.8's type inference takes a Conv2d's input channels as
    ``weight.shape[1]``, ignoring ``groups``, so ``nir.read`` refuses a file with a grouped conv."""
    if groups == 1:
        return weight
    c_out, c_in_g = weight.shape[:2]
    dense = np.zeros((c_out, c_in_g * groups, *weight.shape[2:]), dtype=weight.dtype)
    per_group = c_out // groups
    for g in range(groups):
        rows = slice(g * per_group, (g + 1) * per_group)
        dense[rows, g * c_in_g:(g + 1) * c_in_g] = weight[rows]
    return dense


def checked_input_shape(input_shape, who: str) -> tuple[int, ...]:
    """``input_shape`` (one time step's sizes, no batch; numpy sizes taken) as a tuple of ints, or a one-line
    ``ConfigError`` naming ``who`` (the exporter) when it is not sizes (whole numbers >= 1)."""
    shape = input_shape
    if isinstance(shape, tuple | list | torch.Size | np.ndarray):  # numpy sizes (an array's .shape) as ints
        shape = tuple(n.item() if isinstance(n, np.integer) else n for n in shape)
    if not (isinstance(shape, tuple) and shape and all(is_whole(n, 1, 2**31 - 1) for n in shape)):
        raise ConfigError(f"{who}'s input_shape must be sizes of one time step (whole numbers >= 1), e.g. "
                          f"(1, 28, 28), got {shown_value(shape)}")
    return tuple(int(n) for n in shape)


def first_layer_takes(model: nn.Module) -> str:
    """What the first conv or linear layer of ``model`` takes per sample, for a one-line error: ``"[C, H, W] maps of
    C = 2 channels (a Conv2d)"`` or ``"36 values (a Linear)"``."""
    for m in model.modules():
        if isinstance(getattr(m, "in_channels", None), int):
            return f"[C, H, W] maps of C = {m.in_channels} channels (a {type(m).__name__})"
        if isinstance(getattr(m, "in_features", None), int):
            return f"{m.in_features} values (a {type(m).__name__})"
    return "another shape"

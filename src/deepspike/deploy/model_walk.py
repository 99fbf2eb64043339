"""What the NIR exporters read from a torch model: its layers in order and their tensors as numpy arrays."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from deepspike.layers.time_distributed import TimeDistributed


def leaf_modules(module: nn.Module) -> list[nn.Module]:
    """``module`` as a flat list: nested ``nn.Sequential`` unrolled, ``TimeDistributed`` unwrapped."""
    if isinstance(module, nn.Sequential):
        return [m for child in module for m in leaf_modules(child)]
    if isinstance(module, TimeDistributed):
        return [module.module]
    return [module]


def to_numpy(t: torch.Tensor | None) -> np.ndarray | None:
    """A float32 numpy copy of ``t`` (None stays None): what NIR nodes hold."""
    return None if t is None else t.detach().cpu().to(torch.float32).numpy().copy()

"""The floating-point precisions deepspike's neurons and TTFS layers accept but compute in float32."""

from __future__ import annotations

import torch

LOW_PRECISION = (torch.bfloat16, torch.float16)  # inputs kept in their dtype, state and arithmetic in float32


def at_least_float32(dtype: torch.dtype) -> torch.dtype:
    """The dtype to compute in for values of ``dtype``: float32 for bfloat16 / float16 (whose sums and times lose
    whole numbers past 256 / 2048), float64 kept as it is: ``torch.promote_types(dtype, torch.float32)``."""
    return torch.promote_types(dtype, torch.float32)

"""The floating-point precisions deepspike's neurons and TTFS layers accept but compute in float32."""

from __future__ import annotations

import torch

LOW_PRECISION = (torch.bfloat16, torch.float16)  # inputs kept in their dtype, state and arithmetic in float32

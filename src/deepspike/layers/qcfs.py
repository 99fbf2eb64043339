"""QCFS: the quantization-clip-floor-shift activation (Bu et al., ICLR 2022) that an ANN is trained with so that
it converts to IF neurons at a few time steps.

    QCFS(x) = lambda * clip(floor(x L / lambda + 1/2) / L, 0, 1)

with ``L`` quantization levels and a trainable clipping threshold ``lambda`` per layer (a scalar). An IF
neuron with threshold ``lambda``, reset by subtraction and initial membrane ``lambda / 2`` fires, on a constant
input ``x`` over ``T = L`` steps, ``floor(x L / lambda + 1/2)`` times (clipped to [0, L]), so its rate times
``lambda`` is this activation (the paper's Theorem 2: the expected conversion error is zero for any T).

Gradient: ``floor`` passes its gradient straight through, so inside the clip range ``d/dx = 1`` and
``d/dlambda = (floor(z) - x L / lambda) / L`` with ``z = x L / lambda + 1/2``; above it ``d/dlambda = 1``; below
it both are 0. Shapes: any ``[B, ...]`` tensor in, the same shape out.
"""

from __future__ import annotations

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_float32, is_whole
from deepspike.core.precision import at_least_float32


def qcfs(x: torch.Tensor, threshold: torch.Tensor, levels: int) -> torch.Tensor:
    """``threshold * clip(floor(x L / threshold + 1/2) / L, 0, 1)`` with a straight-through floor (module doc).

    The gradient flows where ``0 <= x <= threshold`` (Bu et al.'s code clips ``x / lambda`` to [0, 1] before the
    floor); outside, the output is the constant step 0 or ``L`` (``d/dx = 0``; ``d/dlambda`` 0 below, 1 above). A clip
    of the floored steps instead would let ``x`` within half a step outside the range through.

    Computed in float32 at least and returned in ``x``'s dtype: a 0-d float32 ``threshold`` does not promote a
    bfloat16 ``x``, whose ``z`` rounded to 8 bits put points a level off (15 of 4,097 at ``lambda = 0.7``, ``L = 16``).
    """
    dtype = at_least_float32(torch.promote_types(x.dtype, threshold.dtype))
    xf = x.to(dtype)
    z = xf * (levels / threshold.to(dtype)) + 0.5
    inside = (xf >= 0) & (xf <= threshold)  # the clip range
    through = z + (torch.floor(z) - z).detach()  # floor forward, identity backward; in [0, L] inside
    steps = torch.where(inside, through, torch.floor(z).clamp(0.0, levels).detach())
    return (steps * (threshold / levels)).to(x.dtype)


class QCFS(nn.Module):
    """QCFS activation ``x [B, ...] -> [B, ...]`` (same shape):
    ``lambda clip(floor(x L / lambda + 1/2) / L, 0, 1)`` with ``L = levels`` and a trainable threshold ``lambda``
    (initialised to ``threshold``; Bu et al. start at 8). Straight-through floor (module docstring)."""

    is_analog_neuron = True  # an ANN neuron for recorders and conversion (``layers.neuron_kinds``)

    def __init__(self, levels: int = 8, threshold: float = 8.0) -> None:
        super().__init__()
        if not is_whole(levels, 1):
            raise ConfigError(f"QCFS levels must be an integer >= 1, got {levels!r}")
        if not (is_float32(threshold) and threshold > 0):  # the float32 parameter must hold it
            raise ConfigError(f"QCFS threshold must be finite and > 0, got {threshold!r}")
        self.levels = levels
        self.threshold = nn.Parameter(torch.tensor(float(threshold)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.levels is None:  # the quantisation taken out: the limit a converted IF neuron's rate tends to
            return torch.minimum(x.clamp(min=0.0), self.threshold)
        return qcfs(x, self.threshold, self.levels)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, threshold={self.threshold.item():.4g}"


def remove_quantisation(model: nn.Module) -> int:
    """Turn every QCFS activation of ``model`` into ``clip(x, 0, lambda)`` (its ``levels`` set to None), the
    function a converted IF neuron's rate times lambda tends to as T grows; returns how many were changed."""
    found = [m for m in model.modules() if isinstance(m, QCFS)]
    for m in found:
        m.levels = None
    return len(found)

"""The spike-element-wise residual block of SEW-ResNet (Fang et al., NeurIPS 2021).

``out = g(A, S)`` with ``A = body(x)`` the spikes of the block's last neuron layer and ``S`` the shortcut's
spikes (``x`` itself, or the spikes after a downsampling conv-BN-neuron), elementwise on ``[T, B, C, H, W]``:

    add:   g(A, S) = A + S          (counts: 0, 1 or 2; the identity when A = 0)
    and:   g(A, S) = A S            (A AND S for binary spikes)
    iand:  g(A, S) = (1 - A) S      ((NOT A) AND S; the identity when A = 0)

No neuron follows the junction, so with ``add`` the block can pass an identity mapping exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from deepspike.layers.spike_storage import mark_spikes, spike_quantum


def sew_connect(kind: str, a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``g(a, s)`` for ``kind`` in add, and, iand (module docstring); same shapes in and out."""
    if kind == "add":
        return a + s
    if kind == "and":
        return a * s
    return (1.0 - a) * s  # iand (kinds are checked by models.layer_specs.Residual)


class SewBlock(nn.Module):
    """``g(body(x), shortcut(x))``; an empty ``shortcut`` is the identity."""

    def __init__(self, body: nn.Module, shortcut: nn.Module, connect: str) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut
        self.connect = connect

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, ...] -> [T, B, ...]``; spikes in both branches give integer counts, marked for the next
        layer's uint8 saved input (``layers.spike_storage``)."""
        a, s = self.body(x), self.shortcut(x)
        out = sew_connect(self.connect, a, s)
        return mark_spikes(out, 1) if spike_quantum(a) == 1 and spike_quantum(s) == 1 else out

    def extra_repr(self) -> str:
        return f"connect={self.connect}"

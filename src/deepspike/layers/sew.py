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

from deepspike.layers.spike_storage import attach_codes, attached_codes, mark_spikes, spike_quantum


def sew_connect(kind: str, a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``g(a, s)`` for ``kind`` in add, and, iand (module docstring); same shapes in and out."""
    if kind == "add":
        return a + s
    if kind == "and":
        return a * s
    return (1 - a) * s  # iand (kinds are checked by models.layer_specs.Residual)


def _connected_codes(kind: str, a: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, int] | None:
    """``(g(codes of a, codes of s), largest value)``: the junction's ``uint8`` codes computed on the branches'
    attached codes (``layers.spike_storage.attach_codes``; one byte per value read and written, no packing pass),
    where both have them and the result stays exact in ``uint8``: ``add`` up to 255, ``iand`` for a binary ``a``."""
    codes_a, codes_s = attached_codes(a), attached_codes(s)
    if codes_a is None or codes_s is None:
        return None
    (ca, largest_a), (cs, largest_s) = codes_a, codes_s
    largest = {"add": largest_a + largest_s, "and": largest_a * largest_s, "iand": largest_s}[kind]
    if largest > 255 or (kind == "iand" and largest_a != 1) or ca.stride() != cs.stride():
        return None
    return sew_connect(kind, ca, cs), largest


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
        if spike_quantum(a) != 1 or spike_quantum(s) != 1:
            return out
        codes = _connected_codes(self.connect, a, s)
        if codes is None or codes[0].stride() != out.stride():
            return mark_spikes(out, 1)
        return attach_codes(out, *codes)

    def extra_repr(self) -> str:
        return f"connect={self.connect}"

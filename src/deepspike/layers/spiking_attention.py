"""Spiking self-attention on time-major maps ``[T, B, C, H, W]``: Spikformer's SSA (Zhou et al., ICLR 2023), the
Spike-driven Transformer's SDSA (Yao et al., NeurIPS 2023) and QKFormer's Q-K attention (Zhou et al., NeurIPS 2024).

The ``H W`` positions are the tokens, the ``C`` channels their features, in heads of ``d = C / heads`` channels. Per
time step and sample (``models.layer_specs.Attention``)::

    Q, K, V = SN(BN(W_q x)), SN(BN(W_k x)), SN(BN(W_v x))      spikes, token-major [L, C]
    A_h     = SN_a(scale * Q_h K_h^T V_h)                       no softmax: the products of spikes are counts
    out     = SN(BN(W_o A))

Without a softmax the product is associative, so ``Q (K^T V)`` is formed (``L d^2`` per product and head) rather
than ``(Q K^T) V`` (``L^2 d``): the same integers, for any number of tokens. In the channel-major layout the maps
have, ``[d, L]`` per head, that is ``y = (v k^T) q``.

Synaptic operations (``synaptic_operations``, read by the activity recorder): ``K^T V`` adds one for each pair of a
key spike and a value spike at one token (``sum_l |k_l| |v_l|``), and ``Q (K^T V)`` adds a ``d``-row of it for each
query spike (``|q| d``); the scale folds into the next neuron's threshold. Accumulates for spikes; priced as MACs
when an input is not spike-valued.

SDSA (``SpikeDrivenSelfAttention``) replaces the product by masks and additions: per channel ``c`` the count
``a_c = sum_l K_lc V_lc`` of tokens where the key and the value both fired (``TokenSum``), a neuron on it, and the
query spikes masked by that neuron's spikes; its output projection has a batch-norm and no neuron (the membrane
shortcut). ``TokenSum`` counts one accumulate per coincidence ``K_lc V_lc = 1``; the masks cost nothing.

Q-K attention (``QKAttention``) has no V: a neuron on the sums of the query spikes (``QuerySum``: per head and token,
or per channel) masks the key spikes, then an output projection with a neuron. ``QuerySum`` counts one accumulate
per query spike.
"""

from __future__ import annotations

import torch
from torch import nn

from deepspike.core.errors import ConfigError, unknown_choice
from deepspike.core.options import is_finite, is_whole
from deepspike.layers.activity_records import is_spike_valued

QUERY_SUMS = ("channels", "tokens")


def check_heads(heads: int, where: str) -> None:
    """``ConfigError`` unless ``heads`` is a whole number >= 1 (``where`` names the layer)."""
    if not is_whole(heads, 1):
        raise ConfigError(f"{where} heads={heads!r} must be a whole number >= 1")


def check_maps(where: str, heads: int, *maps: torch.Tensor) -> None:
    """``ConfigError`` in one line unless the ``maps`` are ``[T, B, C, H, W]`` tensors of one shape whose ``C`` the
    ``heads`` divide (``where`` names the layer): a map of another rank or channel count was a reshape error, and
    ``TokenSum`` / ``QuerySum.mask`` broadcast a map of another shape silently."""
    shapes = [tuple(m.shape) for m in maps]
    if any(len(shape) != 5 for shape in shapes) or len(set(shapes)) != 1:
        raise ConfigError(f"{where} needs [T, B, C, H, W] maps of one shape, got {', '.join(map(str, shapes))}")
    if shapes[0][2] % heads:
        raise ConfigError(f"{where}: {heads} heads do not divide the map's {shapes[0][2]} channels")


class AttentionProduct(nn.Module):
    """``(q, k, v) -> scale * Q_h (K_h^T V_h)`` for every head (module docstring); all ``[T, B, C, H, W]``."""

    def __init__(self, heads: int, scale: float) -> None:
        super().__init__()
        check_heads(heads, "AttentionProduct")
        if not (is_finite(scale) and scale > 0):
            raise ConfigError(f"AttentionProduct scale={scale!r} must be a finite number > 0")
        self.heads, self.scale = heads, float(scale)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, C, H, W] -> [T, B, heads, d, L]`` (a view of a contiguous map)."""
        t, b, c, h, w = x.shape
        return x.reshape(t, b, self.heads, c // self.heads, h * w)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        check_maps("AttentionProduct", self.heads, q, k, v)
        qh, kh, vh = self._heads(q), self._heads(k), self._heads(v)
        mixed = vh @ kh.transpose(-2, -1)  # [.., d, d]: entry (j, i) = sum_l v_jl k_il = (K^T V)_ij
        return (mixed @ qh * self.scale).reshape(q.shape)  # y_jl = sum_i (K^T V)_ij q_il = (Q K^T V)_lj

    def synaptic_operations(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[float, float, bool]:
        """``(input events, operations, analog)`` of one call over all its steps and samples (module docstring)."""
        qh, kh, vh = (self._heads(x.detach()) != 0 for x in (q, k, v))
        events = qh.sum() + kh.sum() + vh.sum()
        pairs = (kh.sum(dim=3) * vh.sum(dim=3)).sum()  # sum over steps, samples, heads, tokens of |k_l| |v_l|
        operations = pairs + qh.sum() * qh.shape[3]
        analog = not all(is_spike_valued(x.detach().flatten(0, 1)) for x in (q, k, v))
        return float(events), float(operations), analog

    def extra_repr(self) -> str:
        return f"heads={self.heads}, scale={self.scale:g}"


class SpikingSelfAttention(nn.Module):
    """``[T, B, C, H, W] -> [T, B, C, H, W]``: ``output(attend(product(query(x), key(x), value(x))))``.

    query, key, value, output: the projections (1x1 convolution, batch-norm, neuron), as the method builds a
    ``Conv(C, 1, norm=True)``; product: an ``AttentionProduct``; attend: the neuron after it.
    """

    def __init__(self, query: nn.Module, key: nn.Module, value: nn.Module, product: AttentionProduct,
                 attend: nn.Module, output: nn.Module) -> None:
        super().__init__()
        self.query, self.key, self.value = query, key, value
        self.product, self.attend, self.output = product, attend, output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.attend(self.product(self.query(x), self.key(x), self.value(x))))


class TokenSum(nn.Module):
    """SDSA's column sum ``(k, v) -> sum_l k_l * v_l``: two ``[T, B, C, H, W]`` maps -> ``[T, B, C, 1, 1]``."""

    def forward(self, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        check_maps("TokenSum", 1, k, v)
        return (k * v).sum(dim=(3, 4), keepdim=True)

    def synaptic_operations(self, k: torch.Tensor, v: torch.Tensor) -> tuple[float, float, bool]:
        """``(input events, operations, analog)`` of one call: the key and value spikes read, one accumulate per
        token and channel where both fired (module docstring)."""
        kb, vb = k.detach() != 0, v.detach() != 0
        analog = not all(is_spike_valued(x.detach().flatten(0, 1)) for x in (k, v))
        return float(kb.sum() + vb.sum()), float((kb & vb).sum()), analog


class SpikeDrivenSelfAttention(nn.Module):
    """``[T, B, C, H, W] -> [T, B, C, H, W]``: ``output(query(x) * attend(token_sum(key(x), value(x))))``.

    query, key, value: the projections (1x1 convolution, batch-norm, neuron), as the method builds a
    ``Conv(C, 1, norm=True)``; token_sum: a ``TokenSum``; attend: the neuron on its ``[T, B, C, 1, 1]`` counts, whose
    spikes mask every token's query; output: ``Conv(C, 1, norm=True, act=False)``, currents for the membrane
    shortcut.
    """

    def __init__(self, query: nn.Module, key: nn.Module, value: nn.Module, token_sum: TokenSum,
                 attend: nn.Module, output: nn.Module) -> None:
        super().__init__()
        self.query, self.key, self.value = query, key, value
        self.token_sum, self.attend, self.output = token_sum, attend, output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.query(x)
        return self.output(q * self.attend(self.token_sum(self.key(x), self.value(x))))


class QuerySum(nn.Module):
    """Q-K attention's sums of the query spikes ``q [T, B, C, H, W]``: per head and token (``over="channels"``: the
    ``d = C / heads`` channels of each head, ``-> [T, B, heads, H, W]``) or per channel (``over="tokens"``,
    ``-> [T, B, C, 1, 1]``)."""

    def __init__(self, heads: int, over: str) -> None:
        super().__init__()
        check_heads(heads, "QuerySum")
        if over not in QUERY_SUMS:
            raise unknown_choice("QuerySum over", over, QUERY_SUMS)
        self.heads, self.over = heads, over

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        check_maps("QuerySum", self.heads, q)
        if self.over == "tokens":
            return q.sum(dim=(3, 4), keepdim=True)
        t, b, c, h, w = q.shape
        return q.reshape(t, b, self.heads, c // self.heads, h, w).sum(dim=3)

    def mask(self, k: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        """``k [T, B, C, H, W]`` times the attention neurons' spikes (of ``forward``'s shape), each head's or
        channel's spike on its keys."""
        check_maps("QuerySum", self.heads, k)
        t, b, c, h, w = k.shape
        sums = (t, b, c, 1, 1) if self.over == "tokens" else (t, b, self.heads, h, w)
        if attention.shape != sums:
            raise ConfigError(f"QuerySum.mask: the attention spikes {tuple(attention.shape)} are not the sums' "
                              f"shape {sums} for keys {tuple(k.shape)}")
        if self.over == "tokens":
            return k * attention
        return (k.reshape(t, b, self.heads, c // self.heads, h, w) * attention.unsqueeze(3)).reshape(k.shape)

    def synaptic_operations(self, q: torch.Tensor) -> tuple[float, float, bool]:
        """``(input events, operations, analog)``: every query spike is read once and adds one to its sum."""
        events = float((q.detach() != 0).sum())
        return events, events, not is_spike_valued(q.detach().flatten(0, 1))

    def extra_repr(self) -> str:
        return f"heads={self.heads}, over={self.over}"


class QKAttention(nn.Module):
    """``[T, B, C, H, W] -> [T, B, C, H, W]``: ``output(query_sum.mask(key(x), attend(query_sum(query(x)))))``.

    query, key, output: the projections (1x1 convolution, batch-norm, neuron), as the method builds a
    ``Conv(C, 1, norm=True)``; query_sum: a ``QuerySum``; attend: the neuron on its sums.
    """

    def __init__(self, query: nn.Module, key: nn.Module, query_sum: QuerySum, attend: nn.Module,
                 output: nn.Module) -> None:
        super().__init__()
        self.query, self.key, self.query_sum, self.attend, self.output = query, key, query_sum, attend, output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attention = self.attend(self.query_sum(self.query(x)))
        return self.output(self.query_sum.mask(self.key(x), attention))

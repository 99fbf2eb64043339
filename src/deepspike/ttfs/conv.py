"""Closed-form first spike times of a convolutional TTFS layer (same neuron as ``dense.spike_times``)."""

from __future__ import annotations

import torch

from deepspike.ttfs import _validate as v
from deepspike.ttfs.autograd import layer_times
from deepspike.ttfs.backend_torch import out_size
from deepspike.ttfs.causal_set import DEFAULT_CHUNK_ELEMENTS

MAX_PADDING = 2**16  # padding at or above it is refused: the native kernels keep the geometry in int32


def spike_times_conv2d(
    t_in: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    kernel: str = "exp",
    theta: float = 1.0,
    tau: float = 1.0,
    backend: str = "auto",
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """First spike time of every output neuron of a conv layer: ``spike_times`` per receptive field.

    Output neuron (o, y, x) sees inputs ``t_in[c, y*s + ky - p, x*s + kx - p]`` with weights
    ``weight[o, c, ky, kx]``; positions in the zero padding mean "no spike" (+inf, never t = 0).
    The bias is one extra input spike at t = 0 per output neuron, weight ``bias[o]``.

    Args:
        t_in: [B, C, H, W] input spike times (+inf = no spike).
        weight: [O, C, kh, kw]; bias: optional [O].
    Returns:
        [B, O, H', W'] spike times, ``H' = (H + 2p - kh)//s + 1``; exact gradients w.r.t. all tensors.
    Backends as in ``spike_times`` (``auto``: native C kernels for float32 CPU tensors).
    Memory: numba backend: the inputs' sort order + 2 x O*H'*W' sums per thread; native backend: per
        thread, one list of ``C*kh*kw + 1`` 8-byte entries per output position (kept for reuse); torch backend:
        unfolded columns of ``max(1, chunk_elements // (H'W' (fan_in + 1)))`` samples at a time and solver
        blocks of at most ``max(chunk_elements, fan_in + 1)`` elements (never B x O x H'W' x fan_in);
        triton backend (CUDA): the same unfolded columns, sorted, and the torch backend's backward.
    """
    v.check_neuron_params(kernel, theta, tau)
    v.check_backend(backend)
    v.check_times(t_in, 4, "spike_times_conv2d", scan_values=False)
    v.check_weight(weight, "[O, C, kh, kw]", 4, t_in.shape[1], "spike_times_conv2d")
    v.check_bias(bias, weight.shape[0], "spike_times_conv2d")
    stride = v.pair(stride, "stride")
    padding = v.pair(padding, "padding")
    if min(stride) < 1 or min(padding) < 0:
        raise v.ConfigError(f"spike_times_conv2d: need stride >= 1 and padding >= 0, got {stride}, {padding}")
    if max(padding) >= MAX_PADDING:  # the native kernels' int32 geometry (a larger one crashed them)
        raise v.ConfigError(f"spike_times_conv2d: padding must be below {MAX_PADDING}, got {padding}")
    padded = tuple(n + 2 * p for n, p in zip(t_in.shape[2:], padding))
    stride = tuple(min(s, n) for s, n in zip(stride, padded))  # a stride past the padded input: the same one row
    v.check_chunk(chunk_elements, "spike_times_conv2d")
    ho = out_size(t_in.shape[2], weight.shape[2], stride[0], padding[0])
    wo = out_size(t_in.shape[3], weight.shape[3], stride[1], padding[1])
    if ho < 1 or wo < 1:
        raise v.ConfigError(
            f"spike_times_conv2d: kernel {tuple(weight.shape[2:])} larger than padded input "
            f"{tuple(t_in.shape[2:])} with padding {padding}"
        )
    return layer_times(t_in, weight, bias, stride, padding, kernel, theta, tau, backend, chunk_elements,
                       "spike_times_conv2d")

"""Pooling of spike times.

* ``max_pool_times``: the max-pooling of zhou2021 (sec. 3.3, "e^{t_j/tau} = min_i e^{t_i/tau}"): the output
  spikes with the EARLIEST input of its window, ``t_out = min_window t_i`` (the large activation of a
  TTFS code is the early spike). zhou2021's released code keeps the latest spike, which is a bug.
  Padding is "no spike" (+inf), so it never wins.
* ``avg_pool_times``: zhou2021's average pooling, "realized by letting w_ji = theta/(N - 1) for N inputs":
  an ordinary TTFS neuron (``spike_times`` with the layer's kernel) whose N window inputs all carry the fixed
  weight ``theta/(N-1)``. For the exp kernel no k < N inputs reach ``k theta/(N-1) > theta``, so the neuron
  fires only after all N inputs, at ``exp(t_out/tau) = sum_i exp(t_i/tau)``, i.e.
  ``t_out = tau * logsumexp(t/tau) = tau log N + tau log(mean_i e^{t_i/tau})`` (the mean in the z domain,
  delayed by ``tau log N``); one silent input silences the output. For relpsp the same neuron gives
  ``t_out = ((N-1) + sum_C t_i)/|C|`` over its causal set. The result is independent of theta.
  Padding is silent inputs (the weights stay ``theta/(N-1)``, N = k*k): with the exp kernel every window
  that touches the padding is silent (its N - 1 or fewer real inputs sum to at most theta, reached only
  as t -> inf); relpsp fires on the real inputs' causal set.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deepspike.core.errors import ConfigError
from deepspike.core.precision import at_least_float32
from deepspike.ttfs import _validate as v
from deepspike.ttfs.causal_set import DEFAULT_CHUNK_ELEMENTS
from deepspike.ttfs.conv import spike_times_conv2d


def max_pool_times(
    t_in: torch.Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> torch.Tensor:
    """Earliest spike of each window: ``t_out[b, c, y, x] = min_window t_in``; [B, C, H, W] -> [B, C, H', W'].

    ``H' = (H + 2p - k)//s + 1``; padding (``0 <= p <= k // 2``) is "no spike" (+inf), never the minimum.
    The gradient flows to the earliest input (``dt_out/dt_i = 1`` for the argmin, 0 otherwise).
    """
    v.check_times(t_in, 4, "max_pool_times", scan_values=False)
    k, s, p = v.pool_window(t_in, kernel_size, stride, padding, "max_pool_times")
    out = _EarliestPool.apply(t_in, k, s, p)
    # The scan for NaN/-inf runs on the smaller output when every input lies in a window: max-pooling propagates
    # NaN, and a -inf wins each window it is in. (Strides past the kernel or a floor-dropped border skip inputs.)
    covered = all(_windows_cover(n, k_, s_, p_) for n, k_, s_, p_ in zip(t_in.shape[2:], k, s, p))
    v.check_time_values(out if covered else t_in, "max_pool_times")
    return out


def _windows_cover(n: int, k: int, s: int, p: int) -> bool:
    """True when the pooling windows (size k, stride s, padding p) along an axis of n inputs touch every input."""
    n_out = (n + 2 * p - k) // s + 1
    return s <= k and (n_out - 1) * s - p + k >= n


class _EarliestPool(torch.autograd.Function):
    """``min_window t = -max_pool2d(-t)`` (max_pool2d pads with -inf, i.e. +inf = no spike for the times) with one
    negation each way fewer than autograd through the formula: the output is negated in place, and the backward is
    max-pooling's own backward from the saved indices (``d min / dt_i = 1`` at the argmin)."""

    @staticmethod
    def forward(ctx, t_in, k, s, p):
        out, idx = F.max_pool2d(-t_in, k, s, p, return_indices=True)
        ctx.save_for_backward(t_in, idx)
        ctx.conf = (k, s, p)
        return out.neg_()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        t_in, idx = ctx.saved_tensors
        k, s, p = ctx.conf
        grad = torch.ops.aten.max_pool2d_with_indices_backward(grad_out, t_in, k, s, p, (1, 1), False, idx)
        return grad, None, None, None


def avg_pool_times(
    t_in: torch.Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    kernel: str = "exp",
    theta: float = 1.0,
    tau: float = 1.0,
    backend: str = "auto",
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """zhou2021's average pooling: a TTFS neuron per channel and window with weights ``theta/(N-1)``.

    Args:
        t_in: [B, C, H, W] spike times; kernel_size: window (N = kh*kw >= 2 inputs); stride: default window;
        padding: silent (+inf) inputs on each side, ``0 <= p <= k // 2``.
    Returns:
        [B, C, H', W'] spike times, ``H' = (H + 2p - kh)//s + 1``. exp: evaluated in its closed form
        ``tau * logsumexp(t_window / tau)`` (+inf if a window input, padding included, is silent); relpsp:
        ``spike_times_conv2d`` with the fixed weights (its padding is "no spike" as well).
    """
    v.check_neuron_params(kernel, theta, tau)
    v.check_backend(backend)
    v.check_times(t_in, 4, "avg_pool_times")
    v.check_chunk(chunk_elements, "avg_pool_times")
    (kh, kw), s, p = v.pool_window(t_in, kernel_size, stride, padding, "avg_pool_times")
    n = kh * kw
    if n < 2:
        raise ConfigError(f"avg_pool_times: the window needs at least 2 inputs (weight theta/(N-1)), got {n}")
    b, c, h, w = t_in.shape
    work = at_least_float32(t_in.dtype)  # float16/bfloat16 are computed in float32
    if kernel == "exp":  # closed form of that neuron; exact, and no rounding of theta/(N-1) sums
        padded = F.pad(t_in.reshape(b * c, 1, h, w).to(work), (p[1], p[1], p[0], p[0]), value=float("inf"))
        cols = F.unfold(padded, (kh, kw), stride=s)  # [B*C, 1, H+2p, W+2p] -> [B*C, N, L]
        silent = torch.isinf(cols).any(1)  # [B*C, L]
        lse = tau * torch.logsumexp(torch.where(torch.isinf(cols), torch.zeros_like(cols), cols) / tau, dim=1)
        out = torch.where(silent, torch.full_like(lse, float("inf")), lse)
        ho, wo = (h + 2 * p[0] - kh) // s[0] + 1, (w + 2 * p[1] - kw) // s[1] + 1
        return out.reshape(b, c, ho, wo).to(t_in.dtype)  # [B*C, L] -> [B, C, H', W']
    t_flat = t_in.reshape(b * c, 1, h, w)  # [B, C, H, W] -> [B*C, 1, H, W]: channels pool independently
    # on the times' device, in the dtype they are computed in (theta/(N-1) rounded to bfloat16 moved every output by up
    # to 0.2% of theta/sum w)
    both = torch.tensor([theta, theta / (n - 1)], dtype=torch.float64, device="cpu").to(work)
    if not bool(((both > 0) & torch.isfinite(both)).all()):  # else an overflow RuntimeError, or theta named 0 by the
        finfo = torch.finfo(work)  # conv's check under spike_times_conv2d's name
        raise ConfigError(f"avg_pool_times: threshold theta = {theta!r} or its window weight theta/(N-1) with N = {n} "
                          f"is not a positive finite number in {work}, the dtype the times are computed in; use theta "
                          f"in [{finfo.tiny * (n - 1):.4g}, {finfo.max:.4g}] or float64 times")
    weight = t_in.new_full((1, 1, kh, kw), theta / (n - 1), dtype=work)
    out = spike_times_conv2d(
        t_flat, weight, None, s, p, kernel, theta, tau, backend=backend, chunk_elements=chunk_elements
    )
    return out.reshape(b, c, out.shape[2], out.shape[3])  # [B*C, 1, H', W'] -> [B, C, H', W']

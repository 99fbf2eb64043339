"""Closed-form first spike times of a fully connected TTFS layer (zhou2021 exp kernel, zhang2021 ReL-PSP)."""

from __future__ import annotations

import torch

from deepspike.ttfs import _validate as v
from deepspike.ttfs.autograd import layer_times
from deepspike.ttfs.causal_set import DEFAULT_CHUNK_ELEMENTS


def spike_times(
    t_in: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    kernel: str = "exp",
    theta: float = 1.0,
    tau: float = 1.0,
    backend: str = "auto",
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """First output spike times of a dense layer of non-leaky IF neurons that fire once.

    exp (zhou2021 eq. 35; ``V(t) = sum_C w_i (1 - exp(-(t - t_i)/tau))``):
        ``exp(t_out/tau) = sum_C w_i exp(t_i/tau) / (sum_C w_i - theta)``.
    relpsp (zhang2021 eq. 11; ``V(t) = sum_C w_i (t - t_i)``):
        ``t_out = (theta + sum_C w_i t_i) / sum_C w_i``.
    C is the causal set of the FIRST threshold crossing (see ``deepspike.ttfs.causal_set``); ties
    enter together, silent inputs (+inf) never enter, no crossing gives +inf.

    Args:
        t_in: [B, N] input spike times (+inf = no spike).
        weight: [M, N] weights.
        bias: optional [M]: weight of an extra input spike at t = 0 (zhou2021's bias).
        backend: ``auto`` (float32 on CPU: ``native`` when its C kernels build, else numba; float64 on CPU:
            numba; CUDA: triton; each when available, else torch), ``native``, ``numba``, ``triton`` or
            ``torch``.
        chunk_elements: torch backend bound: temporaries are blocks of at most
            ``max(chunk_elements, N + 1)`` elements (a few alive at once); the triton backend sorts rows
            of that many samples' times. The numba backend never holds more than the inputs' sort order
            and 2 x M running sums per thread; the native backend one list of N + 1 entries per thread.
    Returns:
        [B, M] output spike times (+inf = no spike); differentiable w.r.t. ``t_in``, ``weight``, ``bias``
        with the exact gradients of zhang2021 eq. 13-14 (relpsp) and their exp-kernel analogues.
        float16/bfloat16 times are computed in float32 on every backend and returned in their own dtype;
        an empty batch (B = 0) gives a [0, M] result. A NaN or -inf time, or a NaN/inf parameter, raises
        ``ConfigError`` (``deepspike.ttfs``).
    """
    v.check_neuron_params(kernel, theta, tau)
    v.check_backend(backend)
    v.check_times(t_in, 2, "spike_times", scan_values=False)
    v.check_weight(weight, "[M, N]", 2, t_in.shape[1], "spike_times")
    v.check_bias(bias, weight.shape[0], "spike_times")
    v.check_chunk(chunk_elements, "spike_times")
    t_img = t_in.reshape(t_in.shape[0], t_in.shape[1], 1, 1)  # [B, N] -> [B, N, 1, 1]
    w_img = weight.reshape(weight.shape[0], weight.shape[1], 1, 1)  # [M, N] -> [M, N, 1, 1]
    t_out = layer_times(t_img, w_img, bias, (1, 1), (0, 0), kernel, theta, tau, backend, chunk_elements,
                        "spike_times")
    return t_out.reshape(t_in.shape[0], weight.shape[0])  # [B, M, 1, 1] -> [B, M]

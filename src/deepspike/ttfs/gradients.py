"""Exact gradients of the first spike time with the causal set held fixed (pure-torch reference).

With C = {i : t_i < t_out} (every input of the causal set arrives strictly before the spike; inputs at
exactly ``t_out`` contribute nothing to ``V(t_out)``) and ``D`` the slope returned by the solver:

* ``exp``:    ``dt_out/dt_i = w_i e_i / D``,  ``dt_out/dw_i = tau (e_i - 1) / D``,
  with ``e_i = exp((t_i - t_out)/tau)`` and ``D = sum_C w - theta``  (implicit differentiation of
  ``V(t_out) = theta``; ``tau dV/dt = D`` at the spike).
* ``relpsp``: ``dt_out/dt_i = w_i / D``,  ``dt_out/dw_i = (t_i - t_out) / D``,  ``D = sum_C w``
  (zhang2021 eq. 13-14).

Outputs without a spike (``t_out = +inf``) pass no gradient.
"""

from __future__ import annotations

import torch

from deepspike.ttfs.causal_set import DEFAULT_CHUNK_ELEMENTS


def output_coefficient(grad_out: torch.Tensor, t_out: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    """``c = dL/dt_out / D`` where the output spiked, else 0; all [R, M]."""
    ok = torch.isfinite(t_out) & (slope != 0) & torch.isfinite(grad_out)
    return torch.where(ok, grad_out / torch.where(ok, slope, torch.ones_like(slope)), torch.zeros_like(slope))


def grad_rows(
    t_in: torch.Tensor,
    weight: torch.Tensor,
    t_out: torch.Tensor,
    slope: torch.Tensor,
    grad_out: torch.Tensor,
    kernel: str,
    tau: float,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Vector-Jacobian product of ``solve_rows``.

    Args:
        t_in: [R, N]; weight: [M, N]; t_out, slope, grad_out: [R, M].
    Returns:
        ``(grad_t_in [R, N], grad_weight [M, N])``:
        ``grad_t[r, i] = sum_m c[r, m] w[m, i] e[r, m, i] mask``,
        ``grad_w[m, i] = sum_r c[r, m] g(t_i, t_out) mask`` with ``c = grad_out / D`` and
        ``g = tau (e - 1)`` (exp) or ``t_i - t_out`` (relpsp).
    Memory: [r, m, N] blocks with ``r * m * N <= max(chunk_elements, N)``, a few alive at once.
    """
    rows, n_in = t_in.shape
    n_out = weight.shape[0]
    coef = output_coefficient(grad_out, t_out, slope)
    grad_t = torch.zeros_like(t_in)
    grad_w = torch.zeros_like(weight)
    if rows == 0 or n_out == 0 or n_in == 0:
        return grad_t, grad_w
    m_block = max(1, min(n_out, chunk_elements // n_in))
    r_block = max(1, chunk_elements // (m_block * n_in))
    for r0 in range(0, rows, r_block):
        r1 = min(rows, r0 + r_block)
        t = t_in[r0:r1].unsqueeze(1)  # [r, 1, N]
        for m0 in range(0, n_out, m_block):
            m1 = min(n_out, m0 + m_block)
            c = coef[r0:r1, m0:m1].unsqueeze(2)  # [r, m, 1]
            to = t_out[r0:r1, m0:m1].unsqueeze(2)  # [r, m, 1]
            mask = (t < to) & (c != 0)  # causal set, [r, m, N]
            diff = torch.where(mask, t - to, torch.zeros((), dtype=t.dtype))  # t_i - t_out, finite
            w = weight[m0:m1].unsqueeze(0)  # [1, m, N]
            if kernel == "exp":
                e = torch.where(mask, torch.exp(diff / tau), torch.zeros((), dtype=t.dtype))
                grad_t[r0:r1] += (c * w * e).sum(1)
                grad_w[m0:m1] += (c * (tau * (e - mask.to(e.dtype)))).sum(0)
            else:
                grad_t[r0:r1] += (c * w * mask).sum(1)
                grad_w[m0:m1] += (c * diff).sum(0)
    return grad_t, grad_w

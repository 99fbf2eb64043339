"""Pure-torch reference solver of the first output spike time (sort + cumsum over the causal set).

Neuron models (non-leaky IF, one spike, threshold ``theta`` > 0, input spike times ``t_i``):

* ``exp`` (zhou2021 eq. 34-35): ``V(t) = sum_{i: t_i < t} w_i (1 - exp(-(t - t_i)/tau))``.
  With ``z = exp(t/tau)``, ``V(t) = theta`` on causal set C gives
  ``z_out = sum_C w_i z_i / (sum_C w_i - theta)``  (needs ``sum_C w > theta``).
* ``relpsp`` (zhang2021 eq. 8-11): ``V(t) = sum_i w_i (t - t_i)_+`` gives
  ``t_out = (theta + sum_C w_i t_i) / sum_C w_i``  (needs ``sum_C w > 0``).

Causal set: inputs sorted by time, prefixes ending at the end of a tie group (inputs at the same time enter
together). Both membranes are continuous and start at ``V = 0 < theta``, so the FIRST threshold crossing
lies in the first inter-input interval ``[t_k, t_{k+1}]`` (``t_{N+1} = +inf``) at whose end the membrane of
prefix k reaches theta: ``V_k(t_{k+1}) >= theta``. This is the same set as "first prefix whose solution lies
in ``[t_k, t_{k+1}]``" (zhou2021's rule) but cannot miss a spike to rounding. Silent inputs (+inf) never
enter C; no valid prefix means no spike (+inf).

Numerics: times are shifted per row by the row's earliest input before ``exp``, so ``z`` stays in range as
long as a row's finite input times span less than ~700 tau (float64) or ~85 tau (float32); blocks with longer
rows sum in the log domain (``_exp_sums_log_domain``), where nothing overflows.
"""

from __future__ import annotations

import math

import torch

DEFAULT_CHUNK_ELEMENTS = 2**24
# Spans (in tau) of finite times up to which exp((t - ref)/tau) and its reciprocal stay finite, with margin
EXP_SPAN_LIMIT = {torch.float32: 80.0, torch.float64: 700.0}


def solve_rows(
    t_in: torch.Tensor,
    weight: torch.Tensor,
    kernel: str = "exp",
    theta: float = 1.0,
    tau: float = 1.0,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """First spike time of every output neuron for every row of input times (no autograd).

    Args:
        t_in: [R, N] input spike times (+inf = no spike).
        weight: [M, N] synaptic weights.
    Returns:
        ``(t_out, slope)``, both [R, M]: ``t_out`` (+inf = no spike) and the causal-set denominator
        ``D = sum_C w - theta`` (exp) or ``D = sum_C w`` (relpsp), 0 where there is no spike.
        ``tau * dV/dt`` (exp) or ``dV/dt`` (relpsp) at the spike equals D; every gradient divides by it.

    Memory: the working tensors are [r, m, N] blocks with ``r * m * N <= max(chunk_elements, N)``;
    about eight such blocks live at once.
    """
    rows, n_in = t_in.shape
    n_out = weight.shape[0]
    t_out = torch.full((rows, n_out), math.inf, dtype=t_in.dtype, device=t_in.device)
    slope = torch.zeros((rows, n_out), dtype=t_in.dtype, device=t_in.device)
    if rows == 0 or n_out == 0 or n_in == 0:
        return t_out, slope
    with torch.no_grad():
        t_sorted, order = torch.sort(t_in, dim=1)  # [R, N], shared by all outputs
        m_block = max(1, min(n_out, chunk_elements // n_in))
        r_block = max(1, chunk_elements // (m_block * n_in))
        for r0 in range(0, rows, r_block):
            r1 = min(rows, r0 + r_block)
            for m0 in range(0, n_out, m_block):
                m1 = min(n_out, m0 + m_block)
                t_blk, s_blk = _solve_block(
                    t_sorted[r0:r1], order[r0:r1], weight[m0:m1], kernel, theta, tau
                )
                t_out[r0:r1, m0:m1] = t_blk
                slope[r0:r1, m0:m1] = s_blk
    return t_out, slope


def _solve_block(t_sorted, order, weight, kernel, theta, tau):
    """Solve one [r, m] block from sorted times [r, N] and their order; see ``solve_rows``."""
    r, n = t_sorted.shape
    m = weight.shape[0]
    finite = torch.isfinite(t_sorted)  # [r, N]; silent inputs sort last
    ref = torch.where(finite[:, :1], t_sorted[:, :1], torch.zeros_like(t_sorted[:, :1]))  # [r, 1]
    rel = torch.where(finite, t_sorted - ref, torch.zeros_like(t_sorted))  # [r, N], finite
    rel_next = torch.cat([t_sorted[:, 1:] - ref, torch.full_like(ref, math.inf)], dim=1)  # [r, N]
    # w_sorted[r, m, j] = weight[m, order[r, j]]: [r, m, N]
    w_sorted = weight.unsqueeze(0).expand(r, m, n).gather(2, order.unsqueeze(1).expand(r, m, n))
    w_sorted = w_sorted * finite.unsqueeze(1)
    a = w_sorted.cumsum(2)  # sum_C w, [r, m, N]
    last_ok = finite & (rel_next > rel)  # prefix ends at a tie-group end and holds no silent input
    next_inf = torch.isinf(rel_next).unsqueeze(1)  # [r, 1, N]
    long_span = kernel == "exp" and bool(rel.max() / tau > EXP_SPAN_LIMIT.get(rel.dtype, 80.0))
    if long_span:  # z would overflow: log-domain sums (bz holds log sum_C w z, NaN/-inf where the sum is <= 0)
        bz, bz_over_z_next = _exp_sums_log_domain(w_sorted, rel / tau, rel_next / tau)
        v_end = torch.where(next_inf, a, a - bz_over_z_next)
        reached = torch.where(next_inf, a > theta, v_end >= theta)
    elif kernel == "exp":
        z = torch.exp(rel / tau).unsqueeze(1)  # [r, 1, N]
        z_next = torch.exp(rel_next / tau).unsqueeze(1)
        bz = (w_sorted * z).cumsum(2)  # sum_C w z
        v_end = torch.where(next_inf, a, a - bz / torch.where(next_inf, torch.ones_like(z_next), z_next))
        reached = v_end >= theta
        if not next_inf.all():
            reached = torch.where(next_inf, a > theta, reached)
    else:
        bz = (w_sorted * rel.unsqueeze(1)).cumsum(2)  # sum_C w t (shifted)
        tn = torch.where(torch.isinf(rel_next), torch.zeros_like(rel_next), rel_next).unsqueeze(1)
        reached = torch.where(next_inf, a > 0, a * tn - bz >= theta)
    reached = reached & last_ok.unsqueeze(1)  # [r, m, N]
    spikes = reached.any(2)  # [r, m]
    k = reached.to(torch.uint8).argmax(2, keepdim=True)  # first valid prefix, [r, m, 1]
    a_k = a.gather(2, k).squeeze(2)
    b_k = bz.gather(2, k).squeeze(2)
    lo = rel.unsqueeze(1).expand(r, m, n).gather(2, k).squeeze(2)
    hi = rel_next.unsqueeze(1).expand(r, m, n).gather(2, k).squeeze(2)
    if long_span:  # b_k = log sum_C w z: t = tau (log sum_C w z - log(sum_C w - theta))
        denom = a_k - theta
        ok = spikes & torch.isfinite(b_k) & (denom > 0)
        # sum_C w = theta (V = theta - sum_C w z / z < theta, "reached" by rounding): the crossing is the interval's
        # end, as the ratio s/0 = inf gives it below; otherwise (sum_C w < theta: V came down to theta) its start
        t_rel = torch.where(ok, tau * (b_k - torch.log(torch.where(ok, denom, torch.ones_like(denom)))),
                            torch.where(denom == 0, hi, lo))
    elif kernel == "exp":
        denom = a_k - theta
        ratio = b_k / denom
        t_rel = tau * torch.log(torch.where(spikes & (ratio > 0), ratio, torch.ones_like(ratio)))
    else:
        denom = a_k
        t_rel = (theta + b_k) / torch.where(spikes, denom, torch.ones_like(denom))
    t_rel = torch.minimum(torch.maximum(t_rel, lo), hi)  # stay inside the crossing interval
    t_lo = t_sorted.unsqueeze(1).expand(r, m, n).gather(2, k).squeeze(2)  # the last causal input's time
    t_hi = torch.cat([t_sorted[:, 1:], torch.full_like(ref, math.inf)], dim=1)
    t_hi = t_hi.unsqueeze(1).expand(r, m, n).gather(2, k).squeeze(2)
    t_out = torch.where(spikes, after_last_input(t_rel + ref, t_lo, t_hi), torch.full_like(t_rel, math.inf))
    slope = torch.where(spikes, denom, torch.zeros_like(denom))
    return t_out, slope


def after_last_input(t_out: torch.Tensor, t_last: torch.Tensor, t_next: torch.Tensor) -> torch.Tensor:
    """``t_out`` clamped to ``[nextafter(t_last, +inf), t_next]``: the spike lies strictly after the time ``t_last``
    of its last causal input (``V(t_last) < theta`` there, or it would have fired before that input) and at most
    at the next input time ``t_next > t_last``. Rounding can put the formula's value on ``t_last`` (about 1 in
    10^5 float32 spikes), where backward's causal mask ``t_i < t_out`` then lost that input's gradients."""
    return torch.minimum(torch.maximum(t_out, torch.nextafter(t_last, torch.full_like(t_last, math.inf))), t_next)


def _exp_sums_log_domain(w_sorted, u, u_next):
    """Log-domain form of the exp kernel's prefix sums for rows whose times span too many tau for exp(t/tau).

    Args: w_sorted [r, m, N] (0 for silent inputs); u = (t - ref)/tau and u_next (next input's, +inf after the
    last) [r, N]. With ``L± = logcumsumexp(log w± + u)`` over the prefix (positive and negative weights apart):
    returns ``log sum_C w z = L+ + log(1 - exp(L- - L+))`` (NaN or -inf where the sum is <= 0) and
    ``sum_C w z / z_next = exp(L+ - u_next) - exp(L- - u_next)``, whose exponents are at most ``log sum |w|``
    because every prefix input precedes the next one; both [r, m, N].
    """
    u, u_next = u.unsqueeze(1), u_next.unsqueeze(1)
    lp = torch.logcumsumexp(torch.log(w_sorted.clamp_min(0)) + u, dim=2)
    ln = torch.logcumsumexp(torch.log((-w_sorted).clamp_min(0)) + u, dim=2)
    log_bz = lp + torch.log1p(-torch.exp(ln - lp))
    return log_bz, torch.exp(lp - u_next) - torch.exp(ln - u_next)

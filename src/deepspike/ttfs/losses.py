"""Losses and regularisers of TTFS training (zhou2021 eq. 5, zhang2021 eq. 12) and zhou2021's gradient clip.

Output spike times ``t [B, K]`` (+inf = no spike); ``z = exp(t/tau)``; target class ``c [B]``.

* ``zhou_paper``: eq. 5 as printed,
  ``-log(z_c^-1 / sum_{i != c} z_i^-1) = t_c/tau + log sum_{i != c} e^{-t_i/tau}``.
  The target is left out of the denominator, so the loss is unbounded below (it keeps widening the margin);
  the L2 term keeps the weights in check.
* ``zhou_code``: what zhou2021's released code trains: softmax cross-entropy over the logits ``-z``.
* ``ce``: zhang2021 eq. 12, softmax cross-entropy over the logits ``-t``.
All are means over the batch. Silent outputs enter every loss at a finite "late" time (``fill_silent``).

Regularisers (zhou2021 eq. 5, second and third terms), over the TTFS neuron layers l:
``K sum_l R(max(0, theta - sum_i w_ji))`` (weight-sum cost) and ``lambda sum_l R(w^2)``, with the reduction
``R`` a sum (the paper's formula) or a mean over neurons / weights of the layer (the released code).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from deepspike.core.errors import ConfigError, unknown_choice
from deepspike.core.precision import at_least_float32

TTFS_LOSSES = ("zhou_code", "zhou_paper", "ce")
REDUCTIONS = ("mean", "sum")


def fill_silent(t: torch.Tensor, t_silent: float) -> torch.Tensor:
    """Replace +inf (no spike) by ``max(t_silent, latest finite time in t)``, a constant: ``[B, K]``.

    No output is ever scored as earlier than a spiking one for being silent.
    """
    finite = torch.isfinite(t)
    latest = t[finite].max().item() if bool(finite.any()) else t_silent
    late = max(float(t_silent), latest)
    return torch.where(finite, t, torch.full_like(t, late))


def ttfs_loss(name: str, t: torch.Tensor, target: torch.Tensor, tau: float = 1.0,
              t_silent: float = math.log(1e5)) -> torch.Tensor:
    """Scalar loss ``name`` (``zhou_code``, ``zhou_paper`` or ``ce``) of times ``t [B, K]``, ``target [B]``.

    zhou_paper: ``mean_b [t_c/tau + logsumexp_{i != c}(-t_i/tau)]``;
    zhou_code: ``cross_entropy(-exp(min(t/tau, 80)), c)``; ce: ``cross_entropy(-t, c)``.
    ``t_silent``: time given to silent outputs (default ``ln 1e5`` whatever ``tau``: the code's no-spike z = 1e5
    at tau = 1).
    """
    if name not in TTFS_LOSSES:
        raise unknown_choice("TTFS loss", name, TTFS_LOSSES)
    _check_scores(t, target, tau)
    t = fill_silent(t.to(at_least_float32(t.dtype)), t_silent)  # half times: e^(t/tau) in float32
    if name == "ce":
        return F.cross_entropy(-t, target)
    if name == "zhou_code":
        return F.cross_entropy(-torch.exp(torch.clamp(t / tau, max=80.0)), target)  # e^80 fits float32
    k = t.shape[1]
    if k < 2:  # the sum over i != c would be empty: logsumexp = -inf, a loss of -inf
        raise ConfigError("ttfs_loss: zhou_paper needs at least 2 classes (it sums over the classes other than the "
                          "target), got K = 1")
    is_target = F.one_hot(target, k).bool()  # [B, K]
    others = torch.where(is_target, torch.full_like(t, -math.inf), -t / tau)  # drop the target from the sum
    t_c = t.gather(1, target.unsqueeze(1)).squeeze(1)  # [B]
    return (t_c / tau + torch.logsumexp(others, dim=1)).mean()


def _check_scores(t: torch.Tensor, target: torch.Tensor, tau: float) -> None:
    """``ConfigError`` unless ``t`` is ``[B, K]`` (B, K >= 1) without NaN or -inf (+inf: no spike), ``target`` ``[B]``
    class indices in [0, K), and ``tau`` a finite number > 0."""
    if t.dim() != 2 or t.shape[0] == 0 or t.shape[1] == 0:
        raise ConfigError(f"ttfs_loss: times must be [B, K] with B, K >= 1, got {list(t.shape)}")
    if target.dtype != torch.long or list(target.shape) != [t.shape[0]]:
        raise ConfigError(f"ttfs_loss: target must be [B] = [{t.shape[0]}] class indices (int64), got "
                          f"{list(target.shape)} {target.dtype}")
    times_ok, targets_ok = (bool(x) for x in torch.stack([t.min() > -math.inf,  # False for NaN too: one pass,
                                                          (target.min() >= 0) & (target.max() < t.shape[1])]))
    if not times_ok:  # and one host sync for both checks
        raise ConfigError("ttfs_loss: spike times hold NaN or -inf (+inf means no spike)")
    if not targets_ok:
        raise ConfigError(f"ttfs_loss: target classes must lie in [0, {t.shape[1]})")
    if not (isinstance(tau, int | float) and 0 < tau < math.inf):
        raise ConfigError(f"ttfs_loss: tau must be a finite number > 0, got {tau!r}")


def _reduce(x: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction not in REDUCTIONS:
        raise unknown_choice("regulariser reduction", reduction, REDUCTIONS)
    return x.sum() if reduction == "sum" else x.mean()


def weight_sum_cost(layers, theta: float, reduction: str = "mean") -> torch.Tensor:
    """``sum_l R_j(max(0, theta - sum_i w_ji))`` over TTFS neuron layers (``layer.weight_sums()`` -> [M])."""
    terms = [_reduce(torch.relu(theta - layer.weight_sums()), reduction) for layer in layers]
    return torch.stack(terms).sum() if terms else torch.zeros(())


def l2_cost(layers, reduction: str = "mean") -> torch.Tensor:
    """``sum_l R(w^2)`` over the weights (and bias weights) of every TTFS neuron layer.

    ``mean``: the mean of ``w^2`` over all of a layer's weights and bias weights together.
    """
    terms = []
    for layer in layers:
        ws = torch.cat([w.reshape(-1) for w in layer.weights()])  # all of the layer's weights, flat
        terms.append(_reduce(ws**2, reduction))
    return torch.stack(terms).sum() if terms else torch.zeros(())


def clip_row_normalized(grad: torch.Tensor, max_norm: float = 10.0) -> torch.Tensor:
    """zhou2021's clip: scale ``grad`` so its row-normalised Frobenius norm is at most ``max_norm``.

    Rows = output neurons: ``grad`` [M, ...] is seen as [M, F]; the row-normalised norm is
    ``||G||_F / sqrt(M) = sqrt(mean_j ||g_j||^2)`` (the RMS of the row norms; our reading of the paper's
    phrase). Above ``max_norm`` the whole matrix is scaled by ``max_norm / norm`` (direction kept).
    Returns the (new) gradient tensor; ``grad`` itself is not modified.
    """
    if not max_norm > 0:
        raise ConfigError(f"gradient clip max_norm must be > 0, got {max_norm}")
    rows = grad.shape[0] if grad.dim() > 0 else 1
    norm = grad.norm() / math.sqrt(rows)
    if not torch.isfinite(norm) or norm <= max_norm:
        return grad
    return grad * (max_norm / norm)

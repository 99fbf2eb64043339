"""NeuNorm (wu2019 eq. 9-10): an auxiliary neuron per position normalises what a layer sends onward.

For the spikes ``o_t [B, F, H, W]`` of a convolutional layer, one auxiliary neuron per spatial position::

    x_t(i, j) = k_tau2 * x_{t-1}(i, j) + (v / F) * sum_f o_t,f(i, j),   x_0 = 0        (eq. 9)
    out_t,f(i, j) = o_t,f(i, j) - U_f(i, j) * x_t(i, j)                                 (eq. 10)

and the next layer convolves ``out_t`` instead of ``o_t``. ``U [F, H, W]`` is trainable, one map per
feature map ("the same size as the FM"), initialised to zero so training starts from plain STBP.

Our reading of "k_tau2 + vF = 1": the text calls eq. 9 "the average response ... with momentum", so
we take ``v`` to be the coefficient of the channel *average* (``(v/F) sum_f = v * mean_f``) and the
constraint to read ``k_tau2 + v = 1``: ``x`` is an exponential moving average of the mean firing of
the F maps, ``x_t = k_tau2 x_{t-1} + (1 - k_tau2) mean_f o_t,f``. A constant mean firing ``m`` then
gives ``x_t = m (1 - k_tau2^t) -> m``, the input statistic the next layer subtracts. (Taking the text
literally, ``v = (1 - k_tau2)/F`` would scale the average down by another ``1/F``, ~1/128 for the
paper's nets, leaving NeuNorm almost inert.)
"""

from __future__ import annotations

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.precision import LOW_PRECISION
from deepspike.neurons.carry import CarriesState
from deepspike.neurons.dynamics import check_initial_state


def auxiliary_trace(o: torch.Tensor, decay: float, x0: torch.Tensor | None = None) -> torch.Tensor:
    """``x_t = decay x_{t-1} + (1 - decay) mean_f o_t,f`` from ``x_0`` (None: 0, ``[B, 1, H, W]``):
    ``[T, B, F, H, W] -> [T, B, 1, H, W]`` in ``o``'s dtype. On bfloat16 / float16 spikes the means and the running
    ``x`` are float32 and each ``x_t`` is rounded once (as ``neurons.dynamics.membrane_readout``): run in bfloat16,
    the trace of decay 0.99 drifted up to 5% (7e-3) from the exact one, 13 times its rounding."""
    return _trace(o, decay, x0)[0]


def _trace(o: torch.Tensor, decay: float, x0: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(auxiliary_trace(o, decay, x0), x_T)``: ``x_T [B, 1, H, W]`` the running value after the last step (float32
    for a bfloat16 / float16 ``o``: what a call in pieces carries), ``x0`` for ``T = 0``."""
    low = o.dtype in LOW_PRECISION
    m = o.mean(dim=2, keepdim=True, dtype=torch.float32 if low else None)  # [T, B, 1, H, W]
    out, x = [], x0
    for m_t in m.unbind(0):
        x = (1.0 - decay) * m_t if x is None else decay * x + (1.0 - decay) * m_t
        out.append(x.to(o.dtype))
    return (torch.stack(out) if out else m.to(o.dtype)), x  # T x [B, 1, H, W] -> [T, B, 1, H, W] (T = 0: empty)


class NeuNorm(CarriesState, nn.Module):
    """``o_t - U * x_t`` with the auxiliary trace ``x`` of ``auxiliary_trace`` (module docstring).

    shape: the per-sample shape ``(F, H, W)`` of the spikes; ``decay`` is ``k_tau2`` (0.9 in wu2019 Table 7).
    forward: ``[T, B, F, H, W] -> [T, B, F, H, W]``.
    """

    def __init__(self, shape: tuple[int, int, int], decay: float = 0.9) -> None:
        super().__init__()
        if len(shape) != 3:
            raise ConfigError(f"NeuNorm needs feature maps (F, H, W); got shape {tuple(shape)}")
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"NeuNorm decay k_tau2={decay} must be in [0, 1)")
        self.decay = decay
        self.scale = nn.Parameter(torch.zeros(shape))  # U [F, H, W]

    def forward(self, o: torch.Tensor) -> torch.Tensor:
        check_initial_state(self.carried(), o[:, :, :1], "NeuNorm trace")  # [B, 1, H, W], carried from a batch
        trace, last = _trace(o, self.decay, self.carried())  # [T, B, 1, H, W]; the running x_T (float32 on bf16)
        if len(trace):
            self.keep(last)
        return o - self.scale * trace  # [F, H, W] * [T, B, 1, H, W]

    def extra_repr(self) -> str:
        return f"shape={tuple(self.scale.shape)}, decay={self.decay:g}"

"""Drive a tool's step-at-a-time module over ``[T, B, ...]`` inputs."""

from __future__ import annotations

import torch


def step_loop(step, x: torch.Tensor) -> torch.Tensor:
    """``out[t] = step(x[t])`` for ``t < T``: ``x [T, B, ...] -> [T, B, ...]``; ``step`` keeps its own state."""
    with torch.no_grad():
        return torch.stack([step(x[t]) for t in range(x.shape[0])])


def stateful_loop(module, x: torch.Tensor) -> torch.Tensor:
    """Like :func:`step_loop` for modules called ``module(x_t, state) -> (out, state)`` (nirtorch graphs)."""
    state = None
    outs = []
    with torch.no_grad():
        for t in range(x.shape[0]):
            out, state = module(x[t], state)
            outs.append(out)
    return torch.stack(outs)

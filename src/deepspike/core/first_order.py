"""First-order autograd Functions: a backward that refuses ``create_graph=True`` instead of dropping terms.

A custom ``torch.autograd.Function`` whose backward runs a compiled kernel (numba, oneDNN, Triton) or closed-form
formulas under ``no_grad`` has no gradient of its own. ``torch.autograd.function.once_differentiable`` guards only
half of that: it raises when the *incoming* gradient requires grad and the result is differentiated, but when it
does not (``dL/ds`` a constant, as for ``(s * c).sum()``), the returned gradient simply has no graph. A
gradient penalty ``||dL/dx||^2`` added to a loss then loses every term through that node (the dependence on the
saved inputs and weights) without a word: a silently wrong second-order gradient.

``first_order_backward(what)`` wraps such a backward: it is ``once_differentiable`` and, when the backward runs
with grad mode on (``torch.autograd.grad(..., create_graph=True)`` or ``backward(create_graph=True)``), raises
one ``RuntimeError`` naming the operation and the way to the differentiable path (``what``). First-order training
is unchanged (one ``torch.is_grad_enabled()`` test per backward call).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch.autograd.function import once_differentiable


def first_order_backward(what: str) -> Callable[[Callable], Callable]:
    """Decorator for a Function's ``backward``: ``once_differentiable``, and ``create_graph=True`` refused with
    ``"no second-order gradient (create_graph=True) through {what}"``. ``what`` names the operation and the
    differentiable alternative, e.g. ``"the fused LIF kernel; set DEEPSPIKE_FUSED=0 for the autograd loop"``."""

    def wrap(backward: Callable) -> Callable:
        once = once_differentiable(backward)

        @functools.wraps(backward)
        def guarded(ctx, *grads):
            if torch.is_grad_enabled():  # the engine runs backward in grad mode only for create_graph=True
                raise RuntimeError(f"no second-order gradient (create_graph=True) through {what}")
            return once(ctx, *grads)

        return guarded

    return wrap

"""The autograd graph behind a tensor, for tests that check which backward nodes a forward pass built, and the
float32 kernels' gradients against the float64 reference loops."""

from __future__ import annotations

import torch


def node_names(y: torch.Tensor) -> set[str]:
    """Class names of every node reachable from ``y.grad_fn`` (e.g. ``"_LeanAvgPoolBackward"``)."""
    seen, stack = set(), [y.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is not None and fn not in seen:
            seen.add(fn)
            stack.extend(nxt for nxt, _ in fn.next_functions)
    return {type(n).__name__ for n in seen}


def assert_float32_gradients_match_float64(fused, reference, out32, out64, x32, x64) -> None:
    """Backpropagate the same fixed weighting of ``out32`` (module ``fused``, float32 kernels) and ``out64`` (its
    float64 copy ``reference``, the reference loops); the input gradients and every parameter's must agree to
    float32 rounding."""
    weights = torch.linspace(-1.0, 1.0, out64.numel()).reshape(out64.shape)
    (out32 * weights).sum().backward()
    (out64 * weights.double()).sum().backward()
    torch.testing.assert_close(x32.grad.double(), x64.grad, rtol=1e-4, atol=1e-5)
    for a, b in zip(fused.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a.grad.double(), b.grad, rtol=1e-4, atol=1e-5)

"""The autograd graph behind a tensor, for tests that check which backward nodes a forward pass built."""

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

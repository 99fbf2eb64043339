"""Support for ``torch.compile``: running a function eagerly (a graph break) while Dynamo traces its caller.

Dynamo cannot trace a numba dispatcher, a ctypes call or the ``.numpy()`` views the CPU kernels run on. Left to
itself it graph-breaks there and then compiles every nested Python frame of the kernel's call one by one, down into
numba's dispatcher, where it fails (``exception table entry start instruction has no offset`` in torch 2.13).
``eager_under_compile(fn)`` returns ``fn`` unchanged in eager mode (one ``torch.compiler.is_compiling()`` test per
call) and, while Dynamo traces, a ``torch.compiler.disable``'d ``fn``: one clean graph break at that call, with
``fn`` and everything it calls run as in eager mode (its ``autograd.Function`` included: the graphs before and
after it are compiled, autograd connects them).

The neurons' own kernels (``neurons.fused_ops``) are ``torch.library`` custom ops instead, which Dynamo keeps in
its graph (no break; ``fullgraph=True`` works through them).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import torch

F = TypeVar("F", bound=Callable)


def eager_under_compile(fn: F) -> F:
    """``fn``, run eagerly behind one graph break when ``torch.compile`` traces its caller (module docstring)."""
    disabled = torch.compiler.disable(fn, recursive=True)

    @functools.wraps(fn)
    def call(*args, **kwargs):
        if torch.compiler.is_compiling():
            return disabled(*args, **kwargs)
        return fn(*args, **kwargs)

    return call  # type: ignore[return-value]

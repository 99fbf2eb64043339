"""Forward hooks that belong to an object (a recorder such as ``layers.rate_penalty.HiddenRates``), found again by
their owner rather than by handles, so that a deep copy of a network (modules, hooks and recorder copied together)
stays whole."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn


def add_owned_hook(module: nn.Module, method: Callable, *args) -> None:
    """Register ``partial(method, *args)`` (``method`` bound to its owner) as a forward hook of ``module``."""
    module.register_forward_hook(partial(method, *args))


def remove_owned_hooks(module: nn.Module, owner: object) -> None:
    """Take every forward hook of ``module`` that ``add_owned_hook`` made with a method of ``owner`` off it."""
    for key, hook in list(module._forward_hooks.items()):
        if isinstance(hook, partial) and getattr(hook.func, "__self__", None) is owner:
            del module._forward_hooks[key]

"""``train.compile``: a run's training and scoring forward passes through ``torch.compile``.

``compiled_model(model, setting)`` returns ``model`` through ``torch.compile`` (an ``OptimizedModule`` that shares
``model``'s parameters and buffers) or ``model`` itself when compile is off. The Trainer compiles the bare network
once; the training batches run through it (in a DistributedDataParallel wrapper under torchrun), validation and
test scoring through the same compiled module (its eval-mode, no-grad graphs are compiled at the first scoring).
Checkpoints, the weight average, the method's hooks and measures see the bare network, so a checkpoint's weights
carry no ``_orig_mod.`` prefix and load into an uncompiled model (``deepspike eval``).

``check_compile(config)`` refuses, in one line and before anything is built, what compiling would not speed up
or could not run (``refusal``).
"""

from __future__ import annotations

import torch
from torch import nn

from deepspike.config.schema import RunConfig
from deepspike.core.errors import ConfigError
from deepspike.training.temporal_grad import ONLINE


def compile_mode(setting: bool | str) -> str | None:
    """torch.compile's mode for ``train.compile`` = ``setting``: None (off) for False, ``"default"`` for True,
    else the mode named."""
    if setting is False:
        return None
    return "default" if setting is True else str(setting)


def compiled_model(model: nn.Module, setting: bool | str) -> nn.Module:
    """``model`` through ``torch.compile`` with ``train.compile`` = ``setting``'s mode; ``model`` when off.

    The mode's Inductor options plus ``fallback_random``: random draws (Poisson input spikes, dropout masks) run as
    eager's ops on torch's generator, so a compiled run draws the numbers an eager run draws and a resumed run those
    of the uncut one. ``dynamic=False``: every batch shape gets its own graph (the last, shorter batch of a split
    one more), as the graph breaks around the eager kernels (PSN, the batch-norm + neuron node, spikebp's LIF) fail
    in torch 2.13's Inductor with automatic dynamic shapes (docs/performance.md)."""
    mode = compile_mode(setting)
    if mode is None:
        return model
    from torch._inductor import list_mode_options  # (already loaded by ``torch.compiler.disable`` at import)

    options = {**list_mode_options(mode, False), "fallback_random": True}
    return torch.compile(model, options=options, dynamic=False)


def check_compile(config: RunConfig) -> None:
    """A one-line ``ConfigError`` when ``config`` asks for ``train.compile`` where it is refused (``refusal``)."""
    reason = refusal(config)
    if reason is not None:
        setting = str(config.train.compile).lower()  # true, as a recipe writes it, or the mode
        raise ConfigError(f"train.compile={setting} {reason}; use train.compile=false")


def refusal(config: RunConfig) -> str | None:
    """Why ``config``'s run cannot train compiled (the end of a sentence that starts ``train.compile=...``), or
    None (also when compile is off)."""
    if compile_mode(config.train.compile) is None:
        return None
    grad = config.train.temporal_grad
    if grad in ONLINE:
        return (f"with train.temporal_grad={grad}: the online modes run the net one step at a time "
                "(score_step), outside the compiled forward")
    return None

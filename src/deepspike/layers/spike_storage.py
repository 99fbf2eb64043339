"""Save a layer's spike input for backward in one byte per value instead of four.

A convolution or linear layer saves its input for the weight gradient ``dL/dW = g^T x``. In a rate-coded SNN that
input is a spike map ``[T*B, ...]`` held in float32 until the backward pass reaches the layer, one of the three
largest saved tensors of each conv-BN-neuron layer (with the batch-norm's input and the neuron's membrane). Its
values are few and exact: spikes ``{0, 1}``, SEW ADD junctions ``{0, 1, 2}``, tiling ``kh x kw`` average pools of
spikes ``{0, 1/(kh kw), ..., 1}``. So with ``q`` the value's quantum::

    saved = uint8(x * q)        (forward),      x = float(saved) / q      (backward, exact)

``mark_spikes(x, q)`` records ``q`` on a tensor that the code producing it knows to hold multiples of ``1/q``
(``SpikingSequential`` for its neurons and their fused pooling, ``SewBlock`` for its junction);
``TimeDistributed`` runs a conv/linear layer on a marked input under ``compact_saved_input``. The packing checks
its own round trip (``x == float(uint8(x q)) / q`` everywhere) and keeps the float32 tensor where it does not hold
(e.g. graded spikes, counts above ``255 / q``): gradients are bit for bit those of the unpacked layer.
Backward unpacks a transient float32 copy, freed once the layer's gradient is computed.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from deepspike.core.threads import run_numba_kernel
from deepspike.neurons.fused import kernel_ready, load_once

_ATTR = "_deepspike_spike_quantum"
_CODES_ATTR = "_deepspike_spike_codes"
_KERNELS: list = []  # [spike_codes_kernels] once imported, [None] without numba


def mark_spikes(x: torch.Tensor, quantum: int) -> torch.Tensor:
    """Record on ``x`` (returned) that its values are integer multiples of ``1 / quantum`` (module docstring).
    Not while ``torch.compile`` traces: the compiled graph decides itself what it saves for backward."""
    if not torch.compiler.is_compiling():
        setattr(x, _ATTR, int(quantum))
    return x


def spike_quantum(x: torch.Tensor) -> int | None:
    """The quantum ``mark_spikes`` recorded on this tensor object, or None (always while ``torch.compile`` traces)."""
    return None if torch.compiler.is_compiling() else getattr(x, _ATTR, None)


def attach_codes(x: torch.Tensor, codes: torch.Tensor, largest: int) -> torch.Tensor:
    """Record on ``x`` (returned) its ``uint8`` codes at quantum 1, made by the code that produced ``x`` (e.g. the
    spikes of ``layers.batchnorm_neuron``'s one-pass kernel): ``codes`` has ``x``'s shape and strides, ``x ==
    float(codes)`` exactly, and no value exceeds ``largest``. A layer saving ``x`` saves these codes instead of
    packing ``x`` again."""
    setattr(x, _CODES_ATTR, (codes, int(largest)))
    return mark_spikes(x, 1)


def attached_codes(x: torch.Tensor) -> tuple[torch.Tensor, int] | None:
    """``(codes, largest)`` that ``attach_codes`` recorded on this tensor object, or None."""
    return getattr(x, _CODES_ATTR, None)


def _load_kernels():
    from deepspike.layers import spike_codes_kernels

    return spike_codes_kernels


def _dense(x: torch.Tensor) -> bool:
    """``x`` fills one block of memory in a layout ``empty_like`` reproduces (contiguous or channels-last)."""
    if x.is_contiguous():
        return True
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)


def _codes_by_kernel(x: torch.Tensor, quantum: int) -> tuple[torch.Tensor, int] | None:
    """``(uint8 codes, largest code)`` of a dense CPU float32 ``x`` (its layout) from one numba pass, or None where
    they do not give ``x`` back exactly."""
    codes = torch.empty_like(x, dtype=torch.uint8)  # x's strides
    n = x.numel()
    flat = lambda t: t.as_strided((n,), (1,)).numpy()  # noqa: E731 - the block of memory, in memory order
    largest = run_numba_kernel(load_once(_KERNELS, _load_kernels).pack_codes, flat(x.detach()), np.float32(quantum),
                               flat(codes))
    return None if largest < 0 else (codes, int(largest))


def exact_codes(x: torch.Tensor, quantum: int) -> tuple[torch.Tensor, int] | None:
    """``(uint8 codes, largest code)`` with ``x == float(codes) / quantum`` exactly, or None where no such codes
    exist. CPU float32 spikes in a dense layout take one numba pass (``spike_codes_kernels``); others a few torch
    passes."""
    if kernel_ready(x) and _dense(x) and load_once(_KERNELS, _load_kernels) is not None:
        return _codes_by_kernel(x, quantum)
    codes = (x.detach() * quantum if quantum != 1 else x.detach()).to(torch.uint8)
    back = codes.to(x.dtype)
    if quantum != 1:
        back.div_(quantum)
    return (codes, int(codes.max()) if codes.numel() else 0) if torch.equal(back, x) else None


def spike_codes(x: torch.Tensor) -> torch.Tensor | None:
    """The ``uint8`` codes of a tensor marked with quantum 1: those attached to it (``attach_codes``), else made now
    (``exact_codes``) and attached, so that every later reader of ``x`` (a second convolution, a SEW junction)
    finds them; None where ``x`` has no exact codes."""
    attached = attached_codes(x)
    if attached is not None:
        return attached[0]
    made = exact_codes(x, 1)
    if made is None:
        return None
    attach_codes(x, *made)
    return made[0]


def _pack(x: torch.Tensor, quantum: int):
    """``(uint8 codes, quantum, dtype)`` when the codes give ``x`` back exactly, else ``x`` itself."""
    made = exact_codes(x, quantum)
    return x if made is None else (made[0], quantum, x.dtype)


def _outer_hooks():
    """The saved-tensor hooks active around this call (e.g. a memory count's), or None: ours pass their tensors
    on to them (torch keeps only the innermost hooks active)."""
    top = getattr(torch._C._autograd, "_top_saved_tensors_default_hooks", None)
    return top(False) if top is not None else None


@contextmanager
def compact_saved_input(x: torch.Tensor, quantum: int, codes: torch.Tensor | None = None):
    """Within the block, autograd saves the tensor ``x`` (same memory, shape and strides, e.g. a layer's
    flattened input) as ``uint8`` codes (module docstring), or as ``codes`` when given (``x``'s codes at
    ``quantum``, of its shape and strides: ``attach_codes``); every other saved tensor (weights) as usual. Hooks
    already active (``torch.autograd.graph.saved_tensors_hooks``) still see every saved tensor (the codes)."""
    key = (x.data_ptr(), x.shape, x.stride(), x.dtype)
    outer = _outer_hooks()
    outer_pack, outer_unpack = outer if outer is not None else (lambda t: t, lambda t: t)

    def packed_codes(t: torch.Tensor):
        return _pack(t, quantum) if codes is None else (codes, quantum, t.dtype)

    def pack(t: torch.Tensor):
        packed = packed_codes(t) if (t.data_ptr(), t.shape, t.stride(), t.dtype) == key else t
        if isinstance(packed, tuple):
            return (outer_pack(packed[0]), *packed[1:])
        return outer_pack(t)

    def unpack(saved):
        if not isinstance(saved, tuple):
            return outer_unpack(saved)
        codes, q, dtype = saved
        x = outer_unpack(codes).to(dtype)
        return x.div_(q) if q != 1 else x

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        yield

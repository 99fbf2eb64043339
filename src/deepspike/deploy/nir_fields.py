"""The fields of one NIR node, checked before anything is built from them (``check_fields``, ``check_nodes``).

A node read from a file may hold anything: a weight of the wrong rank, a bias that does not match it, NaN,
text where numbers belong, a stride of 0. Each is a one-line :class:`DataCorruptError` that names the node and
the field, raised before the nir package or torch would fail on it with a bare ``IndexError`` or
``RuntimeError``. ``fields`` is the node's mapping of field name -> value: the dict read from a file (before the
nir package builds the node) or ``vars(node)`` of a built one, so both paths run the same checks. How a node's
fields fit the shapes of the nodes before it is :mod:`nir_shapes`' job.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from deepspike.core.errors import DataCorruptError, check_pool_padding
from deepspike.core.options import FLOAT32_MAX

WEIGHT_LAYOUT = {"Linear": "[out, in]", "Affine": "[out, in]", "Conv1d": "[out, in, k]",
                 "Conv2d": "[out, in, kh, kw]"}
"""The weight layout of each weighted node type (its rank is the number of axes named)."""

NOT_NUMBERS = ("type", "metadata", "input_type", "output_type", "nodes", "edges")
"""Fields that are not numeric parameters (names, shapes the nir package derives, a subgraph's contents)."""


def plain_metadata(meta) -> dict:
    """A graph's or node's ``metadata`` (None: empty) with HDF5 text (bytes) as ``str`` and NumPy scalars as Python
    numbers, as a file read back holds them (arrays are left as they are)."""
    return {k: (v.decode() if isinstance(v, bytes) else v.item() if isinstance(v, np.generic) else v)
            for k, v in (meta or {}).items()}


def pair(value) -> tuple[int, int]:
    """``(h, w)`` of a NIR size field holding one number (both axes) or two."""
    arr = np.asarray(value).astype(int).ravel()
    return (int(arr[0]), int(arr[0])) if arr.size == 1 else (int(arr[0]), int(arr[1]))


def conv_padding(padding, kernel, stride, dilation, where: str, name: str) -> tuple[int, int]:
    """A Conv2d's zero padding ``(ph, pw)`` (each added on both sides of its axis) as whole numbers, read from NIR's
    field: numbers as they are, or a word with PyTorch's meaning, which NIR follows: "valid" = 0; "same" = an output
    as large as the input, ``p = d (k - 1) / 2`` per axis for kernel ``k`` at dilation ``d``, where that padding is
    whole and the same on both sides: stride 1 and ``d (k - 1)`` even (an even kernel pads one side one more). Any
    other is a one-line ``DataCorruptError`` saying why."""
    word = padding.decode(errors="replace") if isinstance(padding, bytes) else padding
    if not isinstance(word, str):
        return pair(padding)
    if word == "valid":
        return (0, 0)
    if word != "same":
        raise _fail(where, name, f"padding {word[:40]!r} is neither whole numbers nor 'same' or 'valid'")
    if tuple(stride) != (1, 1):
        raise _fail(where, name, f"padding 'same' at stride {list(stride)}: it keeps the input's size at stride 1 "
                                 "only (as in PyTorch)")
    span = [d * (k - 1) for d, k in zip(dilation, kernel)]
    if span[0] % 2 or span[1] % 2:
        raise _fail(where, name, f"padding 'same' of a {kernel[0]}x{kernel[1]} kernel at dilation {list(dilation)} "
                                 "pads one side one more than the other, which one padding for both sides cannot "
                                 "give; give the padding as whole numbers")
    return (span[0] // 2, span[1] // 2)


def node_padding(node, where: str, name: str) -> tuple[int, int]:
    """``conv_padding`` of NIR ``Conv2d`` ``node`` (weight ``[out, in, kh, kw]``)."""
    return conv_padding(node.padding, np.shape(node.weight)[2:], pair(node.stride), pair(node.dilation), where, name)


def shown(value) -> str:
    """``value`` for a one-line message: a short list, or the shape of a long array."""
    arr = np.asarray(value) if not isinstance(value, str | bytes) else None
    if arr is None or (arr.dtype.kind == "O" and arr.ndim == 0):
        return repr(value)[:60]
    return repr(arr.tolist())[:60] if arr.size <= 8 else f"an array of shape {arr.shape}"


def _fail(where: str, name: str, what: str) -> DataCorruptError:
    return DataCorruptError(f"{where}: node {name!r}: {what}")


def _numeric_fields(fields: Mapping):
    """``(key, array)`` of each field that should hold numbers (not a name, a shape or a subgraph)."""
    for key, value in fields.items():
        if key in NOT_NUMBERS or value is None or isinstance(value, str | bytes | dict):
            continue
        yield key, np.asarray(value)




def non_finite_field(fields: Mapping) -> str | None:
    """The name of the first numeric field holding NaN or inf, else None (used on import and on export)."""
    return next((key for key, arr in _numeric_fields(fields)
                 if arr.dtype.kind == "f" and not np.isfinite(arr).all()), None)


def _numbers(where: str, name: str, fields: Mapping) -> None:
    """Every numeric field holds numbers (not text or references), all finite and within float32's range (the
    imported net runs in float32)."""
    for key, arr in _numeric_fields(fields):
        if arr.dtype.kind not in "biuf":
            raise _fail(where, name, f"{key} is not numeric (dtype {arr.dtype})")
    key = non_finite_field(fields)
    if key is not None:
        raise _fail(where, name, f"{key} holds NaN or inf")
    big = next((k for k, arr in _numeric_fields(fields) if arr.size and arr.dtype.kind == "f"
                and np.abs(arr).max() > FLOAT32_MAX), None)
    if big is not None:  # finite in the file, inf in the float32 net
        raise _fail(where, name, f"{big} holds values beyond float32's range (|x| > {FLOAT32_MAX:.3g})")


def whole_numbers(value) -> tuple[int, ...] | None:
    """The whole numbers a numeric field holds (flattened), else None (text, NaN, inf, fractions, or sizes beyond
    ``2**31`` that no tensor axis has)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf" or not np.isfinite(arr).all() or not np.array_equal(arr, np.round(arr)):
        return None
    if (np.abs(arr) >= 2**31).any():
        return None
    return tuple(int(v) for v in arr.ravel())


def _whole(value) -> int | None:
    """The whole number a single-number field holds, else None."""
    nums = whole_numbers(value)
    return nums[0] if nums is not None and len(nums) == 1 else None


def _sizes(where: str, name: str, fields: Mapping, key: str, least: int) -> tuple[int, int]:
    """The ``(h, w)`` of size field ``key``: one or two whole numbers, each at least ``least``."""
    nums = whole_numbers(fields.get(key))
    if nums is None or len(nums) not in (1, 2):
        raise _fail(where, name, f"{key} must be one or two whole numbers, got {shown(fields.get(key))}")
    if min(nums) < least:
        raise _fail(where, name, f"{key} {list(nums)} must be at least {least}")
    return pair(nums)


def _weight(where: str, name: str, kind: str, fields: Mapping) -> None:
    """The weight has the rank of its type; an ``Affine``/``Conv`` bias has one value per output."""
    layout = WEIGHT_LAYOUT[kind]
    shape = np.shape(fields.get("weight"))
    if len(shape) != layout.count(",") + 1:
        article = "an" if kind[0] in "AEIOU" else "a"
        raise _fail(where, name, f"weight has shape {shape}, {article} {kind} weight is {layout}")
    if min(shape) < 1:
        raise _fail(where, name, f"weight has shape {shape}, with no {'outputs' if shape[0] < 1 else 'inputs'}")
    bias = fields.get("bias")
    if kind != "Linear" and np.shape(bias) != (shape[0],):
        raise _fail(where, name, f"bias has shape {np.shape(bias)}, the weight's {shape[0]} outputs need "
                                 f"({shape[0]},)")


def _conv(where: str, name: str, fields: Mapping) -> None:
    """Stride and dilation at least 1, padding (unless a word) at least 0, groups dividing the outputs."""
    stride = _sizes(where, name, fields, "stride", 1)
    dilation = _sizes(where, name, fields, "dilation", 1)
    if isinstance(fields.get("padding"), str | bytes):
        conv_padding(fields["padding"], np.shape(fields.get("weight"))[2:], stride, dilation, where, name)
    else:
        _sizes(where, name, fields, "padding", 0)
    groups = _whole(fields.get("groups"))
    if groups is None or groups < 1:
        raise _fail(where, name, f"groups must be a whole number of at least 1, got {shown(fields.get('groups'))}")
    out = np.shape(fields.get("weight"))[0]
    if out % groups:
        raise _fail(where, name, f"groups {groups} does not divide the weight's {out} outputs")


def _pool(where: str, name: str, fields: Mapping) -> None:
    """Kernel and stride at least 1, padding at most half the kernel (a window of only padding has no input)."""
    kernel = _sizes(where, name, fields, "kernel_size", 1)
    _sizes(where, name, fields, "stride", 1)
    check_pool_padding(_sizes(where, name, fields, "padding", 0), kernel, f"{where}: node {name!r}")


def _flatten(where: str, name: str, fields: Mapping) -> None:
    for key in ("start_dim", "end_dim"):
        if _whole(fields.get(key)) is None:
            raise _fail(where, name, f"{key} must be a whole number, got {shown(fields.get(key))}")


def _metadata(where: str, name: str, fields: Mapping) -> None:
    """The metadata deepspike reads as words (a neuron's ``reset`` and ``fires``) is text."""
    meta = fields.get("metadata")
    for key in ("reset", "fires"):
        value = meta.get(key) if isinstance(meta, Mapping) else None
        if value is not None and not isinstance(value, str | bytes):
            raise _fail(where, name, f"metadata {key} must be text, got {shown(value)}")


def check_fields(where: str, name: str, kind: str, fields: Mapping) -> None:
    """``DataCorruptError`` ``"<where>: node '<name>': <what is wrong>"`` unless node ``name`` of type ``kind``
    (``"Conv2d"``, ``"LIF"``...) has sound ``fields``: numbers where numbers belong, all finite, a weight of its
    type's rank (:data:`WEIGHT_LAYOUT`) with a matching bias, usable strides, padding, groups, kernel sizes."""
    _numbers(where, name, fields)
    _metadata(where, name, fields)
    if kind in WEIGHT_LAYOUT:
        _weight(where, name, kind, fields)
    if kind == "Conv2d":
        _conv(where, name, fields)
    elif kind in ("AvgPool2d", "SumPool2d"):
        _pool(where, name, fields)
    elif kind == "Flatten":
        _flatten(where, name, fields)


def check_nodes(graph, where: str) -> None:
    """:func:`check_fields` on every node of a built ``nir.NIRGraph``."""
    for name, node in graph.nodes.items():
        check_fields(where, name, type(node).__name__, vars(node))

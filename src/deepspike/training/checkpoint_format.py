"""The checkpoint file format: a plain torch file whose loading never runs code, with a checksum.

``checkpoint.pt`` is what ``torch.save`` writes (a zip archive: the pickled structure plus the raw bytes
of every tensor). It is read back with ``torch.load(weights_only=True)``, whose unpickler builds only
tensors, containers (dict, list, tuple) and plain values (None, bool, int, float, str); a file asking
for anything else (say an object whose ``__reduce__`` calls ``os.system``) is refused with a one-line
``DataCorruptError`` before any of it runs. Checkpoints are never unpickled as code. The payload holds
nothing else: the random generators' states are stored as ints, lists and byte tensors
(``training.checkpoint.rng_state``).

Every payload carries ``"sha256"``, the SHA-256 of its other entries, each fed to the hash as frames
``tag:nbytes:bytes`` in a canonical order::

    dict         frame("dict", str(n)), then key, value for each of its n items, sorted by (key type, repr(key))
    list, tuple  frame("list" | "tuple", str(n)), then each item
    tensor       frame("tensor:<dtype>:<shape>", its bytes in C order, read on the CPU)
    scalar       frame(type name, repr(value)); a str: its UTF-8 bytes   (None, bool, int, float, str, ...)

Loading recomputes it, so zeroed or flipped bytes in a tensor, or an edited value, give a one-line
``DataCorruptError`` instead of a model with silently changed weights.

Checkpoints written before checksums existed (no ``"sha256"``, NumPy's RNG key array pickled as an
ndarray) still load, with a warning that their contents cannot be verified: the unpickler allows NumPy
arrays (data, never code) for them.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepspike.core.errors import DataCorruptError

CHECKSUM_KEY = "sha256"
_SCALARS = (type(None), bool, int, float, complex, str, bytes, torch.dtype, torch.device)
# Unpickled only for checkpoints written before checksums (NumPy's RNG keys): array data, never code. NumPy 1
# and 2 pickle arrays through the same function under different module names.
_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_LEGACY_NUMPY = [
    np.ndarray,
    np.dtype,
    type(np.dtype(np.uint32)),
    *((_RECONSTRUCT, f"{module}.multiarray._reconstruct") for module in ("numpy.core", "numpy._core")),
]


def checkpoint_bytes(payload: dict[str, Any]) -> bytes:
    """``payload`` (tensors and plain values) with its ``"sha256"`` added, as ``torch.save`` writes it."""
    if CHECKSUM_KEY in payload:
        raise ValueError(f"{CHECKSUM_KEY!r} is reserved for the checkpoint's checksum")
    buffer = io.BytesIO()
    torch.save({**payload, CHECKSUM_KEY: payload_digest(payload)}, buffer)
    return buffer.getvalue()


def read_checkpoint_file(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The payload stored at ``path`` by ``checkpoint_bytes`` (checksum verified and removed).

    One-line ``DataCorruptError`` when the file is not a torch file, needs anything but tensors and plain
    values, or fails its checksum."""
    try:
        with torch.serialization.safe_globals(_LEGACY_NUMPY):
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise DataCorruptError(f"cannot read checkpoint {path}: {_load_problem(e)}") from None
    if not isinstance(payload, dict):
        raise DataCorruptError(f"cannot read checkpoint {path}: it holds a {type(payload).__name__}, not a dict")
    stored = payload.pop(CHECKSUM_KEY, None)
    if stored is None:
        warnings.warn(f"checkpoint {path} has no checksum (written by an older deepspike): not verified", stacklevel=2)
        return payload
    try:
        actual = payload_digest(payload)
    except TypeError as e:
        raise DataCorruptError(f"cannot read checkpoint {path}: {e}") from None
    if actual != stored:
        raise DataCorruptError(f"checkpoint {path} is corrupt: its contents do not match its sha256 checksum")
    return payload


def payload_digest(payload: Any) -> str:
    """Hex SHA-256 of ``payload`` in the canonical encoding of the module docstring."""
    h = hashlib.sha256()
    _encode(payload, h)
    return h.hexdigest()


def _encode(value: Any, h: Any) -> None:
    if isinstance(value, torch.Tensor):
        data = value.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy()
        _frame(h, f"tensor:{value.dtype}:{tuple(value.shape)}", data)
    elif isinstance(value, dict):
        _frame(h, "dict", str(len(value)).encode())
        for key in sorted(value, key=lambda k: (type(k).__name__, repr(k))):
            _encode(key, h)
            _encode(value[key], h)
    elif isinstance(value, list | tuple):
        _frame(h, "list" if isinstance(value, list) else "tuple", str(len(value)).encode())
        for item in value:
            _encode(item, h)
    elif isinstance(value, _SCALARS):
        data = value.encode() if isinstance(value, str) else repr(value).encode()
        _frame(h, type(value).__name__, data)
    else:
        raise TypeError(f"a checkpoint holds only tensors, dicts, lists, tuples and plain values, not {type(value)}")


def _frame(h: Any, tag: str, data: Any) -> None:
    """Feed ``tag:nbytes:`` then ``data`` to hash ``h`` (the length makes the encoding unambiguous)."""
    h.update(f"{tag}:{memoryview(data).nbytes}:".encode())
    h.update(data)


def _load_problem(e: Exception) -> str:
    """One line saying why ``torch.load`` refused a file (its weights-only messages span many lines)."""
    text = str(e)
    if isinstance(e, pickle.UnpicklingError) and "WeightsUnpickler error" in text:
        needed = re.search(r"GLOBAL (\S+)", text)
        if needed:
            return (
                f"it needs {needed.group(1)}, which is neither a tensor nor a plain value "
                "(checkpoints are never unpickled as code)"
            )
        reason = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0]
        return f"it holds something other than tensors and plain values ({reason})"
    return text.strip().splitlines()[0] if text.strip() else type(e).__name__

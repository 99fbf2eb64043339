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

Whether checksummed or not, each field a run reads (epoch, generator states, optimizer and schedule state,
weights, ...) must then be of its form (``training.checkpoint_payload``), else a one-line ``DataCorruptError``
names it: a checksum proves what deepspike wrote, not that a field is right.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepspike.core.errors import DataCorruptError
from deepspike.core.messages import first_process
from deepspike.core.options import shown_value
from deepspike.training.checkpoint_payload import payload_problem

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
# Torch's advice, in its refusals, to load with weights_only=False, which would run the file's code: never shown.
_TORCH_ADVICE = getattr(torch.serialization, "UNSAFE_MESSAGE", "")
_ADVICE = re.compile(r"weights_only\W+(set to\W+)?false|weights only load failed", re.IGNORECASE)
_MINIZ = re.compile(r"PytorchStreamReader failed ([^.\n]*)")  # torch's zip reader: "... failed reading zip archive: X."
_CHANGED = "bytes changed after it was written: a disk, copy or transfer fault?"


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
    values, fails its checksum or holds a field not of its form (``checkpoint_payload``: checked with or
    without a checksum)."""
    try:
        with torch.serialization.safe_globals(_LEGACY_NUMPY), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on the file (its pickle protocol): the error says it
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise DataCorruptError(f"cannot read checkpoint {path}: {_load_problem(e, path)}") from None
    if not isinstance(payload, dict):
        raise DataCorruptError(f"cannot read checkpoint {path}: it holds a {type(payload).__name__}, not a dict")
    stored = payload.pop(CHECKSUM_KEY, None)
    if stored is not None:
        _verify_checksum(payload, stored, path)
    problem = payload_problem(payload)
    if problem is not None:
        raise DataCorruptError(f"checkpoint {path} is corrupt: its {problem}")
    if stored is None and first_process():  # every torchrun process reads the checkpoint it resumes
        warnings.warn(f"checkpoint {path} has no checksum (written by an older deepspike): not verified", stacklevel=2)
    return payload


def _verify_checksum(payload: dict[str, Any], stored: Any, path: Path) -> None:
    """A one-line ``DataCorruptError`` unless ``payload``'s digest is ``stored`` (read from ``path``)."""
    try:
        actual = payload_digest(payload)
    except TypeError as e:
        raise DataCorruptError(f"cannot read checkpoint {path}: {e}") from None
    if actual != stored:
        raise DataCorruptError(f"checkpoint {path} is corrupt: its contents do not match its sha256 checksum")


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


def _load_problem(e: Exception, path: Path) -> str:
    """One line saying why ``torch.load`` refused the file ``path``, without torch's advice to load it with
    ``weights_only=False`` (which would run the code in it). Torch wraps its weights-only unpickler's own error
    (``__context__``) in many lines of that advice; older versions put it after "WeightsUnpickler error:". A file
    that is no whole zip archive is named so (``_not_an_archive``): torch's words for it were "EOFError",
    "[Errno 22] Invalid argument" or a character code such as "101"; so is a zip archive damaged since it was written
    (``_damaged_archive``), where torch's words were its zip reader's ("... This is an internal miniz error. If you
    are seeing this error ..."), a decoder's ("'utf-8' codec can't decode byte 0x9e") or the unpickler's on the
    damaged structure ("something other than tensors ... (Unsupported operand 127)"), and one byte of the archive's
    end changed was a ``zipfile.BadZipFile`` traceback (exit 1)."""
    damaged = _damaged_archive(path, e)
    if damaged is not None:
        return damaged
    if isinstance(e, pickle.UnpicklingError):
        raw = e.__context__ if isinstance(e.__context__, pickle.UnpicklingError) else e
        text = str(raw).split("WeightsUnpickler error:")[-1]
        needed = re.search(r"GLOBAL (\S+)", text)  # "GLOBAL m.f was not an allowed global", "GLOBAL m.f whose ..."
        if needed:
            return (
                f"it needs {_shown(needed.group(1))}, which is neither a tensor nor a plain value "
                "(checkpoints are never unpickled as code)"
            )
        return f"it holds something other than tensors and plain values ({_shown(_first_line(text) or 'unreadable')})"
    return _not_an_archive(path) or _shown(_first_line(str(e)) or type(e).__name__)


def _not_an_archive(path: Path) -> str | None:
    """Why ``path`` is not the zip archive ``torch.save`` writes (empty, cut off before the archive's closing
    directory, or something else), None when it is one (or cannot be read again)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        if zipfile.is_zipfile(path):
            return None
    except (OSError, zipfile.BadZipFile):  # unreadable, or an archive's end damaged (``_damaged_archive`` says so)
        return None
    if not head:
        return "it is empty (0 bytes)"
    if head == b"PK\x03\x04":
        return "it is cut off (a zip archive without its end: a copy or write that stopped part-way?)"
    return "it is not a torch checkpoint (torch.save writes a zip archive)"


def _damaged_archive(path: Path, error: Exception) -> str | None:
    """Why the zip archive at ``path``, which torch refused with ``error``, does not read back as written; None when
    it does, is no zip archive (``_not_an_archive``) or cannot be read: a structure ``zipfile`` cannot read, an
    entry whose bytes fail the CRC-32 the archive records for it (``torch.save`` records one per entry; torch's
    reader checks none), or a record torch's zip reader (miniz) refuses where ``zipfile`` does not look."""
    try:
        if not zipfile.is_zipfile(path):  # also where the file cannot be read
            return None
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except Exception as e:  # zipfile's words on a damaged structure: BadZipFile, OSError (a seek before the start), ...
        reason = _shown(_first_line(str(e)) or type(e).__name__)
        return f"it is damaged: its zip archive does not read back ({reason}; {_CHANGED})"
    if bad is not None:
        return f"it is damaged: {_shown(bad)} fails its CRC-32 check ({_CHANGED})"
    refused = _MINIZ.search(str(error))
    return None if refused is None else f"it is damaged: torch's zip reader failed {_shown(refused[1])} ({_CHANGED})"


def _shown(text: str, width: int = 200) -> str:
    """``text`` (from the file, through torch: a name in the pickle) as is when printable and short, else its
    ``repr`` cut to ``width``: no terminal control characters or megabyte lines in our message."""
    return text if text.isprintable() and len(text) <= width else shown_value(text, width)


def _first_line(text: str) -> str:
    """The first line of torch's ``text`` that is not its advice to turn the weights-only safety off."""
    text = text.replace(_TORCH_ADVICE, "") if _TORCH_ADVICE else text
    lines = (" ".join(line.split()) for line in text.splitlines())
    return next((line for line in lines if line and not _ADVICE.search(line)), "")

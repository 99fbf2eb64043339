"""Writing output files safely: atomic writes, strict JSON, output paths checked before anything is written.

Atomic writes: the bytes go to a temporary file ``.NAME.XXXXXXXX.tmp`` in the same folder, are fsynced, then
the temporary file is renamed over ``NAME`` and the folder is fsynced (so that the renames of a checkpoint and
its log survive a power cut in order). A reader (or a resumed run) therefore sees either the old file
or the complete new one, never a torn write, even if the process is killed mid-save (a kill can leave the
temporary file behind; nothing reads it, and ``remove_stale_temps`` clears it). A write that fails (full
disk, read-only folder) raises a one-line ``WriteError`` and leaves ``NAME`` as it was.

JSON is written strictly: JSON has no inf/nan, so non-finite floats (also NumPy scalars and arrays) are
written as null, and ``allow_nan=False`` guarantees that every file parses with any JSON reader.

``check_output_dir`` / ``check_output_file``: one-line errors for an output path that cannot be a folder
(resp. a regular file): an existing file or device, a path under a file, a folder without write permission.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from deepspike.core.errors import ConfigError, UserError, WriteError, os_reason
from deepspike.core.options import shown_value

TEMP_SUFFIX = ".tmp"
NAME_ROOM = 255 - len(".") - len(".XXXXXXXX") - len(TEMP_SUFFIX)
"""Bytes of a file's name its temporary file's name holds: most file systems allow 255 bytes in a name, and the
temporary name adds a dot, mkstemp's dot and 8 random characters, and ``TEMP_SUFFIX``."""
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read the process umask: written files get the usual 0o666 & ~umask, not mkstemp's 0o600
FILE_MODE = 0o666 & ~_UMASK
"""The mode a file written through a temporary file gets: what ``open`` would give it under the process umask."""


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(f)`` on a temporary binary file next to ``path``, then atomically replace ``path``.

    An ``OSError`` on the way (no space, no permission) becomes a ``WriteError`` naming ``path``; the
    temporary file is removed and ``path`` is unchanged. After the rename the folder is synced (``sync_folder``). A
    file that is replaced keeps its permission bits (one made private stays private); a new one gets ``FILE_MODE``
    (0o666 less the umask)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = _kept_mode(path)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=TEMP_SUFFIX, dir=path.parent)
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, UserError):
            raise WriteError(f"cannot write {path}: {os_reason(e)} (the previous {path.name}, if any, is "
                             "unchanged)") from e
        raise
    sync_folder(path.parent)


def temp_prefix(name: str) -> str:
    """``.NAME.``, the start of the name of a temporary file that will become ``name``; ``NAME`` is ``name`` cut to
    ``NAME_ROOM`` bytes, so that the temporary file of a long name that is allowed (up to 255 bytes) is allowed too
    (its longer name was a "File name too long" WriteError)."""
    while len(os.fsencode(name)) > NAME_ROOM:
        name = name[:-1]
    return f".{name}."


def _kept_mode(path: Path) -> int:
    """The permission bits the new ``path`` gets: those of the regular file it replaces, else ``FILE_MODE``."""
    try:
        st = path.stat()
    except OSError:
        return FILE_MODE
    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else FILE_MODE


UNSYNCABLE = (errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EACCES, errno.EPERM, errno.EISDIR)
"""Why a folder cannot be synced where nothing is wrong: a file system or platform without it (Windows opens no
folder), a folder that may be written but not read."""


def sync_folder(folder: Path) -> None:
    """``fsync`` the folder itself, so that a rename into it survives a power cut (POSIX leaves the order of two
    renames to the file system until their folder is synced). Called after the rename: a failure is a
    ``WriteError`` that says the file was written; ``UNSYNCABLE`` reasons are passed."""
    fd = None
    try:
        fd = os.open(folder, os.O_RDONLY)
        os.fsync(fd)
    except OSError as e:
        if e.errno not in UNSYNCABLE:
            raise WriteError(f"wrote into {folder} but could not sync the folder: {os_reason(e)} (a power cut now "
                             "could lose the write)") from e
    finally:
        if fd is not None:
            os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text`` (UTF-8)."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write_csv(path: Path, records: list[dict[str, Any]], columns: Sequence[str] = ()) -> None:
    """Atomically replace ``path`` with the records as one CSV table (``\n`` line ends): ``columns``, or the keys in
    the order they first appear; a missing value (a key a record lacks, None, a non-finite number) is empty."""
    columns = list(columns)
    for record in records:
        columns += [k for k in record if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: _csv_cell(record.get(k)) for k in columns})
    atomic_write_text(path, buffer.getvalue())


def _csv_cell(value: Any) -> Any:
    return "" if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


def remove_stale_temps(folder: Path, names: tuple[str, ...]) -> None:
    """Delete temporary files that a killed ``atomic_write`` of one of ``names`` in ``folder`` left behind."""
    for name in names:
        for tmp in Path(folder).glob(f"{temp_prefix(name)}*{TEMP_SUFFIX}"):
            remove_file(tmp)


def remove_file(path: Path) -> None:
    """Delete ``path`` if it exists; a one-line ``WriteError`` when it cannot be (a read-only folder)."""
    try:
        Path(path).unlink(missing_ok=True)
    except OSError as e:
        raise WriteError(f"cannot remove {path}: {os_reason(e)}") from e


@contextmanager
def staged_files(folder: Path, names: Sequence[str]) -> Iterator[Path]:
    """A hidden temporary folder inside ``folder`` to write files of ``names`` into; when the block ends without an
    error, each of ``names`` written there is renamed over its namesake in ``folder`` and each not written is removed
    from ``folder``, then ``folder`` is synced. An error in the block leaves ``folder`` as it was (nothing half
    written beside an earlier set of files); the temporary folder is removed either way."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staged.", suffix=TEMP_SUFFIX, dir=folder))
    except OSError as e:
        raise WriteError(f"cannot write into {folder}: {os_reason(e)}") from e
    try:
        yield staging
        for name in names:
            if (staging / name).exists():
                os.replace(staging / name, folder / name)
            else:
                remove_file(folder / name)
    except OSError as e:
        if isinstance(e, UserError):
            raise
        raise WriteError(f"cannot write into {folder}: {os_reason(e)}") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    sync_folder(folder)


def finite_or_null(value: Any) -> Any:
    """``value`` with every non-finite float (inf, -inf, nan), in nested dicts and lists too, made None;
    NumPy scalars and arrays become Python numbers and lists."""
    if isinstance(value, np.generic | np.ndarray):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_null(v) for v in value]
    return value


def strict_json(value: Any, indent: int | None = None, default: Callable[[Any], Any] | None = None) -> str:
    """``json.dumps`` of ``value`` with non-finite floats as null, refusing any that remain; ``default``
    converts what JSON cannot hold (as in ``json.dumps``)."""
    return json.dumps(finite_or_null(value), indent=indent, allow_nan=False, default=default)


def atomic_write_json(path: Path, value: Any, indent: int = 2, default: Callable[[Any], Any] | None = None) -> None:
    """Atomically write ``value`` as strict JSON (``strict_json``) and a final newline."""
    atomic_write_text(path, strict_json(value, indent=indent, default=default) + "\n")


def check_output_dir(path: str | os.PathLike, label: str) -> Path:
    """``path`` as a Path, or a one-line error when it cannot be a folder we write into: an existing file (or
    device, such as /dev/null), a dangling symbolic link, a path under a file, or no write permission where it would
    be created. ``label`` names the path in the message (e.g. ``--out``). Creates nothing."""
    path = _named(path, label, "folder")
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{label} {path} is not a folder (it is an existing file); pick a folder")
    _check_can_write_in(path, label, path)
    return path


def check_output_file(path: str | os.PathLike, label: str) -> Path:
    """``path`` as a Path, or a one-line error when it cannot be a regular file we write: an existing folder,
    a device or other non-regular file, a path under a file, a folder without write permission. Creates
    nothing."""
    path = _named(path, label, "file")
    if path.is_dir():
        raise ConfigError(f"{label} {path} is a folder; give the name of a file to write")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{label} {path} is not a regular file; give the name of a file to write")
    _check_can_write_in(path.parent, label, path)
    return path


def _named(path: str | os.PathLike, label: str, kind: str) -> Path:
    """``path`` as a Path; an empty name (which ``Path`` would read as the current folder), a name with a NUL byte
    (``ValueError: embedded null byte`` from the first ``stat``) or something that is not a path is a one-line
    error."""
    if not isinstance(path, str | os.PathLike):
        raise ConfigError(f"{label} must be a path, got {type(path).__name__}")
    name = os.fspath(path)
    if not name.strip():
        raise ConfigError(f"{label} is empty; give the name of a {kind}")
    if "\0" in os.fsdecode(name):
        raise ConfigError(f"{label} {shown_value(name)} holds a NUL byte, which no {kind} name may; give another name")
    return Path(path)


def _check_can_write_in(folder: Path, label: str, path: Path) -> None:
    """The nearest existing one of ``folder`` and its parents must be a folder we may write into, and none of those
    before it a symbolic link to nothing (the ``mkdir`` of a write said "File exists: LINK" there)."""
    for p in (folder, *folder.parents):
        if p.exists():
            break
        if p.is_symlink():
            where = f"{label} {path} is" if p == path else f"{label} {path}: {p} is"
            raise ConfigError(f"{where} a symbolic link to {os.readlink(p)}, which does not exist; create that "
                              "folder or pick another")
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"{label} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise WriteError(f"{label} {path}: cannot write into {existing}: {os.strerror(errno.EACCES)}")

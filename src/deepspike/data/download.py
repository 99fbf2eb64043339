"""Optional download with a checksum, for users with a network (never called unless ``download=True``).

Files are fetched with ``urllib`` into a temporary file next to the target, hashed while they stream, and
renamed into place only when the checksum matches, so an interrupted or corrupt download never leaves a
file that looks complete.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from deepspike.core.atomic import FILE_MODE, TEMP_SUFFIX, sync_folder, temp_prefix
from deepspike.core.errors import ConfigError, DataCorruptError, DataNotFoundError
from deepspike.data.paths import one_line

CHUNK = 1 << 20
ALGORITHMS = ("md5", "sha256")


@dataclass(frozen=True)
class Resource:
    """One downloadable file: its name on disk, where to fetch it, and its checksum ``"md5:<hex>"`` or
    ``"sha256:<hex>"``."""

    filename: str
    url: str
    checksum: str


def _split_checksum(checksum: str) -> tuple[str, str]:
    algo, _, digest = checksum.partition(":")
    if algo not in ALGORITHMS or not digest:
        raise ConfigError(f"bad checksum {checksum!r}; valid: 'md5:<hex>' or 'sha256:<hex>'")
    return algo, digest.lower()


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes with ``algorithm`` (``md5`` or ``sha256``), read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verify_checksum(path: str | os.PathLike, checksum: str) -> None:
    """Raise :class:`DataCorruptError` unless the file's digest equals ``checksum`` (``"algo:hex"``)."""
    algo, expected = _split_checksum(checksum)
    actual = file_digest(path, algo)
    if actual != expected:
        raise DataCorruptError(f"checksum mismatch for {path}: {algo} is {actual}, expected {expected}; "
                               "delete the file and download it again")


def download_file(url: str, dest: str | os.PathLike, checksum: str, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` atomically and verify its checksum (``"md5:<hex>"``/``"sha256:<hex>"``).

    The bytes go to a temporary file in ``dest``'s folder and are hashed on the way; on a match the file
    is fsynced and renamed to ``dest`` (``os.replace``, atomic on one file system), and the folder is synced
    (``core.atomic.sync_folder``), so that a power cut leaves the old file or the whole new one. On a mismatch
    the temporary file is removed and :class:`DataCorruptError` is raised; a network failure raises
    :class:`DataNotFoundError`. An existing ``dest`` is replaced only by a verified download.
    """
    algo, expected = _split_checksum(checksum)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(dest.name), suffix=TEMP_SUFFIX, dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, FILE_MODE)  # readable as any file the user writes (a shared data folder), not mkstemp's 0600
        h = hashlib.new(algo)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            for block in iter(lambda: response.read(CHUNK), b""):
                h.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())  # the bytes reach the disk before the rename does
        actual = h.hexdigest()
        if actual != expected:
            raise DataCorruptError(f"checksum mismatch downloading {url}: {algo} is {actual}, "
                                   f"expected {expected}; nothing was written to {dest}")
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError) as e:
        raise DataNotFoundError(f"download of {url} failed ({one_line(e)}); check the network or fetch "
                                f"the file by hand into {dest.parent}") from e
    finally:
        tmp.unlink(missing_ok=True)
    sync_folder(dest.parent)  # the rename survives a power cut
    return dest


def fetch(resource: Resource, folder: str | os.PathLike) -> Path:
    """Download ``resource`` into ``folder`` unless a file there already has the right checksum."""
    dest = Path(folder) / resource.filename
    if dest.is_file():
        algo, expected = _split_checksum(resource.checksum)
        if file_digest(dest, algo) == expected:
            return dest
    return download_file(resource.url, dest, resource.checksum)


def extract_tar(archive: str | os.PathLike, folder: str | os.PathLike) -> None:
    """Extract a (gzipped) tar archive into ``folder``, refusing members that would land outside it."""
    folder = Path(folder).resolve()
    try:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                target = (folder / member.name).resolve()
                if folder not in target.parents and target != folder:
                    raise DataCorruptError(f"archive {archive} has a member outside its folder: "
                                           f"{member.name}")
                if not (member.isfile() or member.isdir()):
                    raise DataCorruptError(f"archive {archive} has a link or device member: {member.name}")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(folder, filter="data")
            else:  # pragma: no cover - Python without PEP 706 filters; members were checked above
                tar.extractall(folder)
    except (tarfile.TarError, EOFError) as e:
        raise DataCorruptError(f"cannot extract {archive}: {one_line(e)}; delete it, download again") from e


__all__ = ["Resource", "download_file", "extract_tar", "fetch", "file_digest", "verify_checksum"]

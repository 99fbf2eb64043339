"""One trainer per run folder: ``RunLock`` holds an exclusive lock on ``RUN/.deepspike-lock`` while a run trains.

Without it two ``deepspike train`` commands given the same ``--out`` both passed the check that the folder is free
(seconds pass between that check and the first write, while data loads) and interleaved their epochs in one
metrics log; two ``--resume`` of one run did the same. The lock is ``flock(LOCK_EX | LOCK_NB)`` on a file that is
never replaced (an atomic write would swap the inode under the lock); the operating system releases it when the
process ends, however it ends, so a killed run never leaves its folder locked. Where ``fcntl`` is missing (not
POSIX) or the file system has no ``flock`` (Lustre mounted without ``-o flock``, some FUSE mounts), nothing is
locked. Only rank 0 of a distributed run takes the lock; the Trainer hands its outcome to every rank.
"""

from __future__ import annotations

import os
from pathlib import Path

from deepspike.core.errors import ConfigError, WriteError, os_reason
from deepspike.training.runs import LOCK_NAME

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


class RunLock:
    """The exclusive lock of run folder ``folder`` (which exists), taken at construction; ``release()`` ends it.

    A folder another process holds is a one-line ``ConfigError``."""

    def __init__(self, folder: Path) -> None:
        self.fd: int | None = None
        self.path = Path(folder) / LOCK_NAME
        if fcntl is None:
            return
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o666)
        except OSError as e:
            raise WriteError(f"cannot open the lock file of {folder}: {os_reason(e)}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(f"{folder} is being trained by another deepspike process; wait for it to end or pick "
                              "another --out") from None
        except OSError:  # a file system without flock (Lustre without -o flock, some FUSE mounts): no lock there
            os.close(fd)
            return
        self.fd = fd

    def held(self) -> bool:
        """Whether the locked file is still the folder's (True where nothing could be locked). It is not once the
        folder was removed, and maybe made again by another run, while this run trained."""
        if self.fd is None:
            return True
        try:
            return os.stat(self.path).st_ino == os.fstat(self.fd).st_ino
        except OSError:
            return False

    def check_held(self) -> None:
        """``ConfigError`` unless ``held()``: what the run wrote next would land in a folder not its own."""
        if not self.held():
            raise ConfigError(f"{self.path.parent} was removed or replaced while this run trained; it stops without "
                              "writing into it")

    def release(self) -> None:
        """Give the lock up (closing the file releases it); a second call does nothing."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

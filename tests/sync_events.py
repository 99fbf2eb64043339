"""``sync_events(monkeypatch)``: a list that records, in order, each ``os.fsync`` ("file" or "folder") and each
``os.replace`` ("rename") while the test runs, the real calls still made: an atomic write's order is
``["file", "rename", "folder"]``."""

from __future__ import annotations

import os
import stat


def sync_events(monkeypatch) -> list[str]:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    def replace(src, dst):
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events

"""Session 41: the peak resident memory a call adds, from the kernel's counters (Linux /proc).

``peak_growth(fn)`` collects garbage, reads VmRSS, resets the process's peak (VmHWM:
``echo 5 > /proc/self/clear_refs``), calls ``fn()`` and returns ``(fn's result, VmHWM - VmRSS before)`` in MiB:
what the call held at its worst beyond what was resident before it."""

import gc
from pathlib import Path

MiB = 2**20


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def peak_growth(fn):
    gc.collect()
    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    result = fn()
    return result, (_status_kib("VmHWM") - before) / 1024

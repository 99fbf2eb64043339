"""Keeping freed memory in the process (glibc malloc), so that training does not page-fault on every step.

torch's CPU tensors come from ``malloc``. glibc serves a block of at least its mmap threshold (128 KiB, raised
as large blocks are freed, up to 32 MiB) with a fresh ``mmap`` and gives it back with ``munmap`` when it is freed,
and it returns the free top of the heap to the system (``M_TRIM_THRESHOLD``). A training step allocates and frees
the same large activations and gradients every step, so every step touches fresh pages: the kernel maps each 4 KiB
page again on first touch (a minor page fault, zero-filled). On this project's 2-core VM that was ~570,000 faults
and 2.0 s per SEW-ResNet-18 PLIF step (T = 4, batch 32, two threads) against ~0 faults and 1.4 s with the freed
memory kept (session 15, ``benchmarks/RESULTS.md``); the 94% Fashion-MNIST run faulted ~150,000 times a second.

``keep_freed_memory`` sets glibc's options at run time (``mallopt``), as the environment variables
``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...`` (which the benchmarks pass to every framework) would at start-up:

    M_MMAP_MAX = 0                every block from the heap, none mapped on its own
    M_TRIM_THRESHOLD = 2^31 - 1   the heap's free top is kept up to 2 GiB (the largest value mallopt takes)

The price is resident memory: the process keeps what it needed once, and freed blocks of other sizes leave holes
in the heap that a later, larger block cannot use (``deepspike eval`` of the Fashion-MNIST VGG run: 40 -> 16 s, but
1.25 -> 2.25 GB maximum resident memory; SEW-ResNet-18 PLIF steps: 1.34 -> 1.43 GB). ``deepspike`` calls it at
start-up unless ``DEEPSPIKE_MALLOC=system``; a script that trains through the library can call it itself. Without
glibc (macOS, Windows, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import functools

from deepspike.core.env import env_choice

M_TRIM_THRESHOLD = -1  # glibc's malloc.h parameter numbers
M_MMAP_MAX = -4
TRIM_THRESHOLD = 2**31 - 1  # mallopt's value is a C int
POLICIES = ("keep", "system")


@functools.lru_cache(maxsize=1)
def _glibc():
    """The process's own C library when it is glibc (it has ``mallopt`` and ``gnu_get_libc_version``), else None."""
    try:
        libc = ctypes.CDLL(None)  # the symbols already loaded into this process: no library search
    except (OSError, TypeError):  # Windows has no such handle
        return None
    if not (hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt")):
        return None
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    libc.mallopt.restype = ctypes.c_int
    return libc


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory in the process (module docstring), unless ``DEEPSPIKE_MALLOC=system``.
    Returns whether the options were set (False: ``system`` asked for, or no glibc)."""
    policy = env_choice("DEEPSPIKE_MALLOC", "keep", POLICIES)
    libc = _glibc()
    if policy == "system" or libc is None:
        return False
    trimmed = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)  # mallopt returns 1 on success
    unmapped = libc.mallopt(M_MMAP_MAX, 0)
    return bool(trimmed and unmapped)

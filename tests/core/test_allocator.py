"""Keeping freed memory in the process: glibc's options take effect (page faults counted by the kernel)."""

import os
import subprocess
import sys

import pytest

from deepspike.core import allocator
from deepspike.core.errors import ConfigError

# Allocates and frees a 64 MiB tensor (above glibc's largest dynamic mmap threshold) eleven times, writing every
# page, and prints the minor page faults of the last nine rounds (the first two map the heap's pages in either way).
SCRIPT = """
import resource, sys, torch
from deepspike.core.allocator import keep_freed_memory
kept = keep_freed_memory()
torch.ones(16 << 20)
torch.ones(16 << 20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(9):
    torch.ones(16 << 20)
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(policy: str) -> tuple[bool, int]:
    env = {**os.environ, "DEEPSPIKE_MALLOC": policy}
    for name in ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"):
        env.pop(name, None)  # the test's own process may run under the benchmarks' settings
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120,
                         check=True).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(allocator._glibc() is None, reason="glibc's malloc options only")
def test_kept_memory_is_not_faulted_in_again():
    kept, faults_kept = _faults("keep")
    system, faults_system = _faults("system")
    assert kept and not system
    round_pages = (64 << 20) // 4096  # one round's fresh pages
    if faults_system < 6 * round_pages:
        pytest.skip(f"glibc's default already reused the pages here ({faults_system} faults): nothing to compare")
    # kept: at most two rounds grow the heap once more (other allocations may sit on its top); default: every round
    assert faults_kept <= 2 * round_pages, (faults_kept, faults_system)


def test_policy_is_checked(monkeypatch):
    monkeypatch.setenv("DEEPSPIKE_MALLOC", "jemalloc")
    with pytest.raises(ConfigError, match="DEEPSPIKE_MALLOC must be one of keep, system"):
        allocator.keep_freed_memory()
    monkeypatch.setenv("DEEPSPIKE_MALLOC", "system")
    assert allocator.keep_freed_memory() is False
